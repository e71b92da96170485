import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { peekOutbox } from "./harness/convergence.js";
import { freshStore, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { outcome } from "./harness/outcome.js";

describe.each(stores)("on the %s store", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  describe("races", () => {
    it("lets exactly one of 20 concurrent creates of a domain win, across tenants", async () => {
      for (let round = 0; round < 5; round++) {
        const domain = `race-${round}.example.org`;
        const results = await Promise.all(
          [...Array(20).keys()].map((i) =>
            outcome(daemon.client(i % 2 ? "grpc" : "connect").createMapping({ tenantId: `tenant-${i}`, mapping: { domain, backends: [`http://b${i}:80`] } })),
          ),
        );
        expect(results.filter((r) => r === "OK")).toHaveLength(1);
        expect(results.filter((r) => r !== "OK")).toEqual(Array(19).fill("AlreadyExists"));
      }
    });

    it("lets exactly one of concurrent renames onto the same new name win", async () => {
      const client = daemon.client("connect");
      for (let i = 0; i < 10; i++) await client.createMapping({ tenantId: "renamer", mapping: { domain: `src-${i}.example.org`, backends: ["http://a:1"] } });
      const results = await Promise.all(
        [...Array(10).keys()].map((i) =>
          outcome(client.updateMapping({ tenantId: "renamer", domain: `src-${i}.example.org`, mapping: { domain: "target.example.org", backends: ["http://a:1"] } })),
        ),
      );
      expect(results.filter((r) => r === "OK")).toHaveLength(1);
      const { mappings } = await client.listMappings({ tenantId: "renamer", limit: 500 });
      expect(mappings).toHaveLength(10);
      expect(mappings.filter((m) => m.domain === "target.example.org")).toHaveLength(1);
    });

    it("serialises concurrent updates of one mapping: revisions are distinct and the last one stored wins", async () => {
      const client = daemon.client("connect");
      await client.createMapping({ tenantId: "updater", mapping: { domain: "hot.example.org", backends: ["http://a:1"] } });
      const results = await Promise.all(
        [...Array(30).keys()].map((i) => client.updateMapping({ tenantId: "updater", domain: "hot.example.org", mapping: { backends: [`http://b${i}:1`] } })),
      );
      const revisions = results.map((r) => r.mapping!.revision);
      expect(new Set(revisions).size).toBe(30);
      const newest = results.reduce((a, b) => (a.mapping!.revision > b.mapping!.revision ? a : b));
      const stored = (await client.getMapping({ tenantId: "updater", domain: "hot.example.org" })).mapping;
      expect({ ...stored, live: false }).toEqual(newest.mapping);
    });
  });

  describe("outbox", () => {
    // The relay would apply and delete the rows this inspects.
    beforeAll(() => daemon.app.relay.stop());

    it("commits one row per domain change with the full new state; revision is its id", async () => {
      const client = daemon.client("connect");
      const created = (await client.createMapping({ tenantId: "ob", mapping: { domain: "ob.example.org", backends: ["http://a:1", "http://b:2"] } })).mapping!;
      const renamed = (await client.updateMapping({ tenantId: "ob", domain: "ob.example.org", mapping: { domain: "ob2.example.org", backends: ["http://c:3"] } })).mapping!;
      await client.deleteMapping({ tenantId: "ob", domain: "ob2.example.org" });

      const rows = (await peekOutbox(daemon.store)).filter((c) => c.domain === "ob.example.org" || c.domain === "ob2.example.org");
      expect(rows.map((c) => [c.revision, c.domain, c.backends])).toEqual([
        [created.revision, "ob.example.org", ["http://a:1", "http://b:2"]],
        [renamed.revision - 1n, "ob.example.org", null],
        [renamed.revision, "ob2.example.org", ["http://c:3"]],
        [expect.any(BigInt), "ob2.example.org", null],
      ]);
      expect(rows[3]!.revision).toBeGreaterThan(renamed.revision);
    });

    it("writes nothing when a write fails", async () => {
      const client = daemon.client("connect");
      await client.createMapping({ tenantId: "ob", mapping: { domain: "keep.example.org", backends: ["http://a:1"] } });
      const count = async () => (await daemon.store.outboxStats()).depth;
      const before = await count();
      await outcome(client.createMapping({ tenantId: "ob2", mapping: { domain: "keep.example.org", backends: ["http://a:1"] } }));
      await outcome(client.updateMapping({ tenantId: "ob2", domain: "keep.example.org", mapping: { backends: ["http://x:1"] } }));
      expect(await count()).toBe(before);
    });
  });
});
