import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { daysUntil, formatTime, isoTime } from "../format";

/** Days before expiry from which a certificate is flagged: automatic ones renew at a third of their lifetime left (30 days of 90). */
const SOON_DAYS = 14;

/** When a certificate expires, and in words how soon, flagged (not by colour alone) when close or past. */
export function Expiry({ time }: { time: Timestamp }) {
  const days = daysUntil(time);
  const [text, tone] =
    days < 0 ? [`expired ${-days} day${days === -1 ? "" : "s"} ago`, "past"] : days === 0 ? ["expires today", "soon"] : [`expires in ${days} day${days === 1 ? "" : "s"}`, days < SOON_DAYS ? "soon" : "ok"];
  return (
    <>
      <time dateTime={isoTime(time)}>{formatTime(time)}</time> <span className={`expiry expiry-${tone}`}>{tone === "ok" ? text : `⚠ ${text}`}</span>
    </>
  );
}
