import type { Mapping } from "../../../gen/dynroute/v1/mapping_pb.js";

/** Whether the mapping is switched off, and whether routers serve its current revision yet. */
export function LiveBadge({ mapping }: { mapping: Pick<Mapping, "live" | "status"> }) {
  return (
    <>
      {mapping.status === "disabled" && <span className="badge badge-disabled">Disabled</span>}{" "}
      {mapping.live ? <span className="badge badge-live">Live</span> : <span className="badge badge-pending">Pending</span>}
    </>
  );
}
