import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MappingSchema, type Mapping } from "../../gen/dynroute/v1/mapping_pb.js";
import { normalizeDomain } from "../domain/domain-name.js";
import { inputError } from "../domain/errors.js";
import { canonicalBackends, type BackendRules } from "../policy/backend-url.js";
import type { MappingInput, MappingRecord } from "../store/store.js";

/**
 * A Mapping message (already checked against its proto rules) as the store
 * takes it: the rules the annotations cannot state, and the domain
 * normalised, backends canonical and allowed by the rules. `prefix` places
 * field names inside the request.
 */
export function toInput(m: Mapping, tenantId: string, prefix: string, rules: BackendRules): MappingInput {
  if (m.tenantId !== "" && m.tenantId !== tenantId) {
    throw inputError(`${prefix}tenant_id`, "tenant_id.match", "must be empty or equal the tenant_id of the request");
  }
  return {
    domain: normalizeDomain(m.domain, `${prefix}domain`),
    backends: canonicalBackends(m.backends, `${prefix}backends`, rules),
    labels: { ...m.labels },
    // Empty is the default; an update fills in the current status first.
    status: m.status === "disabled" ? "disabled" : "enabled",
  };
}

export function toProto(r: MappingRecord): Mapping {
  return create(MappingSchema, {
    tenantId: r.tenantId,
    domain: r.domain,
    backends: r.backends,
    labels: r.labels,
    status: r.status,
    createTime: timestampFromDate(r.createTime),
    updateTime: timestampFromDate(r.updateTime),
    revision: r.revision,
  });
}
