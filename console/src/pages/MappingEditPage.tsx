import { skipToken, useQuery } from "@connectrpc/connect-query";
import { MappingService } from "../../../gen/dynroute/v1/mapping_pb.js";
import { ErrorNote } from "../components/ErrorNote";
import { LiveBadge } from "../components/LiveBadge";
import { MappingForm } from "../components/MappingForm";
import { PageHeading } from "../components/PageHeading";
import { TlsSummary } from "../components/TlsSummary";
import { href } from "../route";
import { canEdit, useSession } from "../session";

/** One mapping: a new one (no domain), or an existing one to read, change, rename or delete. */
export function MappingEditPage({ domain }: { domain: string | null }) {
  const { session } = useSession();
  const current = useQuery(MappingService.method.getMapping, domain === null ? skipToken : { tenantId: session.tenant, domain }, {
    refetchInterval: (q) => (q.state.data?.mapping?.live === false ? 1000 : false),
  });
  const mapping = current.data?.mapping;
  const editable = canEdit(session.role);

  if (domain === null) {
    return (
      <>
        <PageHeading title="New mapping" />
        <MappingForm tenant={session.tenant} initial={undefined} />
      </>
    );
  }
  return (
    <>
      <div className="page-head">
        <PageHeading title={domain} />
        {mapping && (
          <p className="meta">
            <LiveBadge mapping={mapping} /> revision {String(mapping.revision)} · <a href={href("history", { domain })}>History</a>
          </p>
        )}
      </div>
      {mapping && (
        <p className="meta">
          TLS: <TlsSummary mapping={mapping} />
        </p>
      )}
      <p>
        <a href={href("mappings")}>← All mappings</a>
      </p>
      {current.isPending && <p role="status">Loading…</p>}
      <ErrorNote error={current.error} prefix="Could not read the mapping" />
      {mapping && !editable && <p className="hint">This key can read mappings but not change them.</p>}
      {mapping && (
        <MappingForm
          // A new form (and base revision) only when another mapping is opened; polling must not reset an edit.
          key={mapping.domain}
          tenant={session.tenant}
          initial={mapping}
          readOnly={!editable}
          refetch={async () => (await current.refetch()).data?.mapping}
        />
      )}
    </>
  );
}
