import { fromJson, toJson } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import { MappingSchema } from "../../gen/dynroute/v1/mapping_pb.js";
import { InputError } from "../domain/errors.js";
import type { BackendRules } from "../policy/backend-url.js";
import { validateMessage } from "../rpc/validation.js";
import { toInput, toProto } from "../service/mapping-convert.js";
import type { MappingInput, MappingStore, WriteContext } from "../store/store.js";

const BATCH = 1000;

/**
 * Writes every mapping (of one tenant, or all) as JSON lines: each line a
 * dynroute.v1.Mapping in ProtoJSON with proto field names, as the REST API
 * answers it. Streams in id order, so memory stays flat. Returns the count.
 */
export async function exportMappings(store: MappingStore, write: (line: string) => Promise<void>, tenantId?: string): Promise<number> {
  let count = 0;
  for (let after = 0n; ; ) {
    const records =
      tenantId === undefined
        ? await store.scanMappings(after, BATCH)
        : (await store.list(tenantId, { afterId: after, limit: BATCH, offset: 0, labels: [], withTotal: false })).records;
    if (records.length === 0) return count;
    for (const r of records) {
      const { live: _live, ...line } = toJson(MappingSchema, toProto(r), { useProtoFieldName: true }) as Record<string, unknown>;
      await write(JSON.stringify(line) + "\n");
    }
    count += records.length;
    after = records[records.length - 1]!.id;
  }
}

export interface ParsedImport {
  /** Valid mappings, by tenant, in file order. */
  tenants: Map<string, MappingInput[]>;
  /** Lines that break a rule, by line number; their tenants are not imported. */
  problems: Array<{ line: number; tenant: string | undefined; message: string }>;
}

/**
 * Reads JSON lines as written by exportMappings and checks each against the
 * same rules as the API (proto annotations, domain and backend rules, the
 * backend destination policy).
 * Output-only fields (revision, times) are accepted and ignored: the target
 * store assigns its own.
 */
export async function parseImport(lines: AsyncIterable<string>, validator: Validator, rules: BackendRules, onlyTenant?: string): Promise<ParsedImport> {
  const tenants = new Map<string, MappingInput[]>();
  const problems: ParsedImport["problems"] = [];
  let n = 0;
  for await (const text of lines) {
    n++;
    if (text.trim() === "") continue;
    let tenant: string | undefined;
    try {
      const mapping = fromJson(MappingSchema, JSON.parse(text), { ignoreUnknownFields: false });
      tenant = mapping.tenantId || undefined;
      if (!tenant) throw new Error("tenant_id is missing");
      if (onlyTenant !== undefined && tenant !== onlyTenant) continue;
      validateMessage(validator, MappingSchema, mapping);
      const input = toInput(mapping, tenant, "", rules);
      tenants.set(tenant, [...(tenants.get(tenant) ?? []), input]);
    } catch (err) {
      problems.push({ line: n, tenant, message: err instanceof InputError || err instanceof Error ? err.message : String(err) });
    }
  }
  for (const p of problems) if (p.tenant) tenants.delete(p.tenant);
  return { tenants, problems };
}

export interface TenantOutcome {
  tenant: string;
  /** Mappings created (or, in a dry run, that would be). */
  created: number;
  /** Why the tenant's set was not (or would not be) imported. */
  error?: string;
}

/** Loads each tenant's mappings in one transaction of its own: all of a tenant's, or none. */
export async function importMappings(store: MappingStore, tenants: ParsedImport["tenants"], dryRun: boolean, ctx: WriteContext): Promise<TenantOutcome[]> {
  const outcomes: TenantOutcome[] = [];
  for (const [tenant, inputs] of tenants) {
    try {
      outcomes.push({ tenant, created: (await store.createMany(tenant, inputs, { dryRun, ctx })).length });
    } catch (err) {
      outcomes.push({ tenant, created: 0, error: (err as Error).message });
    }
  }
  return outcomes;
}
