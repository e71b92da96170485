import { useQuery } from "@connectrpc/connect-query";
import type { Certificate } from "../../../gen/dynroute/v1/certificate_pb.js";
import { CertificateStatus_State, MappingService } from "../../../gen/dynroute/v1/mapping_pb.js";

/**
 * Whether the daemon issued this certificate over ACME or someone uploaded it.
 * A Certificate does not say; the mapping of the same name does: it is the
 * automatic one when that mapping reports an issued certificate with this
 * expiry (an upload over it has its own).
 */
export function CertificateSource({ certificate }: { certificate: Certificate }) {
  const mapping = useQuery(MappingService.method.getMapping, { tenantId: certificate.tenantId, domain: certificate.name }, { retry: false });
  if (mapping.isPending) return null;
  // A name without a mapping of its own (NOT_FOUND: under a wildcard or a mapped name) has no automatic certificate.
  const status = mapping.data?.mapping?.certificateStatus;
  const automatic = status?.state === CertificateStatus_State.ISSUED && status.expireTime?.seconds === certificate.expireTime?.seconds;
  return <>{automatic ? "Automatic (ACME)" : "Uploaded"}</>;
}
