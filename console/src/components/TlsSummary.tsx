import { CertificateStatus_State, TlsMode, type Mapping } from "../../../gen/dynroute/v1/mapping_pb.js";
import { formatTime } from "../format";
import { Expiry } from "./Expiry";

export const TLS_MODES = [
  { mode: TlsMode.UNSPECIFIED, label: "Operator's default" },
  { mode: TlsMode.AUTOMATIC, label: "Automatic (ACME)" },
  { mode: TlsMode.MANUAL, label: "Manual (uploaded)" },
] as const;

/** A mapping's TLS mode and, for automatic certificates, where its certificate stands. */
export function TlsSummary({ mapping }: { mapping: Pick<Mapping, "tls" | "certificateStatus"> }) {
  const status = mapping.certificateStatus;
  return (
    <span className="tls">
      <span className="tls-mode">{TLS_MODES.find((m) => m.mode === mapping.tls)?.label}</span>
      {status?.state === CertificateStatus_State.PENDING && <span className="badge badge-pending">Certificate pending</span>}
      {status?.state === CertificateStatus_State.ISSUED && (
        <span>
          <span className="badge badge-live">Certificate issued</span> {status.expireTime && <Expiry time={status.expireTime} />}
        </span>
      )}
      {status?.state === CertificateStatus_State.FAILED && (
        <span>
          <span className="badge badge-failed">Certificate failed</span> {status.reason} · next try {formatTime(status.nextAttemptTime)}
        </span>
      )}
    </span>
  );
}
