import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { AuditEventSchema, type AuditEvent, type AuditService } from "../../gen/dynroute/v1/audit_pb.js";
import { normalizeDomain } from "../domain/domain-name.js";
import type { AuditRecord, AuditStore } from "../store/store.js";
import { toProto as mappingToProto } from "./mapping-convert.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

const DEFAULT_PAGE_SIZE = 50;

/** AuditService: the trail of mapping writes, newest first (tenant scope is the interceptors' job). */
export function createAuditService({ audit }: { audit: AuditStore }): ServiceImpl<typeof AuditService> {
  return {
    async listAuditEvents(req) {
      const domain = req.domain === "" ? undefined : normalizeDomain(req.domain, "domain");
      const filters = JSON.stringify(["audit", req.tenantId, domain ?? ""]);
      const limit = req.limit === 0 ? DEFAULT_PAGE_SIZE : req.limit;
      const records = await audit.listAudit({
        ...(req.tenantId === "" ? {} : { tenantId: req.tenantId }),
        ...(domain === undefined ? {} : { domain }),
        ...(req.pageToken === "" ? {} : { beforeId: decodePageToken(req.pageToken, filters, "page_token") }),
        limit: limit + 1,
      });
      const page = records.slice(0, limit);
      const last = page[page.length - 1];
      return { events: page.map(toProto), nextPageToken: records.length > limit && last ? encodePageToken(last.id, filters) : "" };
    },
  };
}

function toProto(e: AuditRecord): AuditEvent {
  return create(AuditEventSchema, {
    id: e.id,
    time: timestampFromDate(e.time),
    tenantId: e.tenantId,
    keyId: e.keyId,
    action: e.action,
    domain: e.domain,
    previousDomain: e.previousDomain,
    before: e.before && mappingToProto(e.before),
    after: e.after && mappingToProto(e.after),
    requestId: e.requestId,
  });
}
