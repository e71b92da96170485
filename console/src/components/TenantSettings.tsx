import type { Tenant } from "../../../gen/dynroute/v1/tenant_pb.js";
import { TenantUsage } from "./TenantUsage";
import { PlainList } from "./PlainList";

/** A tenant's settings and usage, to read. */
export function TenantSettings({ tenant }: { tenant: Tenant }) {
  return (
    <dl className="settings">
      <dt>Zones</dt>
      <dd>
        {tenant.zones.length === 0 ? (
          "Any name the global rules allow"
        ) : (
          <PlainList items={tenant.zones} />
        )}
      </dd>
      <dt>Mapping quota</dt>
      <dd>{tenant.mappingQuota === 0 ? "No limit" : tenant.mappingQuota}</dd>
      <dt>Usage</dt>
      <dd>
        <TenantUsage tenant={tenant} />
      </dd>
    </dl>
  );
}
