import type { MessageInitShape } from "@bufbuild/protobuf";
import { TlsMode, type Mapping, type MappingSchema } from "../../gen/dynroute/v1/mapping_pb.js";

/** A mapping being edited: rows carry ids so React keeps each input with its row when rows move. */
export interface BackendRow {
  id: number;
  url: string;
}
export interface LabelRow {
  id: number;
  key: string;
  value: string;
}
export interface Draft {
  domain: string;
  backends: BackendRow[];
  labels: LabelRow[];
  /** Whether routers proxy it; off answers 503 "disabled" (a maintenance switch). */
  enabled: boolean;
  /** Sent back as read: an update replaces the whole mapping, so leaving it out would reset it to the default. */
  tls: TlsMode;
}

let lastId = 0;
export const rowId = () => ++lastId;

export function draftOf(mapping: Mapping | undefined): Draft {
  return {
    domain: mapping?.domain ?? "",
    backends: (mapping?.backends.length ? mapping.backends : [""]).map((url) => ({ id: rowId(), url })),
    labels: Object.entries(mapping?.labels ?? {}).map(([key, value]) => ({ id: rowId(), key, value })),
    enabled: mapping?.status !== "disabled",
    tls: mapping?.tls ?? TlsMode.UNSPECIFIED,
  };
}

/** The mapping to send. Blank label rows are left out; everything else goes as typed, so the server's errors name the rows. */
export function mappingOf(draft: Draft): MessageInitShape<typeof MappingSchema> {
  return {
    domain: draft.domain.trim(),
    backends: draft.backends.map((b) => b.url.trim()),
    labels: Object.fromEntries(draft.labels.filter((l) => l.key.trim() || l.value.trim()).map((l) => [l.key.trim(), l.value.trim()])),
    status: draft.enabled ? "enabled" : "disabled",
    tls: draft.tls,
  };
}
