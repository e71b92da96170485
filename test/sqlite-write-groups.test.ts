import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { expect, it } from "vitest";
import { openSqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { datasync } from "../src/store/sqlite/wal-sync.js";
import type { CommittedChanges, MappingInput } from "../src/store/store.js";

// The embedded store runs the writes asked for in one turn of the event loop in one transaction, each in a
// savepoint of its own. These tests start several writes in one turn and check that they share one commit (one
// sync) and that each keeps the outcome it would have had alone.
const logger = pino({ level: "silent" });
const ctx = { keyId: "test", requestId: "group" };
const mapping = (domain: string): MappingInput => ({ domain, backends: ["http://a:1"], labels: {}, status: "enabled", tls: "" });
const dbFile = () => join(mkdtempSync(join(tmpdir(), "dynroute-group-")), "dynroute.db");

it("commits the writes of one turn together: one sync covers them all, and each gets its own revision in order", async () => {
  let syncs = 0;
  const store = openSqliteStore({ file: dbFile(), logger, sync: (fd) => (syncs++, datasync(fd)) });
  try {
    await store.create("t", mapping("first.example"), ctx);
    const before = syncs;
    const records = await Promise.all(["a.example", "b.example", "c.example"].map((d) => store.create("t", mapping(d), ctx)));
    expect(syncs - before, "one commit, one sync").toBe(1);
    const revisions = records.map((r) => r.revision);
    expect(revisions).toEqual([...revisions].sort((x, y) => (x < y ? -1 : 1)));
    for (const r of records) expect((await store.get("t", r.domain)).revision).toBe(r.revision);
  } finally {
    await store.close();
  }
});

it("fails a write of a group alone, undoing what it wrote, and passes on only the committed writes' changes", async () => {
  const store = openSqliteStore({ file: dbFile(), logger });
  const committed: CommittedChanges[] = [];
  store.onCommit((changes) => committed.push(changes));
  try {
    const keyed = { ...ctx, idempotency: { key: "k1", fingerprint: "f1" } };
    // One turn: the second create of taken.example fails after claiming its idempotency key.
    const outcomes = await Promise.allSettled([
      store.create("t", mapping("taken.example"), ctx),
      store.create("t", mapping("taken.example"), keyed),
      store.create("t", mapping("other.example"), ctx),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ code: "already_exists" });
    expect(committed.flatMap((c) => c.routes.map((r) => r.domain))).toEqual(["taken.example", "other.example"]);

    // Its key was claimed in its savepoint and undone with it: a retry runs the write again (and fails again), it
    // does not find a key recorded without a result.
    await expect(store.create("t", mapping("taken.example"), keyed)).rejects.toMatchObject({ code: "already_exists" });
    expect(store.db.prepare("SELECT COUNT(*) AS n FROM idempotency").get()).toEqual({ n: 0 });
    const audit = await store.listAudit({ limit: 10 });
    expect(audit.map((e) => e.domain).sort()).toEqual(["other.example", "taken.example"]);
  } finally {
    await store.close();
  }
});

it("answers a repeated idempotency key within one group with the first write's result", async () => {
  const store = openSqliteStore({ file: dbFile(), logger });
  try {
    const keyed = { ...ctx, idempotency: { key: "k2", fingerprint: "f2" } };
    const [first, second] = await Promise.all([store.create("t", mapping("once.example"), keyed), store.create("t", mapping("once.example"), keyed)]);
    expect(second).toEqual(first);
    expect((await store.listAudit({ limit: 10 })).length).toBe(1);
  } finally {
    await store.close();
  }
});
