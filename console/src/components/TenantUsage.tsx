import type { Tenant } from "../../../gen/dynroute/v1/tenant_pb.js";

/** How many mappings the tenant has, against its quota when it has one. */
export function TenantUsage({ tenant }: { tenant: Pick<Tenant, "mappingCount" | "mappingQuota"> }) {
  const { mappingCount: count, mappingQuota: quota } = tenant;
  if (quota === 0) return <>{count} mappings (no limit)</>;
  return (
    <span className={count >= quota ? "usage usage-full" : "usage"}>
      {count} of {quota} mappings{count >= quota && " · full: creating more fails"}{" "}
      <meter min={0} max={quota} value={count} aria-label={`${count} of ${quota} mappings used`} />
    </span>
  );
}
