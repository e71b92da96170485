import { create } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import type { Message } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { MappingSchema, type Mapping, type MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import { writerOf } from "../auth/principal.js";
import { normalizeDomain } from "../domain/domain-name.js";
import { inputError } from "../domain/errors.js";
import { checkNewTenantId } from "../domain/tenant-id.js";
import { parseLabelSelector } from "../domain/label-selector.js";
import type { BackendRules } from "../policy/backend-url.js";
import { validateMessage } from "../rpc/validation.js";
import type { MappingStore, WriteContext } from "../store/store.js";
import { idempotencyOf } from "./idempotency.js";
import { toInput, toProto } from "./mapping-convert.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

const DEFAULT_PAGE_SIZE = 50;

/** Who writes, and the call's idempotency key, for the store. */
const writeContext = (ctx: HandlerContext, req: Message): WriteContext => ({ ...writerOf(ctx), idempotency: idempotencyOf(ctx, req) });
const MASKABLE = ["domain", "backends", "labels"] as const;

export interface MappingServiceDeps {
  store: MappingStore;
  validator: Validator;
  backendRules: BackendRules;
  /** Which revision routers serve per domain, for Mapping.live. */
  servedRevisions: (domains: readonly string[]) => Promise<bigint[]>;
}

/**
 * The MappingService RPCs. Requests arrive already checked against their
 * proto annotations (see the validation interceptor); this adds the rules the
 * annotations cannot state, normalises domains, and talks to the store.
 */
export function createMappingService({ store, validator, backendRules, servedRevisions }: MappingServiceDeps): ServiceImpl<typeof MappingService> {
  /** Marks mappings whose revision Redis serves; unknown (Redis unreachable) counts as not live. */
  async function withLiveness(mappings: Mapping[]): Promise<Mapping[]> {
    if (mappings.length === 0) return mappings;
    const served = await servedRevisions(mappings.map((m) => m.domain)).catch(() => undefined);
    if (served) mappings.forEach((m, i) => (m.live = served[i]! >= m.revision));
    return mappings;
  }

  return {
    async createMapping(req, ctx) {
      if (!req.mapping) throw inputError("mapping", "required", "value is required");
      checkNewTenantId(req.tenantId, "tenant_id");
      const record = await store.create(req.tenantId, toInput(req.mapping, req.tenantId, "mapping.", backendRules), writeContext(ctx, req));
      return { mapping: toProto(record) };
    },

    async getMapping(req) {
      const record = await store.get(req.tenantId, normalizeDomain(req.domain, "domain"));
      const [mapping] = await withLiveness([toProto(record)]);
      return { mapping };
    },

    async listMappings(req) {
      const labels = parseLabelSelector(req.labelSelector, "label_selector");
      const domainSuffix = req.domainSuffix === "" ? undefined : normalizeDomain(req.domainSuffix, "domain_suffix");
      const filters = JSON.stringify([req.tenantId, labels, domainSuffix ?? ""]);
      if (req.pageToken !== "" && req.offset !== 0) throw inputError("offset", "offset.page_token", "cannot be combined with page_token");
      const limit = req.limit === 0 ? DEFAULT_PAGE_SIZE : req.limit;
      const page = await store.list(req.tenantId, {
        offset: req.offset,
        limit,
        ...(req.pageToken === "" ? {} : { afterId: decodePageToken(req.pageToken, filters, "page_token") }),
        labels,
        ...(domainSuffix === undefined ? {} : { domainSuffix }),
        withTotal: req.total,
      });
      const last = page.records[page.records.length - 1];
      return {
        mappings: await withLiveness(page.records.map(toProto)),
        nextPageToken: page.hasMore && last ? encodePageToken(last.id, filters) : "",
        ...(page.total === undefined ? {} : { totalSize: page.total }),
      };
    },

    async updateMapping(req, ctx) {
      const body = req.mapping;
      if (!body) throw inputError("mapping", "required", "value is required");
      const paths = req.updateMask?.paths ?? [];
      for (const p of paths) {
        if (!(MASKABLE as readonly string[]).includes(p)) {
          throw inputError("update_mask", "update_mask.paths", `"${p}" cannot be updated; use ${MASKABLE.join(", ")}`);
        }
      }
      const record = await store.update(
        req.tenantId,
        normalizeDomain(req.domain, "domain"),
        (current) => {
          // Without a mask the body is the whole new mapping; an empty domain keeps the current one.
          const merged = create(MappingSchema, {
            tenantId: body.tenantId,
            domain: paths.length === 0 || paths.includes("domain") ? body.domain || current.domain : current.domain,
            backends: paths.length === 0 || paths.includes("backends") ? body.backends : current.backends,
            labels: paths.length === 0 || paths.includes("labels") ? body.labels : current.labels,
          });
          validateMessage(validator, MappingSchema, merged, "mapping.");
          return toInput(merged, req.tenantId, "mapping.", backendRules);
        },
        req.expectedRevision,
        writeContext(ctx, req),
      );
      return { mapping: toProto(record) };
    },

    async deleteMapping(req, ctx) {
      await store.delete(req.tenantId, normalizeDomain(req.domain, "domain"), req.expectedRevision, writeContext(ctx, req));
      return {};
    },
  };
}
