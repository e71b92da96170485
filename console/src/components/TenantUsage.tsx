import type { Tenant } from "../../../gen/dynroute/v1/tenant_pb.js";

/** How many mappings the tenant has, against its quota when it has one. */
export function TenantUsage({ tenant }: { tenant: Pick<Tenant, "mappingCount" | "mappingQuota"> }) {
  const { mappingCount: count, mappingQuota: quota } = tenant;
  const mappings = `${count} mapping${count === 1 ? "" : "s"}`;
  if (quota === 0) return <>{mappings} (no limit)</>;
  // optimum, low and high: browsers draw a filling quota amber, a nearly full one red.
  return (
    <span className={count >= quota ? "usage usage-full" : "usage"}>
      {count} of {quota} mappings{count >= quota && " · full: creating more fails"}{" "}
      <meter min={0} max={quota} value={count} optimum={0} low={quota * 0.75} high={quota * 0.9} aria-label={`${count} of ${quota} mappings used`} />
    </span>
  );
}
