import type { MappingRecord } from "./store.js";

/** A mapping as JSON text, as audit events and idempotency records keep it. */
export function toSnapshot(r: MappingRecord): string {
  return JSON.stringify({ ...r, id: r.id.toString(), revision: r.revision.toString(), createTime: r.createTime.getTime(), updateTime: r.updateTime.getTime() });
}

export function fromSnapshot(text: string): MappingRecord {
  const s = JSON.parse(text);
  return { ...s, id: BigInt(s.id), revision: BigInt(s.revision), createTime: new Date(s.createTime), updateTime: new Date(s.updateTime) };
}
