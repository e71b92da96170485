import type { Mapping } from "../../../gen/dynroute/v1/mapping_pb.js";
import { MappingDiff } from "./MappingDiff";

/** Someone changed the mapping since it was opened: what they changed, and the two ways on. */
export function ConflictPanel({ mine, theirs, onResolve }: { mine: Mapping | undefined; theirs: Mapping; onResolve(choice: "reload" | "overwrite"): void }) {
  return (
    <section className="conflict" role="alert" aria-labelledby="conflict-title">
      <h2 id="conflict-title">Changed by someone else</h2>
      <p>
        This mapping moved from revision {String(mine?.revision ?? "?")} to {String(theirs.revision)} since you opened it. Their change:
      </p>
      <MappingDiff before={mine} after={theirs} />
      <div className="actions">
        <button type="button" onClick={() => onResolve("reload")}>
          Reload theirs (discard my edits)
        </button>
        <button type="button" className="danger" onClick={() => onResolve("overwrite")}>
          Overwrite with mine
        </button>
      </div>
    </section>
  );
}
