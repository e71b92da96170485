import { skipToken, useQuery } from "@connectrpc/connect-query";
import { TenantService } from "../../../gen/dynroute/v1/tenant_pb.js";
import { ErrorNote } from "../components/ErrorNote";
import { PageHeading } from "../components/PageHeading";
import { TenantForm } from "../components/TenantForm";
import { TenantUsage } from "../components/TenantUsage";
import { href } from "../route";
import { useSession } from "../session";

/** Admins: every tenant with its settings and usage, and the settings of one (`id`, else the picked tenant) to change. */
export function TenantsPage({ id }: { id: string }) {
  const { session } = useSession();
  const list = useQuery(TenantService.method.listTenants, {});
  const editing = id || session.tenant;
  const current = useQuery(TenantService.method.getTenant, editing ? { tenantId: editing } : skipToken);

  return (
    <>
      <PageHeading title="Tenants" />
      <ErrorNote error={list.error} prefix="Could not list the tenants" />
      {list.data?.tenants.length === 0 && <p role="status">No tenant has settings or mappings yet.</p>}
      {list.data && list.data.tenants.length > 0 && (
        <table className="tenants">
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col">Zones</th>
              <th scope="col">Usage</th>
            </tr>
          </thead>
          <tbody>
            {list.data.tenants.map((t) => (
              <tr key={t.tenantId}>
                <th scope="row" data-label="Tenant">
                  <a href={href("tenants", { id: t.tenantId })} aria-current={t.tenantId === editing ? "true" : undefined}>
                    {t.tenantId}
                  </a>
                </th>
                <td data-label="Zones">{t.zones.length === 0 ? <span className="hint">any</span> : t.zones.join(", ")}</td>
                <td data-label="Usage">
                  <TenantUsage tenant={t} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {!editing && <p>Open a tenant in the list (or type any tenant in the bar above) to change its settings.</p>}
      <ErrorNote error={current.error} prefix={`Could not read the settings of ${editing}`} />
      {current.data?.tenant && <TenantForm key={editing} tenant={current.data.tenant} />}
    </>
  );
}
