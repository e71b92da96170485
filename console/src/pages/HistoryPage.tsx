import { useInfiniteQuery } from "@connectrpc/connect-query";
import { useState, type FormEvent } from "react";
import { AuditService } from "../../../gen/dynroute/v1/audit_pb.js";
import { ErrorNote } from "../components/ErrorNote";
import { MappingDiff } from "../components/MappingDiff";
import { PageHeading } from "../components/PageHeading";
import { formatTime, isoTime } from "../format";
import { href, navigate } from "../route";
import { useSession } from "../session";

const PAGE_SIZE = 20;

/** The audit trail of the tenant, or of one of its mappings, newest first, each event with what it changed. */
export function HistoryPage({ domain }: { domain: string }) {
  const { session } = useSession();
  const [filter, setFilter] = useState(domain);
  const events = useInfiniteQuery(
    AuditService.method.listAuditEvents,
    { tenantId: session.tenant, domain, limit: PAGE_SIZE, pageToken: "" },
    { pageParamKey: "pageToken", getNextPageParam: (page) => page.nextPageToken || undefined },
  );
  const all = events.data?.pages.flatMap((p) => p.events) ?? [];
  const scope = session.tenant ? `tenant ${session.tenant}` : "all tenants";
  const search = (e: FormEvent) => {
    e.preventDefault();
    navigate("history", filter.trim() ? { domain: filter.trim() } : {});
  };

  return (
    <>
      <PageHeading title={domain ? `History of ${domain}` : `History of ${scope}`} />
      <form className="filters" onSubmit={search} role="search" aria-label="Filter history">
        <div>
          <label htmlFor="history-domain">Domain</label>
          <input id="history-domain" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} spellCheck={false} placeholder="every mapping" />
        </div>
        <button type="submit">Show</button>
      </form>
      <ErrorNote error={events.error} prefix="Could not read the history" />
      {events.isSuccess && all.length === 0 && <p role="status">No changes recorded.</p>}
      <ol className="events">
        {all.map((e) => (
          <li key={String(e.id)}>
            <article aria-labelledby={`event-${e.id}`}>
              <h2 id={`event-${e.id}`}>
                <span className={`action action-${e.action}`}>{e.action}</span>{" "}
                {e.tenantId === session.tenant && e.action !== "delete" ? <a href={href("mapping", { domain: e.domain })}>{e.domain}</a> : e.domain}
                {e.previousDomain && <span className="hint"> (was {e.previousDomain})</span>}
              </h2>
              <p className="meta">
                <time dateTime={isoTime(e.time)}>{formatTime(e.time)}</time> · key {e.keyId}
                {!session.tenant && <> · tenant {e.tenantId}</>} · request {e.requestId}
              </p>
              <MappingDiff before={e.before} after={e.after} />
            </article>
          </li>
        ))}
      </ol>
      {events.hasNextPage && (
        <button type="button" onClick={() => events.fetchNextPage()} disabled={events.isFetchingNextPage}>
          {events.isFetchingNextPage ? "Loading…" : "Older changes"}
        </button>
      )}
    </>
  );
}
