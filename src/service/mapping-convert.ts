import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { CertificateStatus_State, CertificateStatusSchema, MappingSchema, TlsMode, type Mapping } from "../../gen/dynroute/v1/mapping_pb.js";
import { normalizeDomain } from "../domain/domain-name.js";
import { inputError } from "../domain/errors.js";
import { canonicalBackends, type BackendRules } from "../policy/backend-url.js";
import type { CertificateProgress, MappingInput, MappingView, TlsMode as StoredTlsMode } from "../store/store.js";

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
    tls: storedTls(m.tls, `${prefix}tls`),
  };
}

function storedTls(mode: TlsMode, field: string): StoredTlsMode {
  switch (mode) {
    case TlsMode.UNSPECIFIED:
      return "";
    case TlsMode.AUTOMATIC:
      return "automatic";
    case TlsMode.MANUAL:
      return "manual";
    default:
      throw inputError(field, "tls.enum", "must be TLS_MODE_UNSPECIFIED, TLS_MODE_AUTOMATIC or TLS_MODE_MANUAL");
  }
}

export const protoTls = { "": TlsMode.UNSPECIFIED, automatic: TlsMode.AUTOMATIC, manual: TlsMode.MANUAL } as const;
const protoState = { pending: CertificateStatus_State.PENDING, issued: CertificateStatus_State.ISSUED, failed: CertificateStatus_State.FAILED } as const;

/** A mapping's automatic certificate as the API shows it. */
function certificateStatus(a: CertificateProgress) {
  return create(CertificateStatusSchema, {
    state: protoState[a.state],
    reason: a.reason,
    nextAttemptTime: timestampFromDate(a.nextAttemptTime),
    ...(a.expireTime ? { expireTime: timestampFromDate(a.expireTime) } : {}),
  });
}

export function toProto(r: MappingView): Mapping {
  return create(MappingSchema, {
    tenantId: r.tenantId,
    domain: r.domain,
    backends: r.backends,
    labels: r.labels,
    status: r.status,
    tls: protoTls[r.tls],
    createTime: timestampFromDate(r.createTime),
    updateTime: timestampFromDate(r.updateTime),
    revision: r.revision,
    ...(r.certificate ? { certificateStatus: certificateStatus(r.certificate) } : {}),
  });
}
