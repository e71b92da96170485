import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { CertificateSchema, CertificateSource, type Certificate, type CertificateService } from "../../gen/dynroute/v1/certificate_pb.js";
import { normalizeDomain } from "../domain/domain-name.js";
import type { AcmeStore, CertificateRecord, CertificateStore } from "../store/store.js";
import { parseCertificate } from "../tls/certificate.js";
import type { SecretBox } from "../tls/secret-box.js";
import { decodeNameToken, encodeNameToken } from "./page-token.js";

/** Certificates per page when the request does not say (the proto's documented default). */
const DEFAULT_PAGE = 100;

/**
 * CertificateService: checks what can be checked from the upload alone
 * (see parseCertificate), seals the key, and leaves ownership to the
 * store's write rules, which decide it in the write's transaction.
 */
export function createCertificateService({ store, secrets }: { store: CertificateStore & Pick<AcmeStore, "acmeStates">; secrets: SecretBox }): ServiceImpl<typeof CertificateService> {
  /** A certificate is ACME's while it is the one the ACME manager recorded issuing (same leaf). */
  async function withSource(records: CertificateRecord[]): Promise<Certificate[]> {
    const issued = records.length === 0 ? new Map() : await store.acmeStates(records.map((r) => r.name));
    return records.map((r) => toProto(r, issued.get(r.name)?.fingerprint === r.fingerprint ? CertificateSource.ACME : CertificateSource.UPLOADED));
  }

  return {
    async putCertificate(req) {
      const name = normalizeDomain(req.name, "name");
      const parsed = parseCertificate(name, req.certificateChain, req.privateKey, new Date());
      const { keyPem, ...rest } = parsed;
      const record = await store.putCertificate(req.tenantId, { ...rest, name, sealedKey: secrets.seal(keyPem) });
      return { certificate: toProto(record, CertificateSource.UPLOADED) };
    },

    async getCertificate(req) {
      const [certificate] = await withSource([await store.getCertificate(req.tenantId, normalizeDomain(req.name, "name"))]);
      return { certificate };
    },

    async listCertificates(req) {
      const limit = req.limit === 0 ? DEFAULT_PAGE : req.limit;
      const after = req.pageToken === "" ? "" : decodeNameToken(req.pageToken, req.tenantId, "page_token");
      // One more than asked tells whether there is a next page.
      const records = await store.listCertificates(req.tenantId, after, limit + 1);
      const page = records.slice(0, limit);
      return { certificates: await withSource(page), nextPageToken: records.length > limit ? encodeNameToken(page[page.length - 1]!.name, req.tenantId) : "" };
    },

    async deleteCertificate(req) {
      await store.deleteCertificate(req.tenantId, normalizeDomain(req.name, "name"));
      return {};
    },
  };
}

const toProto = (r: CertificateRecord, source: CertificateSource): Certificate =>
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
    source,
  });
