import { mkdtempSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { PrivatePebble } from "./harness/pebble.js";
import { freePort } from "./harness/ports.js";
import { PrivateRedis } from "./harness/redis.js";
import { rest } from "./harness/rest.js";
import { Backend, PrivateRouter, request } from "./harness/router.js";

// Automatic certificates end to end, all on loopback: the daemon (ACME manager on the relay
// leader) orders from Debian's pebble, whose DNS (pebble-challtestsrv) resolves every name to
// 127.0.0.1, so HTTP-01 validation reaches the real router's HTTP port, which answers the
// challenge from Redis; the issued certificate reaches the router's TLS listener through the
// certificate outbox. Pebble issues certificates valid for VALIDITY seconds, so renewal (at
// two thirds of the lifetime) happens within the test.
const VALIDITY = 24;
/** The production shape: several replicas share MySQL (the embedded store runs the same write rules; see certificates.test.ts). */
const STORE = "mysql";
let redis: PrivateRedis;
let daemon: TestDaemon;
let router: PrivateRouter;
let pebble: PrivatePebble;
let backend: Backend;
let root: string;
let tlsPort: number;
let startDaemon: () => Promise<TestDaemon>;

const api = (method: string, path: string, body?: object) => rest(daemon.baseUrl, method, path, body ? { body } : {});
const mapping = async (domain: string) => (await api("GET", `/v1/acme/mapping/${domain}`)).json;

/** The leaf the router serves for `servername`, verified against pebble's root (name included), or the error. */
function served(servername: string): Promise<{ fingerprint: string; validTo: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port: tlsPort, servername, ca: root }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ fingerprint: cert.fingerprint256, validTo: cert.valid_to });
      socket.end();
    });
    socket.on("error", (err) => resolve({ error: err.message }));
  });
}

/** A GET through the router over HTTPS, trusting only pebble's root. */
function httpsGet(host: string, path: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port: tlsPort, path, servername: host, headers: { host }, ca: root, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(body) }));
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  redis = await PrivateRedis.start();
  backend = await Backend.start("app");
  tlsPort = await freePort();
  router = await PrivateRouter.start(redis.url, "acme:", { ROUTER_CACHE_TTL: "300", ROUTER_LISTEN_TLS: `127.0.0.1:${tlsPort}` });
  pebble = await PrivatePebble.start(router.port, VALIDITY);
  root = await pebble.root();
  const storeEnv = await freshStore(STORE);
  // The ACME account key's home (with MySQL, the data dir holds nothing else).
  const dataDir = mkdtempSync(join(tmpdir(), "dynroute-acme-data-"));
  startDaemon = () => startTestDaemon(storeEnv, {
    DYNROUTE_DATA_DIR: dataDir,
    REDIS_URL: redis.url,
    DYNROUTE_REDIS_PREFIX: "acme:",
    DYNROUTE_SECRET_KEY: "acme test secret key 0123456789",
    DYNROUTE_TLS_DEFAULT: "automatic",
    DYNROUTE_ACME_DIRECTORY: pebble.directoryUrl,
    DYNROUTE_ACME_CA_FILE: pebble.caFile,
    DYNROUTE_ACME_EMAIL: "ops@acme.example",
    DYNROUTE_ACME_POLL_MS: "200",
    DYNROUTE_ACME_RETRY_MS: "500",
  });
  daemon = await startDaemon();
  await daemon.store.ready;
}, 60_000);
afterAll(async () => {
  await daemon?.close();
  await pebble?.stop();
  await router?.stop();
  await backend?.stop();
  await redis?.destroy();
});

describe("automatic certificates over ACME", () => {
  it("issues a certificate for a new mapping (operator default) and the router serves it over HTTPS", async () => {
    expect((await api("PUT", "/v1/acme/mapping", { domain: "shop.acme.example", backends: [backend.url] })).status).toBe(201);
    expect((await api("PUT", "/v1/acme/mapping", { domain: "manual.acme.example", backends: [backend.url], tls: "TLS_MODE_MANUAL" })).status).toBe(201);
    await expect.poll(async () => (await mapping("shop.acme.example")).certificate_status?.state, { timeout: 20_000, interval: 200 }).toBe("STATE_ISSUED");
    const status = (await mapping("shop.acme.example")).certificate_status;
    expect(Date.parse(status.expire_time)).toBeGreaterThan(Date.now());
    expect(Date.parse(status.next_attempt_time)).toBeLessThan(Date.parse(status.expire_time));
    const certificate = (await api("GET", "/v1/acme/certificates/shop.acme.example")).json;
    expect(certificate.dns_names).toEqual(["shop.acme.example"]);
    expect(certificate.issuer).toMatch(/Pebble/);
    expect(certificate.source).toBe("CERTIFICATE_SOURCE_ACME");
    await expect.poll(async () => "fingerprint" in (await served("shop.acme.example")), { timeout: 5000 }).toBe(true);
    const res = await httpsGet("shop.acme.example", "/over-tls");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ backend: "app", url: "/over-tls" });
    // A manual mapping gets none, and the router has nothing for it (no default here).
    expect((await mapping("manual.acme.example")).certificate_status).toBeUndefined();
    expect(await served("manual.acme.example")).toHaveProperty("error");
    const metrics = await (await fetch(`${daemon.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/dynroute_acme_orders_total [1-9]/);
    expect(metrics).toMatch(/dynroute_acme_certificates\{state="issued"\} [1-9]/);
  }, 40_000);

  it("orders nothing again after a restart: the certificates and their state survive in the store", async () => {
    const before = await served("shop.acme.example");
    await daemon.close();
    daemon = await startDaemon();
    await daemon.store.ready;
    // Ten turns of the new leader (every 200 ms), well before the renewal is due (16 s after issuance).
    await new Promise((r) => setTimeout(r, 2000));
    const metrics = await (await fetch(`${daemon.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/dynroute_acme_orders_total 0$/m);
    expect((await mapping("shop.acme.example")).certificate_status.state).toBe("STATE_ISSUED");
    expect(await served("shop.acme.example")).toEqual(before);
  }, 20_000);

  it("renews at two thirds of the lifetime, and the router serves the new certificate", async () => {
    const first = await served("shop.acme.example");
    expect(first).toHaveProperty("fingerprint");
    const firstExpiry = Date.parse((await mapping("shop.acme.example")).certificate_status.expire_time);
    await expect.poll(async () => ((await served("shop.acme.example")) as { fingerprint?: string }).fingerprint, { timeout: VALIDITY * 1000, interval: 250 }).not.toBe(
      (first as { fingerprint: string }).fingerprint,
    );
    expect(Date.parse((await mapping("shop.acme.example")).certificate_status.expire_time)).toBeGreaterThan(firstExpiry);
  }, 40_000);

  it("reports a failed validation on the mapping and retries until it succeeds", async () => {
    // Validation reaches 127.0.0.2, where no router listens: refused (still loopback).
    await pebble.resolve("broken.acme.example", "127.0.0.2");
    expect((await api("PUT", "/v1/acme/mapping", { domain: "broken.acme.example", backends: [backend.url], tls: "TLS_MODE_AUTOMATIC" })).status).toBe(201);
    await expect.poll(async () => (await mapping("broken.acme.example")).certificate_status?.state, { timeout: 20_000, interval: 200 }).toBe("STATE_FAILED");
    const failed = (await mapping("broken.acme.example")).certificate_status;
    expect(failed.reason).not.toBe("");
    expect(Date.parse(failed.next_attempt_time)).toBeGreaterThan(Date.now() - 1000);
    expect(await (await fetch(`${daemon.baseUrl}/readyz`)).status).toBe(200);
    await pebble.resolve("broken.acme.example", null);
    await expect.poll(async () => (await mapping("broken.acme.example")).certificate_status?.state, { timeout: 30_000, interval: 200 }).toBe("STATE_ISSUED");
  }, 60_000);

  it("answers only known challenges, and nothing of the challenge path is proxied", async () => {
    const res = await request(router.port, "shop.acme.example", "/.well-known/acme-challenge/unknown-token");
    expect(res.status).toBe(404);
    expect(res.json).toHaveProperty("code");
  });

  it("a rename drops the old name's certificate and orders one for the new name; a delete drops it", async () => {
    const renamed = await api("PUT", "/v1/acme/mapping/broken.acme.example", { domain: "fixed.acme.example", backends: [backend.url], tls: "TLS_MODE_AUTOMATIC" });
    expect(renamed.status, JSON.stringify(renamed.json)).toBe(200);
    expect((await api("GET", "/v1/acme/certificates/broken.acme.example")).status).toBe(404);
    await expect.poll(async () => "error" in (await served("broken.acme.example")), { timeout: 5000 }).toBe(true);
    await expect.poll(async () => (await mapping("fixed.acme.example")).certificate_status?.state, { timeout: 20_000, interval: 200 }).toBe("STATE_ISSUED");
    await expect.poll(async () => "fingerprint" in (await served("fixed.acme.example")), { timeout: 5000 }).toBe(true);
    expect((await api("DELETE", "/v1/acme/mapping/fixed.acme.example")).status).toBe(204);
    expect((await api("GET", "/v1/acme/certificates/fixed.acme.example")).status).toBe(404);
    await expect.poll(async () => "error" in (await served("fixed.acme.example")), { timeout: 5000 }).toBe(true);
  }, 40_000);
});

