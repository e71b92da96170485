import { CertificateSource as Source, type Certificate } from "../../../gen/dynroute/v1/certificate_pb.js";

/** Whether the daemon issued this certificate over ACME or someone uploaded it (the API says). */
export function CertificateSource({ certificate }: { certificate: Certificate }) {
  return <>{certificate.source === Source.ACME ? "Automatic (ACME)" : "Uploaded"}</>;
}
