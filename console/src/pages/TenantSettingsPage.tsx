import { useQuery } from "@connectrpc/connect-query";
import { TenantService } from "../../../gen/dynroute/v1/tenant_pb.js";
import { ErrorNote } from "../components/ErrorNote";
import { PageHeading } from "../components/PageHeading";
import { TenantSettings } from "../components/TenantSettings";
import { useSession } from "../session";

/** A tenant key: its own tenant's settings and usage, to read (only admins change them). */
export function TenantSettingsPage() {
  const { session } = useSession();
  const current = useQuery(TenantService.method.getTenant, { tenantId: session.tenant });
  return (
    <>
      <PageHeading title={`Settings of ${session.tenant}`} />
      <p className="hint">Set by the operator's admins: which names this tenant may map, and how many mappings it may have.</p>
      <ErrorNote error={current.error} prefix="Could not read the settings" />
      {current.data?.tenant && <TenantSettings tenant={current.data.tenant} />}
    </>
  );
}
