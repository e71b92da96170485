/** Whether routers serve a mapping's current revision yet. */
export function LiveBadge({ live }: { live: boolean }) {
  return live ? <span className="badge badge-live">Live</span> : <span className="badge badge-pending">Pending</span>;
}
