import { notFound, StoreError, type MappingInput, type MappingRecord } from "./store.js";

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
}

/** Both stores answer a taken domain alike, never naming the tenant that holds it. */
export const domainTaken = (domain: string) => new StoreError("already_exists", `domain ${domain} is already mapped`);

/** Creates a mapping; its revision is the id of the outbox row written with it. */
export async function createIn(tx: MappingTx, tenantId: string, input: MappingInput): Promise<MappingRecord> {
  const now = new Date();
  const id = await tx.insertMapping(tenantId, input, now);
  const revision = await tx.appendOutbox(input.domain, input.backends, now);
  await tx.setRevision(id, revision);
  return { id, tenantId, ...input, createTime: now, updateTime: now, revision };
}

/** Replaces a mapping with what `change` makes of it, read under the lock; a new domain renames it. */
export async function updateIn(
  tx: MappingTx,
  tenantId: string,
  domain: string,
  change: (current: MappingRecord) => MappingInput,
  expectedRevision: bigint | undefined,
): Promise<MappingRecord> {
  const current = await lockOwned(tx, tenantId, domain, expectedRevision);
  const next = change(current);
  const now = new Date();
  await tx.updateMapping(current.id, next, now);
  // A rename is a removal of the old name plus an upsert of the new one.
  if (next.domain !== current.domain) await tx.appendOutbox(current.domain, null, now);
  const revision = await tx.appendOutbox(next.domain, next.backends, now);
  await tx.setRevision(current.id, revision);
  return { ...current, ...next, updateTime: now, revision };
}

export async function deleteIn(tx: MappingTx, tenantId: string, domain: string, expectedRevision: bigint | undefined): Promise<void> {
  const current = await lockOwned(tx, tenantId, domain, expectedRevision);
  await tx.deleteMapping(current.id);
  await tx.appendOutbox(domain, null, new Date());
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

/** Thrown at the end of a dry run so the store rolls the transaction back; carries what would have been stored. */
class DryRunDone extends Error {
  constructor(readonly records: MappingRecord[]) {
    super("dry run: rolled back");
  }
}

/** Creates all of one tenant's mappings in the caller's transaction; a dry run does every write, then rolls back. */
export async function createAllIn(tx: MappingTx, tenantId: string, inputs: readonly MappingInput[], dryRun: boolean): Promise<MappingRecord[]> {
  const records: MappingRecord[] = [];
  for (const input of inputs) records.push(await createIn(tx, tenantId, input));
  if (dryRun) throw new DryRunDone(records);
  return records;
}

/** The records of a finished dry run (see createAllIn), or the error as it was. */
export function dryRunResult(err: unknown): MappingRecord[] {
  if (err instanceof DryRunDone) return err.records;
  throw err;
}
