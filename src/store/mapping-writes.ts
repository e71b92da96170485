import { inputError } from "../domain/errors.js";
import { ancestorClaims, baseName, inZones, registrableDomain } from "../policy/name-rules.js";
import { fromSnapshot, toSnapshot } from "./mapping-snapshot.js";
import { certificateNotFound, notFound, StoreError, type AuditAction, type CertificateInput, type CertificateRecord, type MappingInput, type MappingRecord, type TenantSettings, type WriteContext } from "./store.js";

/** An audit event as a write records it; the store adds id and time. */
export interface AuditInput {
  tenantId: string;
  action: AuditAction;
  domain: string;
  previousDomain: string;
  before?: MappingRecord;
  after?: MappingRecord;
}

/**
 * The statements a store runs inside one write transaction. Each store
 * supplies them in its own SQL; the rules of a write live once, below.
 */
export interface MappingTx {
  /** Inserts a mapping with revision 0 and returns its row id; a taken domain is already_exists. */
  insertMapping(tenantId: string, input: MappingInput, now: Date): Promise<bigint>;
  /** The mapping of a domain, locked until the transaction ends; undefined when there is none. */
  lockMapping(domain: string): Promise<MappingRecord | undefined>;
  /** Replaces domain, backends and labels; a taken domain is already_exists. */
  updateMapping(id: bigint, next: MappingInput, now: Date): Promise<void>;
  deleteMapping(id: bigint): Promise<void>;
  /** Appends the full new state of one domain (null: no longer mapped) and returns the row id. */
  appendOutbox(domain: string, backends: string[] | null, now: Date): Promise<bigint>;
  setRevision(id: bigint, revision: bigint): Promise<void>;
  /**
   * Locks the names under one registrable domain until the transaction ends
   * (where concurrent writes could interleave): shared for a name, exclusive
   * for a wildcard. Names under one domain are claimed side by side, while a
   * wildcard waits for them and they for it, so two tenants cannot both win
   * overlapping claims.
   */
  lockNameTree(registrable: string, exclusive: boolean): Promise<void>;
  /** Whether a tenant other than `tenantId` maps one of `names` or, when given, a name under `subtree`. */
  othersClaim(tenantId: string, names: readonly string[], subtree: string | undefined): Promise<string | undefined>;
  /** The tenant's settings, locked until the transaction ends (so quota checks cannot race); undefined: none set. */
  lockTenant(tenantId: string): Promise<TenantSettings | undefined>;
  countMappings(tenantId: string): Promise<number>;
  appendAudit(event: AuditInput, ctx: WriteContext, now: Date): Promise<void>;
  /**
   * Records an idempotency key for this transaction's write and returns
   * undefined, or, when the key was recorded already (a concurrent first
   * attempt is waited for), what was stored with it.
   */
  claimIdempotency(scope: string, key: string, fingerprint: string, now: Date): Promise<{ fingerprint: string; result: string | null } | undefined>;
  /** Stores the write's result with the key claimed in this transaction. */
  settleIdempotency(scope: string, key: string, result: string | null): Promise<void>;
  /** Of `names`, those mapped (exactly, as stored), each with the tenant that maps it; read so they cannot change until the transaction ends. */
  claimants(names: readonly string[]): Promise<Map<string, string>>;
  /** The certificate of a name, locked until the transaction ends; undefined when there is none. */
  lockCertificate(name: string): Promise<CertificateRecord | undefined>;
  /** Inserts or replaces the certificate of input.name, with revision 0 until setCertificateRevision. */
  putCertificate(tenantId: string, input: CertificateInput, now: Date): Promise<void>;
  deleteCertificate(name: string): Promise<void>;
  /** The names of the tenant's certificates. */
  certificateNames(tenantId: string): Promise<string[]>;
  /** Appends the full new state of one name's certificate (null: none) and returns the row id. */
  appendCertificateOutbox(name: string, state: { chainPem: string; sealedKey: string } | null, now: Date): Promise<bigint>;
  setCertificateRevision(name: string, revision: bigint): Promise<void>;
}

/** The backends routers get: none for a disabled mapping, which they answer with 503. */
export const routed = (m: Pick<MappingInput, "backends" | "status">) => (m.status === "disabled" ? [] : m.backends);

/** Both stores answer a taken domain alike, never naming the tenant that holds it. */
export const domainTaken = (domain: string) => new StoreError("already_exists", `domain ${domain} is already mapped`);

/**
 * Runs a write once per idempotency key: the key is claimed in the write's
 * own transaction, so a retry of a write whose answer was lost finds it
 * committed with its result and gets that result, never a second write.
 */
async function once<T extends MappingRecord | undefined>(tx: MappingTx, ctx: WriteContext, write: () => Promise<T>): Promise<T> {
  const idem = ctx.idempotency;
  if (!idem) return write();
  const earlier = await tx.claimIdempotency(ctx.keyId, idem.key, idem.fingerprint, new Date());
  if (earlier) {
    if (earlier.fingerprint !== idem.fingerprint) {
      throw inputError("Idempotency-Key", "idempotency_key.reused", "was used before with a different request; send a new key with a new request");
    }
    return (earlier.result === null ? undefined : fromSnapshot(earlier.result)) as T;
  }
  const result = await write();
  await tx.settleIdempotency(ctx.keyId, idem.key, result === undefined ? null : toSnapshot(result));
  return result;
}

/** Creates a mapping; its revision is the id of the outbox row written with it. */
export function createIn(tx: MappingTx, tenantId: string, input: MappingInput, ctx: WriteContext): Promise<MappingRecord> {
  return once(tx, ctx, () => createOnce(tx, tenantId, input, ctx));
}

async function createOnce(tx: MappingTx, tenantId: string, input: MappingInput, ctx: WriteContext): Promise<MappingRecord> {
  await checkClaim(tx, tenantId, input.domain, true);
  const now = new Date();
  // Issued together, in this order: the outbox row (the revision) comes after the insert took the domain's lock.
  const [id, revision] = await Promise.all([tx.insertMapping(tenantId, input, now), tx.appendOutbox(input.domain, routed(input), now)]);
  await tx.setRevision(id, revision);
  const record = { id, tenantId, ...input, createTime: now, updateTime: now, revision };
  await tx.appendAudit({ tenantId, action: "create", domain: input.domain, previousDomain: "", after: record }, ctx, now);
  return record;
}

/** Replaces a mapping with what `change` makes of it, read under the lock; a new domain renames it. */
export function updateIn(
  tx: MappingTx,
  tenantId: string,
  domain: string,
  change: (current: MappingRecord) => MappingInput,
  expectedRevision: bigint | undefined,
  ctx: WriteContext,
): Promise<MappingRecord> {
  return once(tx, ctx, () => updateOnce(tx, tenantId, domain, change, expectedRevision, ctx));
}

async function updateOnce(
  tx: MappingTx,
  tenantId: string,
  domain: string,
  change: (current: MappingRecord) => MappingInput,
  expectedRevision: bigint | undefined,
  ctx: WriteContext,
): Promise<MappingRecord> {
  const current = await lockOwned(tx, tenantId, domain, expectedRevision);
  const next = change(current);
  const renamed = next.domain !== current.domain;
  if (renamed) await checkClaim(tx, tenantId, next.domain, false);
  const now = new Date();
  // Issued together, in this order; a rename is a removal of the old name plus an upsert of the new one.
  const [, , revision] = await Promise.all([
    tx.updateMapping(current.id, next, now),
    renamed ? tx.appendOutbox(current.domain, null, now) : undefined,
    tx.appendOutbox(next.domain, routed(next), now),
  ]);
  await tx.setRevision(current.id, revision);
  if (renamed) await dropUnowned(tx, tenantId, current.domain, now);
  const record = { ...current, ...next, updateTime: now, revision };
  const action = renamed ? "rename" : "update";
  await tx.appendAudit({ tenantId, action, domain: next.domain, previousDomain: renamed ? current.domain : "", before: current, after: record }, ctx, now);
  return record;
}

export async function deleteIn(tx: MappingTx, tenantId: string, domain: string, expectedRevision: bigint | undefined, ctx: WriteContext): Promise<void> {
  await once(tx, ctx, async () => {
    const current = await lockOwned(tx, tenantId, domain, expectedRevision);
    const now = new Date();
    await tx.deleteMapping(current.id);
    await tx.appendOutbox(domain, null, now);
    await dropUnowned(tx, tenantId, domain, now);
    await tx.appendAudit({ tenantId, action: "delete", domain, previousDomain: "", before: current }, ctx, now);
    return undefined;
  });
}

/**
 * The rules of claiming a name: inside the tenant's zones, within its quota
 * (`creating`), and no overlap with another tenant's names: the owner of a
 * wildcard owns its subtree, the owner of a name owns the names under it and
 * the wildcards that would cover it. The answer never names the other tenant.
 */
async function checkClaim(tx: MappingTx, tenantId: string, domain: string, creating: boolean): Promise<void> {
  const subtree = domain.startsWith("*.") ? baseName(domain) : undefined;
  const registrable = registrableDomain(domain, "mapping.domain");
  // Issued together, in this order (a store may send them in one round trip): the claims are read after the lock,
  // so what overlapping claims committed is visible; the checks below only read the answers.
  const [settings, , taken] = await Promise.all([
    tx.lockTenant(tenantId),
    tx.lockNameTree(registrable, subtree !== undefined),
    tx.othersClaim(tenantId, ancestorClaims(domain), subtree),
  ]);
  if (settings && !inZones(domain, settings.zones)) {
    throw new StoreError("permission_denied", `tenant ${tenantId} may only map names in its zones (${settings.zones.join(", ")}); ${domain} is outside them`);
  }
  if (creating && settings && settings.mappingQuota > 0 && (await tx.countMappings(tenantId)) >= settings.mappingQuota) {
    throw new StoreError("resource_exhausted", `tenant ${tenantId} has reached its quota of ${settings.mappingQuota} mappings; an admin can raise it`);
  }
  if (taken !== undefined) {
    const how = subtree && taken.endsWith(`.${subtree}`) ? "would cover names" : taken.startsWith("*.") ? "is covered by a wildcard" : "is under a name";
    throw new StoreError("already_exists", `${domain} ${how} another tenant has mapped`);
  }
}

/** Another tenant's mapping is indistinguishable from none. */
async function lockOwned(tx: MappingTx, tenantId: string, domain: string, expectedRevision: bigint | undefined): Promise<MappingRecord> {
  const current = await tx.lockMapping(domain);
  if (!current || current.tenantId !== tenantId) throw notFound(domain);
  if (expectedRevision !== undefined && current.revision !== expectedRevision) {
    throw new StoreError("failed_precondition", `mapping ${current.domain} is at revision ${current.revision}, not ${expectedRevision}`);
  }
  return current;
}

/**
 * Stores the certificate of a name. A tenant may hold a certificate only for
 * names it owns (see unownedNames): the name and every DNS name in the
 * certificate. Ownership is exclusive across tenants, so certificate names
 * are too. Certificates count against the tenant's mapping quota: each costs
 * store and Redis memory, and a wildcard would otherwise allow any number.
 */
export async function putCertificateIn(tx: MappingTx, tenantId: string, input: CertificateInput): Promise<CertificateRecord> {
  // The tenant first, as mapping writes lock it (one lock order, fewer deadlocks).
  const settings = await tx.lockTenant(tenantId);
  const unowned = await unownedNames(tx, tenantId, [input.name, ...input.dnsNames]);
  if (unowned.length > 0) {
    throw new StoreError("permission_denied", `tenant ${tenantId} may only hold certificates for names it maps (or under a wildcard it maps); not its: ${unowned.join(", ")}`);
  }
  const current = await tx.lockCertificate(input.name);
  // Only reachable in a race with a mapping write that moved the name; the other tenant stays unnamed.
  if (current && current.tenantId !== tenantId) throw new StoreError("permission_denied", `${input.name} is not a name of tenant ${tenantId}`);
  if (!current && settings && settings.mappingQuota > 0 && (await tx.certificateNames(tenantId)).length >= settings.mappingQuota) {
    throw new StoreError("resource_exhausted", `tenant ${tenantId} has reached its quota of ${settings.mappingQuota} certificates (its mapping quota); an admin can raise it`);
  }
  const now = new Date();
  await tx.putCertificate(tenantId, input, now);
  const revision = await tx.appendCertificateOutbox(input.name, { chainPem: input.chainPem, sealedKey: input.sealedKey }, now);
  await tx.setCertificateRevision(input.name, revision);
  return { ...input, tenantId, updateTime: now, revision };
}

/** Another tenant's certificate is indistinguishable from none. */
export async function deleteCertificateIn(tx: MappingTx, tenantId: string, name: string): Promise<void> {
  const current = await tx.lockCertificate(name);
  if (!current || current.tenantId !== tenantId) throw certificateNotFound(name);
  await tx.deleteCertificate(name);
  await tx.appendCertificateOutbox(name, null, new Date());
}

/**
 * Of `names`, those the tenant does not own. A name is the tenant's when the
 * closest mapped claim over it (the name itself, then ancestorClaims, nearest
 * first) is the tenant's. The closest, not any: a plain name's subtree is not
 * checked when it is claimed (that would scan every mapping), so a tenant may
 * map a parent of a name another tenant mapped before; the parent gives it
 * none of that other tenant's names.
 */
async function unownedNames(tx: MappingTx, tenantId: string, names: readonly string[]): Promise<string[]> {
  const unique = [...new Set(names)];
  const claimants = await tx.claimants([...new Set(unique.flatMap((n) => [n, ...ancestorClaims(n)]))]);
  return unique.filter((n) => {
    const closest = [n, ...ancestorClaims(n)].find((claim) => claimants.has(claim));
    return closest === undefined || claimants.get(closest) !== tenantId;
  });
}

/** After the tenant stopped mapping `domain`: its certificates for names no longer its go, with it. */
async function dropUnowned(tx: MappingTx, tenantId: string, domain: string, now: Date): Promise<void> {
  const base = baseName(domain);
  // The names `domain` may have made the tenant's: itself, its wildcard or name, and its subtree.
  const affected = (await tx.certificateNames(tenantId)).filter((n) => baseName(n) === base || baseName(n).endsWith(`.${base}`));
  if (affected.length === 0) return;
  for (const name of await unownedNames(tx, tenantId, affected)) {
    await tx.deleteCertificate(name);
    await tx.appendCertificateOutbox(name, null, now);
  }
}

/** Thrown at the end of a dry run so the store rolls the transaction back; carries what would have been stored. */
class DryRunDone extends Error {
  constructor(readonly records: MappingRecord[]) {
    super("dry run: rolled back");
  }
}

/** Creates all of one tenant's mappings in the caller's transaction; a dry run does every write, then rolls back. */
export async function createAllIn(tx: MappingTx, tenantId: string, inputs: readonly MappingInput[], dryRun: boolean, ctx: WriteContext): Promise<MappingRecord[]> {
  const records: MappingRecord[] = [];
  for (const input of inputs) records.push(await createIn(tx, tenantId, input, ctx));
  if (dryRun) throw new DryRunDone(records);
  return records;
}

/** The records of a finished dry run (see createAllIn), or the error as it was. */
export function dryRunResult(err: unknown): MappingRecord[] {
  if (err instanceof DryRunDone) return err.records;
  throw err;
}
