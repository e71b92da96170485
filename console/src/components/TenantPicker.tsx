import { useQuery } from "@connectrpc/connect-query";
import { useState, type FormEvent } from "react";
import { TenantService } from "../../../gen/dynroute/v1/tenant_pb.js";
import { useSession } from "../session";

/** Admins: pick a known tenant or type any tenant id. */
export function TenantPicker() {
  const { session, pickTenant } = useSession();
  const [value, setValue] = useState(session.tenant);
  const tenants = useQuery(TenantService.method.listTenants, {}, { retry: false });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    pickTenant(value.trim());
  };
  return (
    <form className="tenant-picker" onSubmit={submit}>
      <label htmlFor="tenant-pick">Tenant</label>
      <input id="tenant-pick" list="tenant-options" value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" spellCheck={false} />
      <datalist id="tenant-options">
        {tenants.data?.tenants.map((t) => <option key={t.tenantId} value={t.tenantId} />)}
      </datalist>
      <button type="submit">Open</button>
    </form>
  );
}
