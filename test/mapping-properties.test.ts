import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, protocols, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { outcome } from "./harness/outcome.js";
import { rest } from "./harness/rest.js";

describe.each(stores)("single-property updates on %s", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  const create = async (domain: string) =>
    (await rest(daemon.baseUrl, "PUT", "/v1/t/mapping", { body: { domain, backends: ["http://a:1"], labels: { env: "prod", team: "web" } } })).json;

  it("replaces the backends from a JSON array, keeping the rest", async () => {
    const before = await create("backends.props.example");
    const res = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/backends.props.example/backends", { body: ["HTTP://B:2", "http://c:3/x"] });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ domain: "backends.props.example", backends: ["http://b:2", "http://c:3/x"], labels: { env: "prod", team: "web" } });
    expect(res.headers.get("etag")).toBe(`"${res.json.revision}"`);
    expect(BigInt(res.json.revision)).toBeGreaterThan(BigInt(before.revision));
    const audit = await daemon.store.listAudit({ domain: "backends.props.example", limit: 5 });
    expect(audit[0]).toMatchObject({ action: "update", before: { backends: ["http://a:1"] }, after: { backends: ["http://b:2", "http://c:3/x"] } });
  });

  it("checks the backends by the rules of a whole mapping, and changes nothing on refusal", async () => {
    await create("bad-backends.props.example");
    for (const body of [[], ["ftp://x"], ["http://a:1", "http://a:1"], "http://a:1", { backends: ["http://a:1"] }]) {
      const res = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/bad-backends.props.example/backends", { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await rest(daemon.baseUrl, "GET", "/v1/t/mapping/bad-backends.props.example")).json.backends).toEqual(["http://a:1"]);
  });

  it("sets and removes one label by its own path", async () => {
    await create("labels.props.example");
    const set = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/labels.props.example/labels/tier", { body: JSON.stringify("gold") });
    expect(set.json.labels).toEqual({ env: "prod", team: "web", tier: "gold" });
    const replaced = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/labels.props.example/labels/env", { body: JSON.stringify("staging") });
    expect(replaced.json.labels.env).toBe("staging");
    const removed = await rest(daemon.baseUrl, "DELETE", "/v1/t/mapping/labels.props.example/labels/team");
    expect(removed.status).toBe(200);
    expect(removed.json.labels).toEqual({ env: "staging", tier: "gold" });
    expect((await rest(daemon.baseUrl, "DELETE", "/v1/t/mapping/labels.props.example/labels/team")).status).toBe(404);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/labels.props.example/labels/bad%20key", { body: JSON.stringify("x") })).status).toBe(400);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/labels.props.example/labels/k", { body: JSON.stringify("no spaces allowed") })).status).toBe(400);
  });

  it("honours If-Match, and answers 404 for a missing mapping", async () => {
    const m = await create("ifmatch.props.example");
    const stale = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/ifmatch.props.example/labels/x", { body: JSON.stringify("1"), headers: { "if-match": `"${BigInt(m.revision) - 1n}"` } });
    expect(stale.status).toBe(412);
    const fresh = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/ifmatch.props.example/labels/x", { body: JSON.stringify("1"), headers: { "if-match": `"${m.revision}"` } });
    expect(fresh.status).toBe(200);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/t/mapping/none.props.example/backends", { body: ["http://a:1"] })).status).toBe(404);
  });

  it.each(protocols)("works over %s", async (protocol) => {
    const domain = `rpc-${protocol}.props.example`;
    await create(domain);
    const client = daemon.client(protocol);
    expect((await client.setBackends({ tenantId: "t", domain, backends: ["http://z:9"] })).mapping?.backends).toEqual(["http://z:9"]);
    expect((await client.setLabel({ tenantId: "t", domain, key: "k", value: "v" })).mapping?.labels).toMatchObject({ k: "v" });
    expect((await client.deleteLabel({ tenantId: "t", domain, key: "k" })).mapping?.labels).not.toHaveProperty("k");
    expect(await outcome(client.setBackends({ tenantId: "t", domain, backends: [] }))).toBe("InvalidArgument");
  });
});

describe.each(stores)("mapping status on %s", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  it("is enabled by default, kept by updates that leave it out, and filterable", async () => {
    const url = daemon.baseUrl;
    expect((await rest(url, "PUT", "/v1/t/mapping", { body: { domain: "on.status.example", backends: ["http://a:1"] } })).json.status).toBe("enabled");
    const off = await rest(url, "PUT", "/v1/t/mapping", { body: { domain: "off.status.example", backends: ["http://a:1"], status: "disabled" } });
    expect(off.json.status).toBe("disabled");
    // A whole-mapping update without status keeps it; one that names it changes it.
    expect((await rest(url, "PUT", "/v1/t/mapping/off.status.example", { body: { domain: "off.status.example", backends: ["http://a:2"] } })).json.status).toBe("disabled");
    const listed = await rest(url, "GET", "/v1/t/mapping?status=disabled&total=true");
    expect(listed.json.mappings.map((m: { domain: string }) => m.domain)).toEqual(["off.status.example"]);
    expect(listed.json.total_size).toBe(1);
    expect((await rest(url, "GET", "/v1/t/mapping?status=enabled")).json.mappings.map((m: { domain: string }) => m.domain)).toEqual(["on.status.example"]);
    expect((await rest(url, "PUT", "/v1/t/mapping", { body: { domain: "bad.status.example", backends: ["http://a:1"], status: "paused" } })).status).toBe(400);
    expect((await daemon.client("grpc").updateMapping({ tenantId: "t", domain: "off.status.example", mapping: { status: "enabled" }, updateMask: { paths: ["status"] } })).mapping?.status).toBe("enabled");
    const audit = await daemon.store.listAudit({ domain: "off.status.example", limit: 1 });
    expect(audit[0]).toMatchObject({ action: "update", before: { status: "disabled" }, after: { status: "enabled" } });
  });

  it("keeps a disabled mapping's backends in the store but gives routers none", async () => {
    await rest(daemon.baseUrl, "PUT", "/v1/t/mapping", { body: { domain: "quiet.status.example", backends: ["http://a:1"], status: "disabled" } });
    const routes = await daemon.store.scanRoutes(0n, 1000);
    expect(routes.find((r) => r.domain === "quiet.status.example")?.backends).toEqual([]);
    expect((await daemon.store.get("t", "quiet.status.example")).backends).toEqual(["http://a:1"]);
  });
});
