import { useMutation } from "@connectrpc/connect-query";
import { useQuery } from "@tanstack/react-query";
import { AdminService } from "../../../gen/dynroute/v1/admin_pb.js";
import { ErrorNote } from "../components/ErrorNote";
import { PageHeading } from "../components/PageHeading";
import { formatDuration } from "../format";

/** The daemon's /readyz answer (an operational route, not part of the protobuf API). */
interface Readiness {
  ready: boolean;
  store: string;
  redis: string;
  relay: string;
  outbox: { depth: number; oldest_age_ms: number | null } | null;
  max_lag_ms: number;
}

async function readiness(): Promise<Readiness> {
  const res = await fetch("/readyz", { headers: { accept: "application/json" } });
  // 503 still carries the report: it says what is not ready.
  if (res.status !== 200 && res.status !== 503) throw new Error(`/readyz answered ${res.status}`);
  return (await res.json()) as Readiness;
}

/** Admins: relay role, outbox backlog and Redis reachability of the daemon serving this page, refreshed every 2 s. */
export function OperationsPage() {
  const ready = useQuery({ queryKey: ["readyz"], queryFn: readiness, refetchInterval: 2000 });
  const reconcile = useMutation(AdminService.method.reconcile);
  const r = ready.data;
  return (
    <>
      <PageHeading title="Operations" />
      <p className="hint">This daemon's view; with several daemons, one of them is the relay leader.</p>
      {ready.error && (
        <p className="error-note" role="alert">
          Could not read /readyz: {ready.error.message}
        </p>
      )}
      {r && (
        <dl className="ops">
          <div>
            <dt>Ready</dt>
            <dd className={r.ready ? "ok" : "bad"}>{r.ready ? "yes" : "no"}</dd>
          </div>
          <div>
            <dt>Relay role</dt>
            <dd>{r.relay}</dd>
          </div>
          <div>
            <dt>Outbox depth</dt>
            <dd>{r.outbox ? r.outbox.depth : "unknown"}</dd>
          </div>
          <div>
            <dt>Oldest unapplied change</dt>
            <dd>{r.outbox?.oldest_age_ms == null ? "none" : `${formatDuration(r.outbox.oldest_age_ms)} old (limit ${formatDuration(r.max_lag_ms)})`}</dd>
          </div>
          <div>
            <dt>Redis</dt>
            <dd className={r.redis === "ok" ? "ok" : "bad"}>{r.redis === "ok" ? "reachable" : r.redis}</dd>
          </div>
          <div>
            <dt>Store</dt>
            <dd className={r.store === "ok" ? "ok" : "bad"}>{r.store}</dd>
          </div>
        </dl>
      )}
      <h2>Reconcile</h2>
      <p>Push every mapping to Redis again and retire routes the database no longer has.</p>
      <button type="button" onClick={() => reconcile.mutate({})} disabled={reconcile.isPending}>
        {reconcile.isPending ? "Reconciling…" : "Reconcile now"}
      </button>
      {reconcile.data && (
        <p role="status">
          Done in {String(reconcile.data.durationMs)} ms: {String(reconcile.data.pushed)} pushed, {String(reconcile.data.updated)} updated, {String(reconcile.data.retired)} retired.
        </p>
      )}
      <ErrorNote error={reconcile.error} prefix="Reconciliation failed" />
    </>
  );
}
