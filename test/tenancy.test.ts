import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../gen/dynroute/v1/admin_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { AuditService } from "../gen/dynroute/v1/audit_pb.js";
import { KeyService } from "../gen/dynroute/v1/key_pb.js";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { TenantService } from "../gen/dynroute/v1/tenant_pb.js";
import { startHousekeeping } from "../src/service/housekeeping.js";
import { freshStore, protocols, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { outcome } from "./harness/outcome.js";
import { rest } from "./harness/rest.js";

/** Makes a key over REST, as an operator would with curl; returns its id and secret. */
async function makeKey(daemon: TestDaemon, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const res = await rest(daemon.baseUrl, "POST", "/v1/keys", { body });
  expect(res.status, res.text).toBe(201);
  expect(res.headers.get("location")).toBe(`/v1/keys/${res.json.key.id}`);
  return { id: res.json.key.id, secret: res.json.secret };
}

describe.each(stores)("tenant isolation on %s", (kind) => {
  let daemon: TestDaemon;
  let editorA: { id: string; secret: string };
  let viewerA: { id: string; secret: string };
  let editorB: { id: string; secret: string };

  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
    editorA = await makeKey(daemon, { tenant_id: "alpha", role: "editor", description: "alpha's deploy bot" });
    viewerA = await makeKey(daemon, { tenant_id: "alpha", role: "viewer" });
    editorB = await makeKey(daemon, { tenant_id: "beta", role: "editor" });
    expect((await rest(daemon.baseUrl, "PUT", "/v1/beta/mapping", { token: editorB.secret, body: { domain: "secret.beta.example", backends: ["http://b:1"] } })).status).toBe(201);
  });
  afterAll(() => daemon.close());

  describe("API keys", () => {
    it("shows a secret once, keeps only its hash, and lists keys without secrets", async () => {
      expect(editorA.secret).toMatch(/^dr\.k_[0-9a-f]{16}\.[\w-]{43}$/);
      const listed = await rest(daemon.baseUrl, "GET", "/v1/keys?tenant_id=alpha");
      expect(listed.status).toBe(200);
      expect(listed.json.keys.map((k: { id: string }) => k.id).sort()).toEqual([editorA.id, viewerA.id].sort());
      expect(listed.text).not.toContain(editorA.secret.split(".")[2]);
      expect(listed.json.keys.find((k: { id: string }) => k.id === editorA.id)).toMatchObject({ tenant_id: "alpha", role: "editor", description: "alpha's deploy bot" });
      const stored = await daemon.store.findKey(editorA.id);
      expect(stored?.secretHash).toHaveLength(32);
    });

    it("tells any key what it is", async () => {
      expect((await rest(daemon.baseUrl, "GET", "/v1/whoami", { token: viewerA.secret })).json).toEqual({ key_id: viewerA.id, role: "viewer", tenant_id: "alpha" });
      const admin = await daemon.clientOf(KeyService, "grpc").whoAmI({});
      expect(admin).toMatchObject({ role: "admin", tenantId: "" });
      expect(admin.keyId).toMatch(/^token:[0-9a-f]{12}$/);
      expect((await rest(daemon.baseUrl, "GET", "/v1/whoami", { token: null })).status).toBe(401);
    });

    it("records when a key was last used", async () => {
      await rest(daemon.baseUrl, "GET", "/v1/alpha/mapping", { token: viewerA.secret });
      await expect.poll(async () => (await rest(daemon.baseUrl, "GET", `/v1/keys/${viewerA.id}`)).json.key.last_used_time).toBeDefined();
    });

    it("refuses bad key requests with clear 400s and makes nothing", async () => {
      const before = (await rest(daemon.baseUrl, "GET", "/v1/keys?show_revoked=true")).json.keys.length;
      for (const [body, field] of [
        [{ role: "editor" }, "tenant_id"],
        [{ role: "admin", tenant_id: "alpha" }, "tenant_id"],
        [{ role: "owner", tenant_id: "alpha" }, "role"],
        [{ role: "viewer", tenant_id: "alpha", expire_time: "2001-01-01T00:00:00Z" }, "expire_time"],
      ] as const) {
        const res = await rest(daemon.baseUrl, "POST", "/v1/keys", { body });
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(JSON.stringify(res.json.details)).toContain(field);
      }
      expect((await rest(daemon.baseUrl, "GET", "/v1/keys?show_revoked=true")).json.keys).toHaveLength(before);
    });

    it("refuses a revoked key at once, an expired key, and a key with a wrong secret", async () => {
      const doomed = await makeKey(daemon, { tenant_id: "alpha", role: "viewer" });
      expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/mapping", { token: doomed.secret })).status).toBe(200);
      expect((await rest(daemon.baseUrl, "DELETE", `/v1/keys/${doomed.id}`)).status).toBe(204);
      const revoked = await rest(daemon.baseUrl, "GET", "/v1/alpha/mapping", { token: doomed.secret });
      expect(revoked.status).toBe(401);
      expect(revoked.json).toMatchObject({ code: "unauthenticated", message: `API key ${doomed.id} was revoked` });
      expect((await rest(daemon.baseUrl, "GET", `/v1/keys/${doomed.id}`)).json.key.revoke_time).toBeDefined();
      expect((await rest(daemon.baseUrl, "DELETE", "/v1/keys/k_0000000000000000")).status).toBe(404);

      const short = await makeKey(daemon, { tenant_id: "alpha", role: "viewer", expire_time: new Date(Date.now() + 1500).toISOString() });
      expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/mapping", { token: short.secret })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1600));
      expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/mapping", { token: short.secret })).json).toMatchObject({ code: "unauthenticated", message: `API key ${short.id} expired` });

      const forged = `${editorA.secret.slice(0, -4)}AAAA`;
      expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/mapping", { token: forged })).json).toMatchObject({ code: "unauthenticated", message: "invalid API key" });
    });
  });

  describe.each(protocols)("over %s", (protocol) => {
    it("lets an editor key do everything in its tenant and nothing elsewhere", async () => {
      const mine = daemon.client(protocol, editorA.secret);
      const domain = `ed-${protocol}.alpha.example`;
      expect(await outcome(mine.createMapping({ tenantId: "alpha", mapping: { domain, backends: ["http://a:1"] } }))).toBe("OK");
      expect(await outcome(mine.updateMapping({ tenantId: "alpha", domain, mapping: { backends: ["http://a:2"] } }))).toBe("OK");
      expect((await mine.listMappings({ tenantId: "alpha" })).mappings.map((m) => m.domain)).toContain(domain);
      expect(await outcome(mine.deleteMapping({ tenantId: "alpha", domain }))).toBe("OK");

      // Another tenant is indistinguishable from one that does not exist.
      const elsewhere = await Promise.all([
        outcome(mine.getMapping({ tenantId: "beta", domain: "secret.beta.example" })),
        outcome(mine.listMappings({ tenantId: "beta" })),
        outcome(mine.createMapping({ tenantId: "beta", mapping: { domain: `x-${protocol}.beta.example`, backends: ["http://a:1"] } })),
        outcome(mine.updateMapping({ tenantId: "beta", domain: "secret.beta.example", mapping: { backends: ["http://evil:1"] } })),
        outcome(mine.deleteMapping({ tenantId: "beta", domain: "secret.beta.example" })),
        outcome(mine.listMappings({ tenantId: "nobody-at-all" })),
        outcome(daemon.clientOf(AuditService, protocol, editorA.secret).listAuditEvents({ tenantId: "beta" })),
        outcome(daemon.clientOf(TenantService, protocol, editorA.secret).getTenant({ tenantId: "beta" })),
      ]);
      expect(elsewhere).toEqual(Array(8).fill("NotFound"));
      expect((await daemon.client(protocol).getMapping({ tenantId: "beta", domain: "secret.beta.example" })).mapping?.backends).toEqual(["http://b:1"]);
    });

    it("keeps a viewer key to reading, and tenant keys away from admin calls", async () => {
      const viewer = daemon.client(protocol, viewerA.secret);
      expect(await outcome(viewer.listMappings({ tenantId: "alpha" }))).toBe("OK");
      const writes = await Promise.all([
        outcome(viewer.createMapping({ tenantId: "alpha", mapping: { domain: `v-${protocol}.alpha.example`, backends: ["http://a:1"] } })),
        outcome(viewer.updateMapping({ tenantId: "alpha", domain: "any.alpha.example", mapping: { backends: ["http://a:1"] } })),
        outcome(viewer.deleteMapping({ tenantId: "alpha", domain: "any.alpha.example" })),
      ]);
      expect(writes).toEqual(Array(3).fill("PermissionDenied"));
      const adminCalls = await Promise.all(
        [viewerA, editorA].flatMap((k) => [
          outcome(daemon.clientOf(KeyService, protocol, k.secret).listKeys({})),
          outcome(daemon.clientOf(KeyService, protocol, k.secret).createKey({ role: "admin" })),
          outcome(daemon.clientOf(AdminService, protocol, k.secret).reconcile({})),
          outcome(daemon.clientOf(TenantService, protocol, k.secret).updateTenant({ tenantId: "alpha", tenant: { mappingQuota: 0 } })),
          outcome(daemon.clientOf(AuditService, protocol, k.secret).listAuditEvents({ tenantId: "" })),
        ]),
      );
      expect(adminCalls).toEqual(Array(10).fill("PermissionDenied"));
      expect((await daemon.client(protocol).listMappings({ tenantId: "alpha" })).mappings.map((m) => m.domain)).not.toContain(`v-${protocol}.alpha.example`);
    });

    it("refuses wrong keys before reading the request", async () => {
      for (const token of [null, "dr.k_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", `${editorA.secret}x`]) {
        expect(await outcome(daemon.client(protocol, token).createMapping({ tenantId: "no/such" }))).toBe("Unauthenticated");
      }
    });
  });

  it("answers REST alike: 404 for another tenant, 403 above the role, 401 without a key", async () => {
    const url = daemon.baseUrl;
    expect((await rest(url, "GET", "/v1/beta/mapping/secret.beta.example", { token: editorA.secret })).status).toBe(404);
    expect((await rest(url, "GET", "/v1/beta/mapping/none.beta.example", { token: editorA.secret })).json.message).toBe("tenant beta not found");
    expect((await rest(url, "DELETE", "/v1/beta/mapping/secret.beta.example", { token: editorA.secret })).status).toBe(404);
    const denied = await rest(url, "PUT", "/v1/alpha/mapping", { token: viewerA.secret, body: { domain: "v.alpha.example", backends: ["http://a:1"] } });
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ code: "permission_denied", message: "this call needs an editor key; this key is a viewer key of tenant alpha" });
    expect((await rest(url, "GET", "/v1/keys", { token: editorA.secret })).status).toBe(403);
    expect((await rest(url, "POST", "/v1/admin/reconcile", { token: editorA.secret, body: {} })).status).toBe(403);
    expect((await rest(url, "GET", "/v1/alpha/mapping", { token: null })).status).toBe(401);
    expect((await rest(url, "GET", "/v1/tenants/alpha", { token: viewerA.secret })).json).toMatchObject({ tenant_id: "alpha" });
  });

  it("keeps tenant ids that name API paths free", async () => {
    for (const tenantId of ["keys", "audit", "tenants", "admin"]) {
      expect(await outcome(daemon.client("connect").createMapping({ tenantId, mapping: { domain: `${tenantId}.reserved.example`, backends: ["http://a:1"] } }))).toBe("InvalidArgument");
      const key = await rest(daemon.baseUrl, "POST", "/v1/keys", { body: { tenant_id: tenantId, role: "viewer" } });
      expect(key.json.message).toContain("is reserved for the API's own paths");
    }
  });

  describe("audit trail", () => {
    it("records each write with its key, request id and before/after, and lists it newest first", async () => {
      const url = daemon.baseUrl;
      const headers = { "x-request-id": `audit-${kind}-1` };
      expect((await rest(url, "PUT", "/v1/alpha/mapping", { token: editorA.secret, headers, body: { domain: "audited.alpha.example", backends: ["http://a:1"] } })).status).toBe(201);
      await rest(url, "PUT", "/v1/alpha/mapping/audited.alpha.example", { token: editorA.secret, body: { domain: "audited.alpha.example", backends: ["http://a:2"] } });
      await rest(url, "PUT", "/v1/alpha/mapping/audited.alpha.example", { token: editorA.secret, body: { domain: "renamed.alpha.example", backends: ["http://a:2"] } });
      await rest(url, "DELETE", "/v1/alpha/mapping/renamed.alpha.example", { token: editorA.secret });
      // A refused write leaves no event.
      expect((await rest(url, "PUT", "/v1/alpha/mapping", { token: editorA.secret, body: { domain: "secret.beta.example", backends: ["http://a:1"] } })).status).toBe(409);

      const trail = await rest(url, "GET", "/v1/alpha/audit?domain=renamed.alpha.example", { token: viewerA.secret });
      expect(trail.status).toBe(200);
      expect(trail.json.events.map((e: { action: string }) => e.action)).toEqual(["delete", "rename"]);
      const [deleted, renamed] = trail.json.events;
      expect(renamed).toMatchObject({ tenant_id: "alpha", key_id: editorA.id, domain: "renamed.alpha.example", previous_domain: "audited.alpha.example" });
      expect(renamed.before).toMatchObject({ domain: "audited.alpha.example", backends: ["http://a:2"] });
      expect(renamed.after).toMatchObject({ domain: "renamed.alpha.example" });
      expect(deleted.after).toBeUndefined();

      const all = (await rest(url, "GET", "/v1/alpha/audit?domain=audited.alpha.example", { token: viewerA.secret })).json.events;
      expect(all.map((e: { action: string }) => e.action)).toEqual(["rename", "update", "create"]);
      expect(all[2]).toMatchObject({ request_id: `audit-${kind}-1`, after: { backends: ["http://a:1"] } });
      expect(all[2].before).toBeUndefined();
      expect(JSON.stringify(all)).not.toContain("secret.beta.example");
    });

    it("pages with a token, and lets admins read across tenants", async () => {
      const url = daemon.baseUrl;
      const first = await rest(url, "GET", "/v1/alpha/audit?limit=2", { token: viewerA.secret });
      expect(first.json.events).toHaveLength(2);
      const second = await rest(url, "GET", `/v1/alpha/audit?limit=2&page_token=${first.json.next_page_token}`, { token: viewerA.secret });
      expect(BigInt(second.json.events[0].id)).toBeLessThan(BigInt(first.json.events[1].id));
      const everyone = await rest(url, "GET", "/v1/audit?limit=500");
      expect(new Set(everyone.json.events.map((e: { tenant_id: string }) => e.tenant_id))).toEqual(new Set(["alpha", "beta"]));
      expect((await rest(url, "GET", "/v1/audit", { token: viewerA.secret })).status).toBe(403);
    });
  });

  describe("who may claim which name", () => {
    it.each([
      ["com", "domain.public_suffix"],
      ["localhost", "domain.single_label"],
      ["co.uk", "domain.public_suffix"],
      ["*.com", "domain.public_suffix"],
      ["*.co.uk", "domain.public_suffix"],
      ["*.xn--p1ai", "domain.public_suffix"],
      ["*.github.io", "domain.public_suffix"],
    ])("refuses %s with a clear 400", async (domain, ruleId) => {
      const res = await rest(daemon.baseUrl, "PUT", "/v1/alpha/mapping", { token: editorA.secret, body: { domain, backends: ["http://a:1"] } });
      expect(res.status).toBe(400);
      expect(res.json.details[0].violations[0]).toMatchObject({ rule_id: ruleId });
    });

    it("gives a wildcard's subtree to its owner, and a name the wildcards over it, without naming the other tenant", async () => {
      const url = daemon.baseUrl;
      const create = (token: string, domain: string) => rest(url, "PUT", `/v1/${token === editorA.secret ? "alpha" : "beta"}/mapping`, { token, body: { domain, backends: ["http://a:1"] } });
      expect((await create(editorB.secret, "app.x.claims.example")).status).toBe(201);
      const over = await create(editorA.secret, "*.x.claims.example");
      expect(over.status).toBe(409);
      expect(over.json.message).toBe("*.x.claims.example would cover names another tenant has mapped");
      expect(over.text).not.toContain("beta");
      expect((await create(editorA.secret, "*.claims.example")).status).toBe(409);

      expect((await create(editorA.secret, "*.y.claims.example")).status).toBe(201);
      const under = await create(editorB.secret, "deep.app.y.claims.example");
      expect(under.status).toBe(409);
      expect(under.json.message).toBe("deep.app.y.claims.example is covered by a wildcard another tenant has mapped");
      expect((await create(editorB.secret, "*.z.y.claims.example")).status).toBe(409);
      // A name's subtree is its owner's too, and a name and its wildcard go together.
      const below = await create(editorA.secret, "*.app.x.claims.example");
      expect(below.json.message).toBe("*.app.x.claims.example is under a name another tenant has mapped");
      expect((await create(editorA.secret, "deeper.app.x.claims.example")).status).toBe(409);
      const parent = await create(editorB.secret, "y.claims.example");
      expect(parent.json.message).toBe("y.claims.example is covered by a wildcard another tenant has mapped");
      // The owner of the wildcard may map names under it, and a rename cannot sneak in either.
      expect((await create(editorA.secret, "exact.y.claims.example")).status).toBe(201);
      const rename = await rest(url, "PUT", "/v1/beta/mapping/app.x.claims.example", { token: editorB.secret, body: { domain: "app.y.claims.example", backends: ["http://a:1"] } });
      expect(rename.status).toBe(409);
      expect((await rest(url, "GET", "/v1/beta/mapping/app.x.claims.example", { token: editorB.secret })).status).toBe(200);
    });

    it("lets exactly one of two tenants win overlapping claims made at the same moment", async () => {
      for (let round = 0; round < 8; round++) {
        const zone = `race${round}.claims.example`;
        const results = await Promise.all([
          rest(daemon.baseUrl, "PUT", "/v1/alpha/mapping", { token: editorA.secret, body: { domain: `*.${zone}`, backends: ["http://a:1"] } }),
          rest(daemon.baseUrl, "PUT", "/v1/beta/mapping", { token: editorB.secret, body: { domain: `host.${zone}`, backends: ["http://a:1"] } }),
        ]);
        expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
      }
    });
  });

  describe("tenant settings", () => {
    it("keeps a tenant inside its zones and under its quota", async () => {
      const url = daemon.baseUrl;
      const set = await rest(url, "PUT", "/v1/tenants/gamma", { body: { zones: ["VMS.gamma.example", "apps.gamma.example"], mapping_quota: 3 } });
      expect(set.status).toBe(200);
      expect(set.json).toMatchObject({ tenant_id: "gamma", zones: ["vms.gamma.example", "apps.gamma.example"], mapping_quota: 3, mapping_count: 0 });
      const gamma = await makeKey(daemon, { tenant_id: "gamma", role: "editor" });
      const create = (domain: string) => rest(url, "PUT", "/v1/gamma/mapping", { token: gamma.secret, body: { domain, backends: ["http://a:1"] } });

      const outside = await create("www.gamma.example");
      expect(outside.status).toBe(403);
      expect(outside.json.message).toContain("may only map names in its zones (vms.gamma.example, apps.gamma.example)");
      const results = await Promise.all(["a", "b", "c", "d", "e", "f"].map((n) => create(`${n}.vms.gamma.example`)));
      expect(results.filter((r) => r.status === 201)).toHaveLength(3);
      const over = results.find((r) => r.status !== 201)!;
      expect(over.status).toBe(429);
      expect(over.json.code).toBe("resource_exhausted");
      expect((await rest(url, "GET", "/v1/tenants/gamma", { token: gamma.secret })).json.mapping_count).toBe(3);
      expect((await rest(url, "PUT", "/v1/tenants/gamma", { body: { zones: ["*.gamma.example"] } })).status).toBe(400);
      expect((await rest(url, "GET", "/v1/tenants")).json.tenants.map((t: { tenant_id: string }) => t.tenant_id)).toEqual(expect.arrayContaining(["alpha", "beta", "gamma"]));
    });
  });
});

describe("backend destination policy", () => {
  let strict: TestDaemon;
  beforeAll(async () => {
    // No allowance for loopback, as a fresh install runs; one operator denial.
    strict = await startTestDaemon(await freshStore("sqlite"), { DYNROUTE_BACKEND_ALLOW: "", DYNROUTE_BACKEND_DENY: "10.9.0.0/16" });
  });
  afterAll(() => strict.close());

  it.each(["http://127.0.0.1:3000", "http://[::1]:3000", "http://169.254.169.254/latest/meta-data", "http://[fe80::1]:80", "http://0.0.0.0:80", "http://[::]:80"])(
    "refuses %s, naming the setting that would allow it, and writes nothing",
    async (backend) => {
      const res = await rest(strict.baseUrl, "PUT", "/v1/p/mapping", { body: { domain: "p.policy.example", backends: ["http://10.0.0.5", backend] } });
      expect(res.status).toBe(400);
      expect(res.json.details[0].violations[0]).toMatchObject({ field: { elements: [{ field_name: "mapping" }, { field_name: "backends", index: "1" }] }, rule_id: "backend.policy" });
      expect(res.json.message).toMatch(/DYNROUTE_BACKEND_ALLOW=/);
      expect((await rest(strict.baseUrl, "GET", "/v1/p/mapping")).json.mappings).toEqual([]);
    },
  );

  it.each(["http://127.1", "http://2130706433", "http://0x7f000001", "http://127.0.0.1.", "http://[fe80::1%25eth0]"])("refuses the address spelling %s", async (backend) => {
    const res = await rest(strict.baseUrl, "PUT", "/v1/p/mapping", { body: { domain: "p.policy.example", backends: [backend] } });
    expect(res.status).toBe(400);
    expect(res.json.details[0].violations[0].rule_id).toBe("backend.host");
  });

  it("refuses what DYNROUTE_BACKEND_DENY adds, over RPC too, and stores canonical backends", async () => {
    for (const protocol of protocols) {
      expect(await outcome(strict.client(protocol).createMapping({ tenantId: "p", mapping: { domain: `d-${protocol}.policy.example`, backends: ["http://10.9.3.4:80"] } }))).toBe("InvalidArgument");
    }
    const created = await strict.client("connect").createMapping({ tenantId: "p", mapping: { domain: "ok.policy.example", backends: ["HTTP://Backend-1.Internal:080/App", "http://[FD00::0:1]:81"] } });
    expect(created.mapping?.backends).toEqual(["http://backend-1.internal:80/App", "http://[fd00::1]:81"]);
  });

  it("publishes its rules to routers in Redis, and tells them when they change", async () => {
    const redis = new Redis(strict.config.redis.url);
    const subscriber = new Redis(strict.config.redis.url);
    const { prefix } = strict.config.redis;
    try {
      await expect.poll(async () => JSON.parse((await redis.get(`${prefix}backend-policy`)) ?? "{}").rules?.[0]).toEqual({ cidr: "10.9.0.0/16", action: "deny", reason: "DYNROUTE_BACKEND_DENY" });
      const messages: string[] = [];
      subscriber.on("message", (_channel, message) => messages.push(message));
      await subscriber.subscribe(`${prefix}route-invalidate`);
      const changed = await startTestDaemon(await freshStore("sqlite"), { DYNROUTE_REDIS_PREFIX: prefix, DYNROUTE_BACKEND_ALLOW: "", DYNROUTE_BACKEND_DENY: "10.8.0.0/16" });
      try {
        await expect.poll(() => messages).toContain("!backend-policy");
        expect(JSON.parse((await redis.get(`${prefix}backend-policy`))!).rules[0].cidr).toBe("10.8.0.0/16");
      } finally {
        await changed.close();
      }
    } finally {
      redis.disconnect();
      subscriber.disconnect();
    }
  });
});

it("expires keys made to expire, as set through RPC", async () => {
  const daemon = await startTestDaemon(await freshStore("sqlite"));
  try {
    const keys = daemon.clientOf(KeyService, "connect");
    const made = await keys.createKey({ tenantId: "t", role: "viewer", expireTime: timestampFromDate(new Date(Date.now() + 60_000)) });
    expect(made.key?.expireTime).toBeDefined();
    expect(await outcome(daemon.clientOf(MappingService, "grpc", made.secret).listMappings({ tenantId: "t" }))).toBe("OK");
  } finally {
    await daemon.close();
  }
});

it("refuses a key revoked on one replica on every other, once their cached copy ages out", async () => {
  const storeEnv = await freshStore("mysql");
  const [first, second] = [await startTestDaemon(storeEnv), await startTestDaemon(storeEnv)];
  try {
    // Both: the second replica waits for the first one's migrations, and answers 503 until they are done.
    await Promise.all([first.store.ready, second.store.ready]);
    const key = await makeKey(first, { tenant_id: "t", role: "viewer" });
    expect((await rest(second.baseUrl, "GET", "/v1/t/mapping", { token: key.secret })).status).toBe(200);
    expect((await rest(first.baseUrl, "DELETE", `/v1/keys/${key.id}`)).status).toBe(204);
    // The other replica has the key cached; the cache's one-second life ends its use there without a restart.
    await expect.poll(async () => (await rest(second.baseUrl, "GET", "/v1/t/mapping", { token: key.secret })).status, { interval: 50, timeout: 5000 }).toBe(401);
  } finally {
    await Promise.all([first.close(), second.close()]);
  }
});

it("serves the schema over reflection to any valid key, and to no one else", async () => {
  const daemon = await startTestDaemon(await freshStore("sqlite"));
  try {
    const viewer = await makeKey(daemon, { tenant_id: "t", role: "viewer" });
    const services = async (token: string | null) => {
      const names: string[] = [];
      async function* ask() {
        yield { messageRequest: { case: "listServices" as const, value: "" } };
      }
      for await (const res of daemon.clientOf(ServerReflection, "grpc", token).serverReflectionInfo(ask())) {
        if (res.messageResponse.case === "listServicesResponse") names.push(...res.messageResponse.value.service.map((s) => s.name));
      }
      return names;
    };
    expect(await services(viewer.secret)).toEqual(expect.arrayContaining(["dynroute.v1.MappingService", "dynroute.v1.KeyService"]));
    expect(await outcome(services("dr.k_0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))).toBe("Unauthenticated");
  } finally {
    await daemon.close();
  }
});

describe.each(stores)("audit retention on %s", (kind) => {
  it("removes events older than the retention, on the relay leader, and keeps newer ones", async () => {
    const daemon = await startTestDaemon(await freshStore(kind));
    try {
      await daemon.store.ready;
      await daemon.client("connect").createMapping({ tenantId: "r", mapping: { domain: "kept.retention.example", backends: ["http://a:1"] } });
      expect(await daemon.store.pruneAudit(new Date(Date.now() - 60_000))).toBe(0);
      const retention = startHousekeeping({ store: daemon.store, auditRetentionMs: 86_400_000, idempotencyTtlMs: 86_400_000, isLeader: () => true, logger: pino({ level: "silent" }), everyMs: 20 });
      await new Promise((r) => setTimeout(r, 100));
      retention.stop();
      expect((await daemon.store.listAudit({ tenantId: "r", limit: 10 })).map((e) => e.domain)).toEqual(["kept.retention.example"]);
      expect(await daemon.store.pruneAudit(new Date(Date.now() + 1000))).toBe(1);
      expect(await daemon.store.listAudit({ tenantId: "r", limit: 10 })).toEqual([]);
    } finally {
      await daemon.close();
    }
  });
});
