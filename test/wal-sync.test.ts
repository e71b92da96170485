import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { expect, it } from "vitest";
import { openSqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { datasync } from "../src/store/sqlite/wal-sync.js";
import type { MappingInput } from "../src/store/store.js";
import { waitFor } from "./harness/ports.js";

// The embedded store syncs its WAL off the event loop (WalSync). These tests hold or fail that sync (the real
// fdatasync, run when the test lets it) to see what may happen before a commit is on disk.
const logger = pino({ level: "silent" });
const ctx = { keyId: "test", requestId: "wal" };
const mapping = (domain: string): MappingInput => ({ domain, backends: ["http://a:1"], labels: {}, status: "enabled", tls: "" });
const dbFile = () => join(mkdtempSync(join(tmpdir(), "dynroute-wal-")), "dynroute.db");
/** Lets a few turns of the event loop pass, so anything not waiting for the sync would have settled. */
const turns = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

it("acknowledges a write, and hands its change to the relay, only after a sync that covers its commit", async () => {
  const held: Array<() => void> = [];
  const store = openSqliteStore({ file: dbFile(), logger, sync: (fd) => new Promise<void>((go) => held.push(go)).then(() => datasync(fd)) });
  try {
    let acked = false;
    const created = store.create("t", mapping("held.example"), ctx).then(() => (acked = true));
    await waitFor("the sync", async () => expect(held).toHaveLength(1));
    let applied = 0;
    const drained = store.drainOutbox(10, async (changes) => void (applied += changes.length));
    await turns();
    expect(acked).toBe(false);
    expect(applied).toBe(0);
    expect(held, "the relay waits for the same sync").toHaveLength(1);

    held.shift()!();
    await created;
    expect(await drained).toBe(1);
    expect(applied).toBe(1);
  } finally {
    for (const go of held) go();
    await store.close();
  }
});

it("fails the write whose sync failed, refuses every write after it, and works again after a restart", async () => {
  const file = dbFile();
  let failing = true;
  const store = openSqliteStore({ file, logger, sync: (fd) => (failing ? Promise.reject(Object.assign(new Error("i/o error"), { code: "EIO" })) : datasync(fd)) });
  await expect(store.create("t", mapping("lost.example"), ctx)).rejects.toMatchObject({ code: "unavailable", message: expect.stringContaining("EIO") });
  // Later syncs may report success for pages the kernel dropped: nothing is acknowledged or published any more.
  failing = false;
  await expect(store.create("t", mapping("after.example"), ctx)).rejects.toMatchObject({ code: "unavailable" });
  await expect(store.drainOutbox(10, async () => undefined)).rejects.toMatchObject({ code: "unavailable" });
  await store.close();

  const reopened = openSqliteStore({ file, logger });
  try {
    await reopened.create("t", mapping("after.example"), ctx);
    expect((await reopened.get("t", "after.example")).domain).toBe("after.example");
  } finally {
    await reopened.close();
  }
});
