import { createPrivateKey, generateKeyPair, generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { inject } from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { TestCa } from "./harness/certs.js";
import { rest } from "./harness/rest.js";

async function makeKey(daemon: TestDaemon, tenant: string): Promise<string> {
  const res = await rest(daemon.baseUrl, "POST", "/v1/keys", { body: { tenant_id: tenant, role: "editor" } });
  expect(res.status, res.text).toBe(201);
  return res.json.secret;
}

describe.each(stores)("certificates on %s", (kind) => {
  const ca = new TestCa();
  const SECRET = "correct horse battery staple 42";
  let daemon: TestDaemon;
  let redis: Redis;
  let alpha: string;
  let beta: string;
  const certKey = (name: string) => `${daemon.config.redis.prefix}cert:${name}`;
  const put = (tenant: string, name: string, body: object, token = alpha) => rest(daemon.baseUrl, "PUT", `/v1/${tenant}/certificates/${name}`, { token, body });

  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind), { DYNROUTE_SECRET_KEY: SECRET });
    await daemon.store.ready;
    redis = new Redis(inject("redisUrl"));
    alpha = await makeKey(daemon, "alpha");
    beta = await makeKey(daemon, "beta");
    for (const domain of ["www.alpha.example", "*.apps.alpha.example"]) {
      expect((await rest(daemon.baseUrl, "PUT", "/v1/alpha/mapping", { token: alpha, body: { domain, backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
    }
    expect((await rest(daemon.baseUrl, "PUT", "/v1/beta/mapping", { token: beta, body: { domain: "beta.example", backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
  });
  afterAll(async () => {
    redis.disconnect();
    await daemon.close();
  });

  it("stores a certificate for names the tenant owns, never shows its key, encrypts it at rest and hands it to routers", async () => {
    const leaf = ca.issue(["www.alpha.example", "x.apps.alpha.example", "*.apps.alpha.example"]);
    const res = await put("alpha", "www.alpha.example", { certificate_chain: leaf.chain + ca.pem, private_key: leaf.key });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ tenant_id: "alpha", name: "www.alpha.example", dns_names: ["www.alpha.example", "x.apps.alpha.example", "*.apps.alpha.example"] });
    expect(res.json.issuer).toContain("dynroute test CA");
    expect(Date.parse(res.json.expire_time)).toBeGreaterThan(Date.now());
    expect(res.headers.get("etag")).toBe(`"${res.json.revision}"`);
    const got = await rest(daemon.baseUrl, "GET", "/v1/alpha/certificates/www.alpha.example", { token: alpha });
    const listed = await rest(daemon.baseUrl, "GET", "/v1/alpha/certificates", { token: alpha });
    expect(listed.json.certificates.map((c: { name: string }) => c.name)).toEqual(["www.alpha.example"]);
    for (const shown of [res.json, got.json, listed.json.certificates[0]]) expect(shown.source).toBe("CERTIFICATE_SOURCE_UPLOADED");
    const keyBody = leaf.key.split("\n")[1]!;
    for (const answer of [res, got, listed]) expect(answer.text).not.toMatch(/PRIVATE KEY/);
    // At rest the key is ciphertext: nothing of the PEM (or its PKCS#8 re-encoding) is in the store.
    const stored = await daemon.store.getCertificate("alpha", "www.alpha.example");
    expect(stored.sealedKey).toMatch(/^aes256gcm:/);
    expect(stored.sealedKey).not.toContain(keyBody);
    // Routers get the chain and the plain key through the outbox.
    await expect.poll(() => redis.hget(certKey("www.alpha.example"), "chain")).toContain("BEGIN CERTIFICATE");
    expect(await redis.hget(certKey("www.alpha.example"), "key")).toContain("PRIVATE KEY");
    expect(await redis.hget(certKey("www.alpha.example"), "rev")).toBe(String(res.json.revision));
  });

  it("refuses a wrong key, a name the tenant does not own, an expired certificate and garbage, naming the field", async () => {
    const leaf = ca.issue(["www.alpha.example"]);
    const other = ca.issue(["www.alpha.example"]);
    const cases: Array<[object, number, string]> = [
      [{ certificate_chain: leaf.chain, private_key: other.key }, 400, "private_key"],
      [{ certificate_chain: "not a certificate", private_key: leaf.key }, 400, "certificate_chain"],
      [{ certificate_chain: leaf.chain, private_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" }, 400, "private_key"],
    ];
    const expired = ca.issue(["www.alpha.example"], { from: new Date(Date.now() - 40 * 86_400_000), to: new Date(Date.now() - 86_400_000) });
    cases.push([{ certificate_chain: expired.chain, private_key: expired.key }, 400, "certificate_chain"]);
    // Keys routers would sign every handshake with, at a cost to every tenant or that browsers refuse.
    // (The large key off the event loop: the daemon shares it, and would close kept-alive sockets under the client.)
    const large = join(ca.dir, "rsa4608.key");
    writeFileSync(large, (await promisify(generateKeyPair)("rsa", { modulusLength: 4608 })).privateKey.export({ type: "pkcs8", format: "pem" }));
    for (const key of [["-newkey", "rsa:1024"], ["-key", large], ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"]]) {
      const odd = ca.issue(["www.alpha.example"], { key });
      cases.push([{ certificate_chain: odd.chain, private_key: odd.key }, 400, "private_key.kind"]);
    }
    // The leaf's public half with a private exponent of another key: equal public parts, but it cannot sign.
    const rsa = ca.issue(["www.alpha.example"], { key: ["-newkey", "rsa:2048"] });
    const forged = { ...createPrivateKey(rsa.key).export({ format: "jwk" }) };
    const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
    Object.assign(forged, { d: stranger.d, dp: stranger.dp, dq: stranger.dq });
    cases.push([{ certificate_chain: rsa.chain, private_key: createPrivateKey({ key: forged, format: "jwk" }).export({ type: "pkcs8", format: "pem" }) }, 400, "private_key.match"]);
    for (const [body, status, field] of cases) {
      const res = await put("alpha", "www.alpha.example", body);
      expect(res.status, res.text).toBe(status);
      expect(JSON.stringify(res.json.details ?? res.json)).toContain(field);
    }
    // A SAN the tenant does not own (beta's), and a certificate that does not cover the name.
    const stolen = ca.issue(["www.alpha.example", "beta.example"]);
    const denied = await put("alpha", "www.alpha.example", { certificate_chain: stolen.chain, private_key: stolen.key });
    expect(denied.status, denied.text).toBe(403);
    expect(denied.json.message).toContain("beta.example");
    const elsewhere = ca.issue(["y.apps.alpha.example"]);
    const mismatch = await put("alpha", "www.alpha.example", { certificate_chain: elsewhere.chain, private_key: elsewhere.key });
    expect(mismatch.status).toBe(400);
    expect(JSON.stringify(mismatch.json.details)).toContain('"name"');
    // Nothing of the refused uploads was stored.
    expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/certificates", { token: alpha })).json.certificates.map((c: { name: string }) => c.name)).toEqual(["www.alpha.example"]);
  });

  it("keeps tenants apart: another tenant's key can neither read nor write alpha's certificates", async () => {
    const leaf = ca.issue(["beta.example"]);
    expect((await put("alpha", "beta.example", { certificate_chain: leaf.chain, private_key: leaf.key }, beta)).status).toBe(404);
    expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/certificates/www.alpha.example", { token: beta })).status).toBe(404);
    expect((await rest(daemon.baseUrl, "DELETE", "/v1/alpha/certificates/www.alpha.example", { token: beta })).status).toBe(404);
    // Beta may not hold a certificate for alpha's name either.
    const forAlpha = ca.issue(["www.alpha.example"]);
    expect((await put("beta", "www.alpha.example", { certificate_chain: forAlpha.chain, private_key: forAlpha.key }, beta)).status).toBe(403);
    expect((await rest(daemon.baseUrl, "GET", "/v1/beta/certificates", { token: beta })).json.certificates).toEqual([]);
  });

  it("gives a tenant that maps a parent later none of the names another tenant mapped under it", async () => {
    const map = (tenant: string, token: string, domain: string) => rest(daemon.baseUrl, "PUT", `/v1/${tenant}/mapping`, { token, body: { domain, backends: ["http://127.0.0.1:9"] } });
    expect((await map("beta", beta, "shop.parent.example")).status).toBe(201);
    expect((await map("beta", beta, "*.shop.parent2.example")).status).toBe(201);
    // A plain parent is accepted (its subtree is not scanned on a claim), but it owns nothing beta mapped first.
    for (const parent of ["parent.example", "parent2.example"]) expect((await map("alpha", alpha, parent)).status).toBe(201);
    const exact = ca.issue(["shop.parent.example"]);
    const wide = ca.issue(["*.parent.example", "shop.parent.example"]);
    const under = ca.issue(["pay.shop.parent2.example"]);
    const attempts = [await put("alpha", "shop.parent.example", { certificate_chain: exact.chain, private_key: exact.key }), await put("alpha", "*.parent.example", { certificate_chain: wide.chain, private_key: wide.key }), await put("alpha", "pay.shop.parent2.example", { certificate_chain: under.chain, private_key: under.key })];
    expect(attempts.map((a) => a.status)).toEqual([403, 403, 403]);
    // The names stay beta's to certify.
    expect((await put("beta", "shop.parent.example", { certificate_chain: exact.chain, private_key: exact.key }, beta)).status).toBe(200);
    expect((await put("beta", "pay.shop.parent2.example", { certificate_chain: under.chain, private_key: under.key }, beta)).status).toBe(200);
    // What alpha's parent does own is still alpha's.
    const own = ca.issue(["parent.example", "www.parent.example"]);
    expect((await put("alpha", "parent.example", { certificate_chain: own.chain, private_key: own.key })).status).toBe(200);
    for (const [tenant, token, name] of [["beta", beta, "shop.parent.example"], ["beta", beta, "pay.shop.parent2.example"], ["alpha", alpha, "parent.example"]] as const) {
      expect((await rest(daemon.baseUrl, "DELETE", `/v1/${tenant}/certificates/${name}`, { token })).status).toBe(204);
    }
    for (const domain of ["parent.example", "parent2.example"]) expect((await rest(daemon.baseUrl, "DELETE", `/v1/alpha/mapping/${domain}`, { token: alpha })).status).toBe(204);
  });

  it("counts certificates against the tenant's mapping quota", async () => {
    const quota = await rest(daemon.baseUrl, "PUT", "/v1/tenants/gamma", { body: { mapping_quota: 1 } });
    expect(quota.status, quota.text).toBe(200);
    const gamma = await makeKey(daemon, "gamma");
    expect((await rest(daemon.baseUrl, "PUT", "/v1/gamma/mapping", { token: gamma, body: { domain: "*.gamma.example", backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
    const a = ca.issue(["a.gamma.example"]);
    const b = ca.issue(["b.gamma.example"]);
    expect((await put("gamma", "a.gamma.example", { certificate_chain: a.chain, private_key: a.key }, gamma)).status).toBe(200);
    const over = await put("gamma", "b.gamma.example", { certificate_chain: b.chain, private_key: b.key }, gamma);
    expect(over.status, over.text).toBe(429);
    expect(over.json.message).toContain("quota of 1");
    // Replacing one it holds is no new certificate.
    const again = ca.issue(["a.gamma.example"]);
    expect((await put("gamma", "a.gamma.example", { certificate_chain: again.chain, private_key: again.key }, gamma)).status).toBe(200);
    expect((await rest(daemon.baseUrl, "GET", "/v1/gamma/certificates", { token: gamma })).json.certificates.map((c: { name: string }) => c.name)).toEqual(["a.gamma.example"]);
  });

  it("lists certificates a page at a time, by name", async () => {
    const delta = await makeKey(daemon, "delta");
    expect((await rest(daemon.baseUrl, "PUT", "/v1/delta/mapping", { token: delta, body: { domain: "*.delta.example", backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
    for (const name of ["c.delta.example", "a.delta.example", "b.delta.example"]) {
      const leaf = ca.issue([name]);
      expect((await put("delta", name, { certificate_chain: leaf.chain, private_key: leaf.key }, delta)).status).toBe(200);
    }
    const list = (query: string) => rest(daemon.baseUrl, "GET", `/v1/delta/certificates${query}`, { token: delta });
    const first = await list("?limit=2");
    expect(first.json.certificates.map((c: { name: string }) => c.name)).toEqual(["a.delta.example", "b.delta.example"]);
    expect(first.json.next_page_token).not.toBe("");
    const second = await list(`?limit=2&page_token=${first.json.next_page_token}`);
    expect(second.json.certificates.map((c: { name: string }) => c.name)).toEqual(["c.delta.example"]);
    expect(second.json.next_page_token ?? "").toBe("");
    expect((await list("")).json.certificates).toHaveLength(3);
    // A token is the tenant's: another tenant's list refuses it, as it refuses garbage.
    const elsewhere = await rest(daemon.baseUrl, "GET", `/v1/alpha/certificates?page_token=${first.json.next_page_token}`, { token: alpha });
    expect(elsewhere.status, elsewhere.text).toBe(400);
    expect((await list("?page_token=garbage")).status).toBe(400);
    expect((await list("?limit=501")).status).toBe(400);
  });

  it("accepts a wildcard certificate for a mapped wildcard and names under it", async () => {
    const leaf = ca.issue(["*.apps.alpha.example"]);
    const res = await put("alpha", "*.apps.alpha.example", { certificate_chain: leaf.chain, private_key: leaf.key });
    expect(res.status, res.text).toBe(200);
    const under = await put("alpha", "one.apps.alpha.example", { certificate_chain: leaf.chain, private_key: leaf.key });
    expect(under.status, under.text).toBe(200);
    await expect.poll(() => redis.hget(certKey("*.apps.alpha.example"), "chain")).toContain("BEGIN CERTIFICATE");
  });

  it("drops certificates with the mapping that made their names the tenant's, and on delete", async () => {
    expect((await rest(daemon.baseUrl, "DELETE", "/v1/alpha/mapping/*.apps.alpha.example", { token: alpha })).status).toBe(204);
    const names = (await rest(daemon.baseUrl, "GET", "/v1/alpha/certificates", { token: alpha })).json.certificates.map((c: { name: string }) => c.name);
    expect(names).toEqual(["www.alpha.example"]);
    await expect.poll(() => redis.hget(certKey("*.apps.alpha.example"), "deleted")).toBe("1");
    expect(await redis.hget(certKey("one.apps.alpha.example"), "deleted")).toBe("1");
    // A rename moves the mapping away from the certificate's name.
    const renamed = await rest(daemon.baseUrl, "PUT", "/v1/alpha/mapping/www.alpha.example", { token: alpha, body: { domain: "web.alpha.example", backends: ["http://127.0.0.1:9"] } });
    expect(renamed.status, renamed.text).toBe(200);
    expect((await rest(daemon.baseUrl, "GET", "/v1/alpha/certificates", { token: alpha })).json.certificates).toEqual([]);
    await expect.poll(() => redis.hget(certKey("www.alpha.example"), "deleted")).toBe("1");
    expect(await redis.hget(certKey("www.alpha.example"), "key")).toBeNull();
    // Deleting one that is not there.
    expect((await rest(daemon.baseUrl, "DELETE", "/v1/alpha/certificates/www.alpha.example", { token: alpha })).status).toBe(404);
  });

  it("reconciliation restores certificates Redis lost and retires ones the store does not have", async () => {
    const leaf = ca.issue(["web.alpha.example"]);
    expect((await put("alpha", "web.alpha.example", { certificate_chain: leaf.chain, private_key: leaf.key })).status).toBe(200);
    await expect.poll(() => redis.hget(certKey("web.alpha.example"), "chain")).toContain("BEGIN CERTIFICATE");
    await redis.del(certKey("web.alpha.example"));
    await redis.hset(certKey("stray.alpha.example"), "rev", "1", "chain", "x", "key", "y");
    await daemon.app.reconciler.run("test");
    expect(await redis.hget(certKey("web.alpha.example"), "chain")).toBe(leaf.chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0] + "\n");
    expect(await redis.hgetall(certKey("stray.alpha.example"))).toMatchObject({ deleted: "1" });
    expect((await rest(daemon.baseUrl, "DELETE", "/v1/alpha/certificates/web.alpha.example", { token: alpha })).status).toBe(204);
    await expect.poll(() => redis.hget(certKey("web.alpha.example"), "deleted")).toBe("1");
  });
});

it("a private key sealed with another DYNROUTE_SECRET_KEY holds up neither routes nor other certificates", async () => {
  const ca = new TestCa();
  const storeEnv = await freshStore("sqlite");
  const env = (secret: string) => ({ DYNROUTE_SECRET_KEY: secret, DYNROUTE_REDIS_PREFIX: `sk${Date.now()}:` });
  const shared = env("the first secret key 0123456789");
  const redis = new Redis(inject("redisUrl"));
  const certKey = (name: string) => `${shared.DYNROUTE_REDIS_PREFIX}cert:${name}`;
  let daemon = await startTestDaemon(storeEnv, shared);
  try {
    for (const domain of ["old.keys.example", "new.keys.example"]) {
      expect((await rest(daemon.baseUrl, "PUT", "/v1/vault/mapping", { body: { domain, backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
    }
    const old = ca.issue(["old.keys.example"]);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/vault/certificates/old.keys.example", { body: { certificate_chain: old.chain, private_key: old.key } })).status).toBe(200);
    await expect.poll(() => redis.hget(certKey("old.keys.example"), "key")).toContain("PRIVATE KEY");
    await daemon.close();
    await redis.del(certKey("old.keys.example"));
    // Restarted with another key: the old certificate cannot be opened, the rest flows.
    daemon = await startTestDaemon(storeEnv, { ...shared, DYNROUTE_SECRET_KEY: "a different secret key 98765" });
    await daemon.store.ready;
    const fresh = ca.issue(["new.keys.example"]);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/vault/certificates/new.keys.example", { body: { certificate_chain: fresh.chain, private_key: fresh.key } })).status).toBe(200);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/vault/mapping", { body: { domain: "later.keys.example", backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
    await expect.poll(() => redis.hget(certKey("new.keys.example"), "key")).toContain("PRIVATE KEY");
    await expect.poll(() => redis.hget(`${shared.DYNROUTE_REDIS_PREFIX}route:later.keys.example`, "backends")).toBe('["http://127.0.0.1:9"]');
    expect(await redis.exists(certKey("old.keys.example"))).toBe(0);
    expect(daemon.logs.some((l) => l.includes("cannot open a certificate's private key") && l.includes("old.keys.example"))).toBe(true);
  } finally {
    redis.disconnect();
    await daemon.close();
  }
});

it("a mapping delete that drops a certificate reaches Redis at once, not at the relay's next poll", async () => {
  const ca = new TestCa();
  const redis = new Redis(inject("redisUrl"));
  // A long poll: each drain is followed by 10 s of sleep that only a commit can cut short.
  const daemon = await startTestDaemon(await freshStore("sqlite"), { DYNROUTE_RELAY_POLL_MS: "10000" });
  const key = (kind: string) => `${daemon.config.redis.prefix}${kind}:drop.keys.example`;
  try {
    expect((await rest(daemon.baseUrl, "PUT", "/v1/vault/mapping", { body: { domain: "drop.keys.example", backends: ["http://127.0.0.1:9"] } })).status).toBe(201);
    // The relay's loop has drained once (the route's outbox row is gone): until it has met Redis, it may sleep a whole poll.
    await expect.poll(() => redis.hget(key("route"), "backends"), { timeout: 15_000 }).toBe('["http://127.0.0.1:9"]');
    await expect.poll(async () => (await daemon.store.outboxStats()).depth, { timeout: 15_000 }).toBe(0);
    const leaf = ca.issue(["drop.keys.example"]);
    expect((await rest(daemon.baseUrl, "PUT", "/v1/vault/certificates/drop.keys.example", { body: { certificate_chain: leaf.chain, private_key: leaf.key } })).status).toBe(200);
    await expect.poll(() => redis.hget(key("cert"), "chain"), { timeout: 2000 }).toContain("BEGIN CERTIFICATE");
    expect((await rest(daemon.baseUrl, "DELETE", "/v1/vault/mapping/drop.keys.example")).status).toBe(204);
    await expect.poll(() => redis.hget(key("cert"), "deleted"), { timeout: 2000 }).toBe("1");
  } finally {
    redis.disconnect();
    await daemon.close();
  }
});
