import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

export const formatTime = (ts: Timestamp | undefined) => (ts ? timestampDate(ts).toLocaleString() : "—");

export const isoTime = (ts: Timestamp | undefined) => (ts ? timestampDate(ts).toISOString() : undefined);

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

const DAY_MS = 86_400_000;

/** Whole days from now until `ts` (negative once it is past). */
export const daysUntil = (ts: Timestamp) => Math.floor((timestampDate(ts).getTime() - Date.now()) / DAY_MS);
