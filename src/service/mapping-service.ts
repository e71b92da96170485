import { domainToASCII } from "node:url";
import { create } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { MappingSchema, type ListMappingsRequest, type Mapping, type MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
import { writerOf } from "../auth/principal.js";
import { normalizeDomain } from "../domain/domain-name.js";
import { inputError } from "../domain/errors.js";
import { checkNewTenantId } from "../domain/tenant-id.js";
import { parseLabelSelector } from "../domain/label-selector.js";
import type { BackendRules } from "../policy/backend-url.js";
import { validateMessage } from "../rpc/validation.js";
import { StoreError, type MappingRecord, type MappingStatus, type MappingStore, type WriteContext } from "../store/store.js";
import type { Gate } from "./fifo-gate.js";
import { idempotencyOf } from "./idempotency.js";
import { protoTls, toInput, toProto } from "./mapping-convert.js";
import { decodePageToken, encodePageToken } from "./page-token.js";

const DEFAULT_PAGE_SIZE = 50;

/** Who writes, and the call's idempotency key, for the store. */
const writeContext = (ctx: HandlerContext, req: Message): WriteContext => ({ ...writerOf(ctx), idempotency: idempotencyOf(ctx, req) });
const MASKABLE = ["domain", "backends", "labels", "status", "tls"] as const;
// update_mask path of one label: the rest of the path is the key, taken literally (keys may hold '.').
const LABEL_PATH = "labels.";

export interface MappingServiceDeps {
  store: MappingStore;
  validator: Validator;
  backendRules: BackendRules;
  /** Which revision routers serve per domain, for Mapping.live. */
  servedRevisions: (domains: readonly string[]) => Promise<bigint[]>;
  /** Lists run through it: a page costs milliseconds of CPU, and too many at once starve new connections (see fifoGate). */
  listGate: Gate;
}

/**
 * The MappingService RPCs. Requests arrive already checked against their
 * proto annotations (see the validation interceptor); this adds the rules the
 * annotations cannot state, normalises domains, and talks to the store.
 */
export function createMappingService({ store, validator, backendRules, servedRevisions, listGate }: MappingServiceDeps): ServiceImpl<typeof MappingService> {
  /** Marks mappings whose revision Redis serves (unknown, Redis unreachable, counts as not live). */
  async function withLiveness(mappings: Mapping[]): Promise<Mapping[]> {
    if (mappings.length === 0) return mappings;
    const served = await servedRevisions(mappings.map((m) => m.domain)).catch(() => undefined);
    if (served) mappings.forEach((m, i) => (m.live = served[i]! >= m.revision));
    return mappings;
  }

  /** One page of a tenant's mappings, with liveness and the token of the next. */
  async function listMappings(req: ListMappingsRequest) {
    const labels = parseLabelSelector(req.labelSelector, "label_selector");
    const domainSuffix = req.domainSuffix === "" ? undefined : normalizeDomain(req.domainSuffix, "domain_suffix");
    const domainContains = req.q === "" ? undefined : searchText(req.q);
    const status = req.status === "" ? undefined : (req.status as MappingStatus);
    const filters = JSON.stringify([req.tenantId, labels, domainSuffix ?? "", domainContains ?? "", status ?? ""]);
    if (req.pageToken !== "" && req.offset !== 0) throw inputError("offset", "offset.page_token", "cannot be combined with page_token");
    const limit = req.limit === 0 ? DEFAULT_PAGE_SIZE : req.limit;
    const page = await store.list(req.tenantId, {
      offset: req.offset,
      limit,
      ...(req.pageToken === "" ? {} : { afterId: decodePageToken(req.pageToken, filters, "page_token") }),
      labels,
      ...(domainSuffix === undefined ? {} : { domainSuffix }),
      ...(domainContains === undefined ? {} : { domainContains }),
      ...(status === undefined ? {} : { status }),
      withTotal: req.total,
    });
    const last = page.records[page.records.length - 1];
    return {
      mappings: await withLiveness(page.records.map(toProto)),
      nextPageToken: page.hasMore && last ? encodePageToken(last.id, filters) : "",
      ...(page.total === undefined ? {} : { totalSize: page.total }),
    };
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

    listMappings: (req) => listGate(() => listMappings(req)),

    async updateMapping(req, ctx) {
      const body = req.mapping;
      if (!body) throw inputError("mapping", "required", "value is required");
      const paths = req.updateMask?.paths ?? [];
      for (const p of paths) {
        // tenant_id may be named (a mapping read earlier and sent back has it): toInput checks it, it never changes.
        if (!(MASKABLE as readonly string[]).includes(p) && !p.startsWith(LABEL_PATH) && p !== "tenant_id") {
          throw inputError("update_mask", "update_mask.paths", `"${p}" cannot be updated; use ${MASKABLE.join(", ")} or labels.<key>`);
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
            labels: labelsAfter(paths, body.labels, current.labels),
            status: (paths.length === 0 || paths.includes("status")) && body.status !== "" ? body.status : current.status,
            tls: paths.length === 0 || paths.includes("tls") ? body.tls : protoTls[current.tls],
          });
          validateMessage(validator, MappingSchema, merged, "mapping");
          return toInput(merged, req.tenantId, "mapping.", backendRules);
        },
        expectedRevision(req.expectedRevision, body.revision),
        writeContext(ctx, req),
      );
      return { mapping: toProto(record) };
    },

    async deleteMapping(req, ctx) {
      await store.delete(req.tenantId, normalizeDomain(req.domain, "domain"), req.expectedRevision, writeContext(ctx, req));
      return {};
    },

    async setBackends(req, ctx) {
      return { mapping: await edit(req, ctx, () => ({ backends: req.backends })) };
    },

    async setLabel(req, ctx) {
      return { mapping: await edit(req, ctx, (current) => ({ labels: { ...current.labels, [req.key]: req.value } })) };
    },

    async deleteLabel(req, ctx) {
      return {
        mapping: await edit(req, ctx, (current) => {
          if (!(req.key in current.labels)) throw new ConnectError(`mapping ${current.domain} has no label ${req.key}`, Code.NotFound);
          const { [req.key]: _removed, ...labels } = current.labels;
          return { labels };
        }),
      };
    },
  };

  /**
   * Changes one property of a mapping, read under the row lock; the mapping
   * that results is checked by the same rules as a whole one.
   */
  async function edit(
    req: { tenantId: string; domain: string; expectedRevision?: bigint } & Message,
    ctx: HandlerContext,
    change: (current: MappingRecord) => Partial<Pick<MappingRecord, "backends" | "labels">>,
  ): Promise<Mapping> {
    const record = await store.update(
      req.tenantId,
      normalizeDomain(req.domain, "domain"),
      (current) => {
        const merged = create(MappingSchema, { domain: current.domain, backends: current.backends, labels: current.labels, status: current.status, tls: protoTls[current.tls], ...change(current) });
        validateMessage(validator, MappingSchema, merged);
        return toInput(merged, req.tenantId, "", backendRules);
      },
      req.expectedRevision,
      writeContext(ctx, req),
    );
    return toProto(record);
  }
}

/** The labels after an update: replaced whole ("labels" or no mask), else set or removed one by one ("labels.<key>"). */
function labelsAfter(paths: readonly string[], given: Record<string, string>, current: Record<string, string>): Record<string, string> {
  if (paths.length === 0 || paths.includes("labels")) return given;
  const next = { ...current };
  for (const p of paths) {
    if (!p.startsWith(LABEL_PATH)) continue;
    const key = p.slice(LABEL_PATH.length);
    if (Object.hasOwn(given, key)) next[key] = given[key]!;
    else delete next[key];
  }
  return next;
}

/**
 * The revision an update is conditional on: expected_revision (If-Match) or
 * the body's own revision when set and not 0, as a client that read the
 * mapping and sends it back changed expects it unchanged meanwhile. Both set
 * and different can never both hold.
 */
function expectedRevision(expected: bigint | undefined, bodyRevision: bigint): bigint | undefined {
  if (bodyRevision === 0n) return expected;
  if (expected !== undefined && expected !== bodyRevision) {
    throw new StoreError("failed_precondition", `expected_revision ${expected} and mapping.revision ${bodyRevision} disagree; send one revision`);
  }
  return bodyRevision;
}

/**
 * `q` as stored domains spell it: lower case, and non-ASCII text in its
 * punycode form (so "bücher.example" finds "xn--bcher-kva.example"; a
 * fragment of a non-ASCII label cannot be found).
 */
function searchText(q: string): string {
  const lower = q.toLowerCase();
  return /^[\x00-\x7f]*$/.test(lower) ? lower : domainToASCII(lower) || lower;
}
