import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freshStore, protocols, startTestDaemon, stores, TOKEN, type TestDaemon } from "./harness/daemon.js";

describe.each(stores)("on the %s store", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  /** The ConnectError a call fails with; fails the test if it succeeds. */
  async function failure(call: Promise<unknown>): Promise<ConnectError> {
    try {
      await call;
    } catch (err) {
      return ConnectError.from(err);
    }
    throw new Error("call succeeded but should have failed");
  }

  it("answers side-effect-free calls over Connect GET (cacheable URLs), and only those", async () => {
    const domain = "connect-get.example.org";
    await daemon.client("connect").createMapping({ tenantId: "t-get", mapping: { domain, backends: ["http://a:1"] } });
    const connectGet = (method: string, message: object) =>
      fetch(`${daemon.baseUrl}/dynroute.v1.MappingService/${method}?connect=v1&encoding=json&message=${encodeURIComponent(JSON.stringify(message))}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
    const got = await connectGet("GetMapping", { tenantId: "t-get", domain });
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ mapping: { domain, backends: ["http://a:1"] } });
    const listed = await connectGet("ListMappings", { tenantId: "t-get" });
    expect(((await listed.json()) as { mappings: Array<{ domain: string }> }).mappings.map((m) => m.domain)).toEqual([domain]);
    // Writes stay POST-only.
    expect((await connectGet("DeleteMapping", { tenantId: "t-get", domain })).status).toBe(405);
  });

  describe.each(protocols)("MappingService over %s", (protocol) => {
    const tenant = `t-${protocol}`;
    const other = `other-${protocol}`;
    const d = (name: string) => `${name}.${protocol}.example.org`;
    const client = () => daemon.client(protocol);

    it("creates, reads, lists, updates, renames and deletes a mapping", async () => {
      const created = await client().createMapping({
        tenantId: tenant,
        mapping: { domain: `Something.${protocol}.EXAMPLE.org.`, backends: ["http://instance-01:3000", "http://instance-02:4000"], labels: { env: "prod" } },
      });
      const m = created.mapping!;
      expect(m).toMatchObject({ tenantId: tenant, domain: d("something"), backends: ["http://instance-01:3000", "http://instance-02:4000"], labels: { env: "prod" } });
      expect(m.revision).toBeGreaterThan(0n);
      expect(m.createTime).toEqual(m.updateTime);

      const got = await client().getMapping({ tenantId: tenant, domain: d("SOMETHING") });
      expect({ ...got.mapping, live: false }).toEqual(m);

      const listed = await client().listMappings({ tenantId: tenant });
      expect(listed.mappings.map((x) => x.domain)).toContain(d("something"));

      const updated = await client().updateMapping({ tenantId: tenant, domain: d("something"), mapping: { domain: d("something"), backends: ["http://instance-03:5000"] } });
      expect(updated.mapping).toMatchObject({ domain: d("something"), backends: ["http://instance-03:5000"], labels: {} });
      expect(updated.mapping!.revision).toBeGreaterThan(m.revision);
      expect(updated.mapping!.createTime).toEqual(m.createTime);

      const renamed = await client().updateMapping({ tenantId: tenant, domain: d("something"), mapping: { domain: d("renamed"), backends: ["http://instance-03:5000"] } });
      expect(renamed.mapping!.domain).toBe(d("renamed"));
      expect((await failure(client().getMapping({ tenantId: tenant, domain: d("something") }))).code).toBe(Code.NotFound);
      expect((await client().getMapping({ tenantId: tenant, domain: d("renamed") })).mapping!.revision).toBe(renamed.mapping!.revision);

      await client().deleteMapping({ tenantId: tenant, domain: d("renamed") });
      expect((await failure(client().getMapping({ tenantId: tenant, domain: d("renamed") }))).code).toBe(Code.NotFound);
      expect((await failure(client().deleteMapping({ tenantId: tenant, domain: d("renamed") }))).code).toBe(Code.NotFound);
    });

    it("keeps a domain unique across tenants without naming the owner", async () => {
      await client().createMapping({ tenantId: tenant, mapping: { domain: d("unique"), backends: ["http://a:1"] } });
      const dup = await failure(client().createMapping({ tenantId: other, mapping: { domain: d("UNIQUE") + ".", backends: ["http://b:1"] } }));
      expect(dup.code).toBe(Code.AlreadyExists);
      expect(dup.rawMessage).not.toContain(tenant);
      const same = await failure(client().createMapping({ tenantId: tenant, mapping: { domain: d("unique"), backends: ["http://b:1"] } }));
      expect(same.code).toBe(Code.AlreadyExists);
    });

    it("hides another tenant's mapping from every RPC", async () => {
      await client().createMapping({ tenantId: tenant, mapping: { domain: d("mine"), backends: ["http://a:1"] } });
      const codes = await Promise.all([
        failure(client().getMapping({ tenantId: other, domain: d("mine") })),
        failure(client().updateMapping({ tenantId: other, domain: d("mine"), mapping: { domain: d("mine"), backends: ["http://evil:1"] } })),
        failure(client().deleteMapping({ tenantId: other, domain: d("mine") })),
      ]);
      expect(codes.map((e) => e.code)).toEqual([Code.NotFound, Code.NotFound, Code.NotFound]);
      expect((await client().listMappings({ tenantId: other })).mappings.map((m) => m.domain)).not.toContain(d("mine"));
      expect((await client().getMapping({ tenantId: tenant, domain: d("mine") })).mapping!.backends).toEqual(["http://a:1"]);
    });

    it("refuses a rename onto a taken domain and leaves both untouched", async () => {
      await client().createMapping({ tenantId: tenant, mapping: { domain: d("from"), backends: ["http://a:1"] } });
      await client().createMapping({ tenantId: other, mapping: { domain: d("taken"), backends: ["http://b:1"] } });
      const err = await failure(client().updateMapping({ tenantId: tenant, domain: d("from"), mapping: { domain: d("taken"), backends: ["http://a:1"] } }));
      expect(err.code).toBe(Code.AlreadyExists);
      expect((await client().getMapping({ tenantId: tenant, domain: d("from") })).mapping!.backends).toEqual(["http://a:1"]);
      expect((await client().getMapping({ tenantId: other, domain: d("taken") })).mapping!.backends).toEqual(["http://b:1"]);
    });

    it("applies an update_mask to the named fields only", async () => {
      await client().createMapping({ tenantId: tenant, mapping: { domain: d("masked"), backends: ["http://a:1"], labels: { team: "web" } } });
      const res = await client().updateMapping({ tenantId: tenant, domain: d("masked"), mapping: { labels: { team: "ops" } }, updateMask: { paths: ["labels"] } });
      expect(res.mapping).toMatchObject({ domain: d("masked"), backends: ["http://a:1"], labels: { team: "ops" } });
      const bad = await failure(client().updateMapping({ tenantId: tenant, domain: d("masked"), mapping: {}, updateMask: { paths: ["revision"] } }));
      expect(bad.code).toBe(Code.InvalidArgument);
      expect(bad.rawMessage).toContain("update_mask");
    });

    it("checks expected_revision on update and delete", async () => {
      const { mapping } = await client().createMapping({ tenantId: tenant, mapping: { domain: d("occ"), backends: ["http://a:1"] } });
      const stale = await failure(client().updateMapping({ tenantId: tenant, domain: d("occ"), mapping: { backends: ["http://b:1"] }, expectedRevision: mapping!.revision + 1000n }));
      expect(stale.code).toBe(Code.FailedPrecondition);
      const ok = await client().updateMapping({ tenantId: tenant, domain: d("occ"), mapping: { backends: ["http://b:1"] }, expectedRevision: mapping!.revision });
      expect((await failure(client().deleteMapping({ tenantId: tenant, domain: d("occ"), expectedRevision: mapping!.revision }))).code).toBe(Code.FailedPrecondition);
      await client().deleteMapping({ tenantId: tenant, domain: d("occ"), expectedRevision: ok.mapping!.revision });
    });

    it("takes a set, non-zero mapping.revision as a precondition; 0 stays unconditional", async () => {
      const { mapping } = await client().createMapping({ tenantId: tenant, mapping: { domain: d("bodyrev"), backends: ["http://a:1"] } });
      const moved = await client().updateMapping({ tenantId: tenant, domain: d("bodyrev"), mapping: { ...mapping!, backends: ["http://b:1"] } });
      // The mapping as read before that update, sent back changed: stale.
      const stale = await failure(client().updateMapping({ tenantId: tenant, domain: d("bodyrev"), mapping: { ...mapping!, backends: ["http://c:1"] } }));
      expect(stale.code).toBe(Code.FailedPrecondition);
      expect(stale.rawMessage).toContain(`not ${mapping!.revision}`);
      const mixed = await failure(
        client().updateMapping({ tenantId: tenant, domain: d("bodyrev"), mapping: { ...moved.mapping!, backends: ["http://c:1"] }, expectedRevision: mapping!.revision }),
      );
      expect(mixed.code).toBe(Code.FailedPrecondition);
      expect((await client().getMapping({ tenantId: tenant, domain: d("bodyrev") })).mapping!.backends).toEqual(["http://b:1"]);
      const current = await client().updateMapping({ tenantId: tenant, domain: d("bodyrev"), mapping: { ...moved.mapping!, backends: ["http://c:1"] } });
      expect(current.mapping!.backends).toEqual(["http://c:1"]);
      const unconditional = await client().updateMapping({ tenantId: tenant, domain: d("bodyrev"), mapping: { backends: ["http://d:1"], revision: 0n } });
      expect(unconditional.mapping!.backends).toEqual(["http://d:1"]);
    });

    it("sets and removes single labels with labels.<key> mask paths", async () => {
      await client().createMapping({ tenantId: tenant, mapping: { domain: d("labelpath"), backends: ["http://a:1"], labels: { a: "1", "Team.Name": "web", keep: "x" } } });
      const res = await client().updateMapping({
        tenantId: tenant,
        domain: d("labelpath"),
        mapping: { labels: { a: "2", new_key: "n" } },
        updateMask: { paths: ["labels.a", "labels.Team.Name", "labels.new_key", "labels.absent"] },
      });
      expect(res.mapping!.labels).toEqual({ a: "2", keep: "x", new_key: "n" });
      expect(res.mapping!.backends).toEqual(["http://a:1"]);
      const bad = await failure(client().updateMapping({ tenantId: tenant, domain: d("labelpath"), mapping: { labels: { "bad key": "v" } }, updateMask: { paths: ["labels.bad key"] } }));
      expect(bad.code).toBe(Code.InvalidArgument);
      expect(bad.rawMessage).toMatch(/^mapping\.labels/);
    });

    it.each([
      ["no mapping", { mapping: undefined }, "mapping"],
      ["a bad tenant id", { tenantId: "no/slash" }, "tenant_id"],
      ["an empty domain", { mapping: { domain: "", backends: ["http://a:1"] } }, "mapping.domain"],
      ["a domain with a port", { mapping: { domain: "x.example.org:80", backends: ["http://a:1"] } }, "mapping.domain"],
      ["a wildcard inside a name", { mapping: { domain: "a.*.example.org", backends: ["http://a:1"] } }, "mapping.domain"],
      ["no backends", { mapping: { domain: "nb.example.org", backends: [] } }, "mapping.backends"],
      ["65 backends", { mapping: { domain: "many.example.org", backends: [...Array(65).keys()].map((i) => `http://b${i}:1`) } }, "mapping.backends"],
      ["duplicate backends", { mapping: { domain: "dup.example.org", backends: ["http://a:1", "http://a:1"] } }, "mapping.backends"],
      ["an ftp backend", { mapping: { domain: "ftp.example.org", backends: ["ftp://a:1"] } }, "mapping.backends[0]"],
      ["a relative backend", { mapping: { domain: "rel.example.org", backends: ["/just/a/path"] } }, "mapping.backends[0]"],
      ["a backend with userinfo", { mapping: { domain: "ui.example.org", backends: ["http://user:pw@a:1"] } }, "mapping.backends[0]"],
      ["a backend with a query", { mapping: { domain: "q.example.org", backends: ["http://a:1/?x=1"] } }, "mapping.backends[0]"],
      ["a backend with a fragment", { mapping: { domain: "f.example.org", backends: ["http://a:1/#top"] } }, "mapping.backends[0]"],
      ["a backend port out of range", { mapping: { domain: "p.example.org", backends: ["http://a:65536"] } }, "mapping.backends[0]"],
      ["a bad label key", { mapping: { domain: "l.example.org", backends: ["http://a:1"], labels: { "bad key": "x" } } }, "mapping.labels"],
      ["a tenant_id in the body that differs", { mapping: { tenantId: "someone-else", domain: "tb.example.org", backends: ["http://a:1"] } }, "mapping.tenant_id"],
    ])("rejects a create with %s, naming the field", async (_what, patch, field) => {
      const req = { tenantId: tenant, mapping: { domain: "ok.example.org", backends: ["http://a:1"] }, ...patch };
      const err = await failure(client().createMapping(req));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage.startsWith(field)).toBe(true);
      expect(err.findDetails((await import("@bufbuild/protovalidate/gen/buf/validate/validate_pb.js")).ViolationsSchema)).toHaveLength(1);
    });

    it("validates the merged mapping of an update", async () => {
      await client().createMapping({ tenantId: tenant, mapping: { domain: d("merge"), backends: ["http://a:1"] } });
      const err = await failure(client().updateMapping({ tenantId: tenant, domain: d("merge"), mapping: { domain: d("merge"), backends: [] } }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toMatch(/^mapping\.backends/);
    });
  });

  describe("ListMappings", () => {
    const tenant = "lister";
    const domains = [...Array(120).keys()].map((i) => `site-${String(i).padStart(3, "0")}.list.example`);
    beforeAll(async () => {
      const client = daemon.client("connect");
      // Created one by one, in an order that is not alphabetical, to check insert order.
      for (const i of [...domains.keys()].sort((a, b) => (a * 37) % 120 - (b * 37) % 120)) {
        const labels: Record<string, string> = { parity: i % 2 === 0 ? "even" : "odd", ...(i % 10 === 0 ? { tens: "yes" } : {}) };
        await client.createMapping({ tenantId: tenant, mapping: { domain: domains[i]!, backends: ["http://a:1"], labels } });
      }
    });

    it("returns insert order, 50 by default, paged by offset and limit", async () => {
      const client = daemon.client("connect");
      const first = await client.listMappings({ tenantId: tenant });
      expect(first.mappings).toHaveLength(50);
      const revisions = first.mappings.map((m) => m.revision);
      expect([...revisions].sort((a, b) => (a < b ? -1 : 1))).toEqual(revisions);
      const all = (await client.listMappings({ tenantId: tenant, limit: 500 })).mappings.map((m) => m.domain);
      expect(all).toHaveLength(120);
      const page = await client.listMappings({ tenantId: tenant, offset: 100, limit: 30 });
      expect(page.mappings.map((m) => m.domain)).toEqual(all.slice(100));
      expect(page.nextPageToken).toBe("");
    });

    it("walks every mapping exactly once with page tokens", async () => {
      const client = daemon.client("grpc");
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await client.listMappings({ tenantId: tenant, limit: 7, pageToken });
        seen.push(...page.mappings.map((m) => m.domain));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(seen).toEqual((await client.listMappings({ tenantId: tenant, limit: 500 })).mappings.map((m) => m.domain));
    });

    it("filters by labels and domain suffix, and counts on request", async () => {
      const client = daemon.client("connect");
      const even = await client.listMappings({ tenantId: tenant, labelSelector: "parity=even,tens=yes", limit: 500, total: true });
      expect(even.mappings.map((m) => m.domain).sort()).toEqual(domains.filter((_, i) => i % 10 === 0).sort());
      expect(even.totalSize).toBe(12);
      const suffix = await client.listMappings({ tenantId: tenant, domainSuffix: "LIST.example.", limit: 5, total: true });
      expect(suffix.mappings).toHaveLength(5);
      expect(suffix.totalSize).toBe(120);
      expect((await client.listMappings({ tenantId: tenant, domainSuffix: "ist.example" })).mappings).toHaveLength(0);
      expect((await client.listMappings({ tenantId: tenant })).totalSize).toBeUndefined();
    });

    it("selects by labels in the Kubernetes selector syntax", async () => {
      const client = daemon.client("grpc");
      const count = async (labelSelector: string) => (await client.listMappings({ tenantId: tenant, labelSelector, limit: 1, total: true })).totalSize;
      const cases: Array<[string, number]> = [
        ["parity=odd", 60],
        ["parity==odd", 60],
        ["parity!=even", 60],
        ["tens", 12],
        ["!tens", 108],
        ["tens!=yes", 108],
        ["parity in (even, odd), tens", 12],
        ["parity notin (even)", 60],
        ["parity in (odd),!tens", 60],
        ["parity in (none)", 0],
        ["  parity = even , tens  ", 12],
        ["", 120],
      ];
      for (const [selector, n] of cases) expect(await count(selector), selector).toBe(n);
      const listed = await client.listMappings({ tenantId: tenant, labelSelector: "tens,parity!=odd", limit: 500 });
      expect(listed.mappings.map((m) => m.domain).sort()).toEqual(domains.filter((_, i) => i % 10 === 0).sort());
      for (const bad of ["parity in odd", "=odd", "parity,", "parity even", "parity in (odd", "bad key=x", "a=b=c", "!", "parity notin"]) {
        const err = await failure(client.listMappings({ tenantId: tenant, labelSelector: bad }));
        expect(err.code, bad).toBe(Code.InvalidArgument);
        expect(err.rawMessage, bad).toMatch(/^label_selector: /);
      }
    });

    it("searches domains by a case-insensitive substring, combined with the other filters", async () => {
      const client = daemon.client("connect");
      const found = async (q: string, labelSelector = "") => (await client.listMappings({ tenantId: tenant, q, labelSelector, limit: 500 })).mappings.map((m) => m.domain).sort();
      expect(await found("SITE-00")).toEqual(domains.slice(0, 10));
      expect(await found("e-11")).toEqual(domains.slice(110));
      expect(await found("e-11", "parity=odd")).toEqual(domains.slice(110).filter((_, i) => i % 2 === 1));
      // LIKE's wildcards are literal text here.
      expect(await found("_")).toEqual([]);
      expect(await found("%")).toEqual([]);
      expect(await found("site-0!")).toEqual([]);
      const page = await client.listMappings({ tenantId: tenant, q: "site", limit: 3 });
      expect((await failure(client.listMappings({ tenantId: tenant, q: "site-1", pageToken: page.nextPageToken }))).code).toBe(Code.InvalidArgument);
      expect((await client.listMappings({ tenantId: tenant, q: "site", pageToken: page.nextPageToken, limit: 3 })).mappings).toHaveLength(3);
    });

    it("rejects a token replayed with other filters, and offset with a token", async () => {
      const client = daemon.client("connect");
      const { nextPageToken } = await client.listMappings({ tenantId: tenant, limit: 3 });
      expect((await failure(client.listMappings({ tenantId: tenant, pageToken: nextPageToken, labelSelector: "parity=odd" }))).code).toBe(Code.InvalidArgument);
      expect((await failure(client.listMappings({ tenantId: tenant, pageToken: nextPageToken, offset: 3 }))).code).toBe(Code.InvalidArgument);
      expect((await failure(client.listMappings({ tenantId: tenant, limit: 501 }))).code).toBe(Code.InvalidArgument);
      expect((await failure(client.listMappings({ tenantId: tenant, offset: -1 }))).code).toBe(Code.InvalidArgument);
    });
  });
});
