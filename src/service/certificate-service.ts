import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { CertificateSchema, type Certificate, type CertificateService } from "../../gen/dynroute/v1/certificate_pb.js";
import { normalizeDomain } from "../domain/domain-name.js";
import type { CertificateRecord, CertificateStore } from "../store/store.js";
import { parseCertificate } from "../tls/certificate.js";
import type { SecretBox } from "../tls/secret-box.js";

/**
 * CertificateService: checks what can be checked from the upload alone
 * (see parseCertificate), seals the key, and leaves ownership to the
 * store's write rules, which decide it in the write's transaction.
 */
export function createCertificateService({ store, secrets }: { store: CertificateStore; secrets: SecretBox }): ServiceImpl<typeof CertificateService> {
  return {
    async putCertificate(req) {
      const name = normalizeDomain(req.name, "name");
      const parsed = parseCertificate(name, req.certificateChain, req.privateKey, new Date());
      const { keyPem, ...rest } = parsed;
      const record = await store.putCertificate(req.tenantId, { ...rest, name, sealedKey: secrets.seal(keyPem) });
      return { certificate: toProto(record) };
    },

    async getCertificate(req) {
      return { certificate: toProto(await store.getCertificate(req.tenantId, normalizeDomain(req.name, "name"))) };
    },

    async listCertificates(req) {
      return { certificates: (await store.listCertificates(req.tenantId)).map(toProto) };
    },

    async deleteCertificate(req) {
      await store.deleteCertificate(req.tenantId, normalizeDomain(req.name, "name"));
      return {};
    },
  };
}

const toProto = (r: CertificateRecord): Certificate =>
  create(CertificateSchema, {
    tenantId: r.tenantId,
    name: r.name,
    dnsNames: r.dnsNames,
    issuer: r.issuer,
    notBefore: timestampFromDate(r.notBefore),
    expireTime: timestampFromDate(r.notAfter),
    fingerprintSha256: r.fingerprint,
    certificateChain: r.chainPem,
    updateTime: timestampFromDate(r.updateTime),
    revision: r.revision,
  });
