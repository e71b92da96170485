import { X509Certificate } from "node:crypto";
import http2 from "node:http2";
import https from "node:https";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { TestCa } from "./harness/certs.js";
import { freePort } from "./harness/ports.js";
import { PrivateRedis } from "./harness/redis.js";
import { rest } from "./harness/rest.js";
import { Backend, headerNames, PrivateRouter, RawBackend, request } from "./harness/router.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The router's TLS listener end to end: certificates uploaded through the API reach the router
// through the outbox and Redis, and are picked by SNI at handshake time. The cache TTL is long,
// so a changed certificate seen within the waits below arrived by invalidation.
const ca = new TestCa();
let redis: PrivateRedis;
let daemon: TestDaemon;
let router: PrivateRouter;
let bare: PrivateRouter;
let backend: Backend;
let tlsPort: number;
let bareTlsPort: number;
const defaultCert = ca.issue(["*.platform.example"]);

/** The handshake for `servername`: the leaf's fingerprint and the protocol ALPN chose, or the error. The chain is verified, the name not (the default certificate is for other names). */
function handshake(port: number, servername: string): Promise<{ fingerprint: string; alpn: string | false | null } | { error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca: ca.pem, checkServerIdentity: () => undefined, ALPNProtocols: ["h2", "http/1.1"] }, () => {
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol });
      socket.end();
    });
    socket.on("error", (err) => resolve({ error: err.message }));
  });
}

/** An HTTP/1.1 request over TLS; `json` is the parsed body (undefined when there is none: HEAD). */
function httpsGet(port: number, host: string, path = "/", method = "GET"): Promise<{ status: number; json: any; headers: import("node:http").IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: "127.0.0.1", port, path, method, servername: host, headers: { host }, ca: ca.pem, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, json: body === "" ? undefined : JSON.parse(body), headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;
const api = (method: string, path: string, body?: object) => rest(daemon.baseUrl, method, path, body ? { body } : {});
const upload = (name: string, leaf: { chain: string; key: string }) => api("PUT", `/v1/acme/certificates/${name}`, { certificate_chain: leaf.chain + ca.pem, private_key: leaf.key });

beforeAll(async () => {
  redis = await PrivateRedis.start();
  daemon = await startTestDaemon(await freshStore("sqlite"), { REDIS_URL: redis.url, DYNROUTE_REDIS_PREFIX: "tls:" });
  await daemon.store.ready;
  backend = await Backend.start("a");
  const files = mkdtempSync(join(tmpdir(), "dynroute-default-cert-"));
  writeFileSync(join(files, "default.pem"), defaultCert.chain + ca.pem);
  writeFileSync(join(files, "default.key"), defaultCert.key);
  tlsPort = await freePort();
  router = await PrivateRouter.start(redis.url, "tls:", {
    ROUTER_CACHE_TTL: "300",
    ROUTER_LISTEN_TLS: `127.0.0.1:${tlsPort}`,
    ROUTER_TLS_DEFAULT_CERT: join(files, "default.pem"),
    ROUTER_TLS_DEFAULT_KEY: join(files, "default.key"),
    ROUTER_HTTPS_REDIRECT: "certified",
    ROUTER_HSTS: "max-age=600",
  });
  bareTlsPort = await freePort();
  bare = await PrivateRouter.start(redis.url, "tls:", { ROUTER_CACHE_TTL: "300", ROUTER_LISTEN_TLS: `127.0.0.1:${bareTlsPort}` });
  for (const domain of ["shop.acme.example", "*.apps.acme.example", "vm1.platform.example"]) {
    expect((await api("PUT", "/v1/acme/mapping", { domain, backends: [backend.url] })).status).toBe(201);
  }
});
afterAll(async () => {
  await router?.stop();
  await bare?.stop();
  await daemon?.close();
  await backend?.stop();
  await redis?.destroy();
});

describe("TLS in the router", () => {
  it("serves an uploaded certificate by SNI over HTTP/2 and HTTP/1.1, and proxies the request", async () => {
    const leaf = ca.issue(["shop.acme.example"]);
    expect((await upload("shop.acme.example", leaf)).status).toBe(200);
    await expect.poll(async () => (await handshake(tlsPort, "shop.acme.example")) as object).toEqual({ fingerprint: fingerprintOf(leaf.chain), alpn: "h2" });
    const res = await httpsGet(tlsPort, "shop.acme.example", "/hello");
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ backend: "a", url: "/hello" });
    expect(res.json.headers["x-forwarded-proto"]).toBe("https");
    // HTTP/2 end to end.
    const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { servername: "shop.acme.example", ca: ca.pem });
    const stream = session.request({ ":path": "/h2", ":authority": "shop.acme.example" });
    let body = "";
    stream.on("data", (c: Buffer) => (body += c));
    const [headers] = (await new Promise((resolve) => stream.on("response", (h) => resolve([h])))) as [http2.IncomingHttpHeaders];
    await new Promise((resolve) => stream.on("end", resolve));
    session.close();
    expect(headers[":status"]).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ backend: "a", url: "/h2" });
  });

  it("answers a backend's non-HTTP answer over HTTP/2 with the JSON 502 (HSTS included; HEAD: no body), not an HTTP/1.1 message inside the stream", async () => {
    const garbage = await RawBackend.start("garbage");
    try {
      expect((await api("PUT", "/v1/acme/mapping", { domain: "garbage.platform.example", backends: [garbage.url] })).status).toBe(201);
      const session = http2.connect(`https://127.0.0.1:${tlsPort}`, { servername: "garbage.platform.example", ca: ca.pem });
      try {
        const got = async (method = "GET") => {
          const stream = session.request({ ":method": method, ":path": "/x", ":authority": "garbage.platform.example" });
          let body = "";
          stream.on("data", (c: Buffer) => (body += c));
          // Listened to from the start: a HEAD answer's stream ends with its headers.
          const ended = new Promise((resolve) => stream.on("end", resolve));
          const [headers] = (await new Promise((resolve) => stream.on("response", (h) => resolve([h])))) as [http2.IncomingHttpHeaders];
          await ended;
          return { status: headers[":status"], type: headers["content-type"], hsts: headers["strict-transport-security"], body };
        };
        // The route reaches the router through the outbox; until then the host is unknown (404).
        await expect.poll(async () => (await got()).status, { timeout: 5000 }).toBe(502);
        const res = await got();
        expect(res.type).toBe("application/json; charset=utf-8");
        expect(res.hsts).toBe("max-age=600");
        expect(JSON.parse(res.body)).toEqual({ code: "unavailable", message: "the backend answered something that is not HTTP" });
        expect(await got("HEAD")).toEqual({ status: 502, type: "application/json; charset=utf-8", hsts: "max-age=600", body: "" });
      } finally {
        session.close();
      }
    } finally {
      await garbage.stop();
    }
  });

  it("answers a backend's non-HTTP answer over HTTP/1.1 on TLS with the headers of the router's other JSON errors there, HSTS included, to HEAD too", async () => {
    const garbage = await RawBackend.start("garbage");
    try {
      expect((await api("PUT", "/v1/acme/mapping", { domain: "garbage1.platform.example", backends: [garbage.url] })).status).toBe(201);
      // The route reaches the router through the outbox; until then the host is unknown (404).
      await expect.poll(async () => (await httpsGet(tlsPort, "garbage1.platform.example")).status, { timeout: 5000 }).toBe(502);
      // An error the router answers the usual way (nginx writes its headers): no mapping for the name.
      const usual = await httpsGet(tlsPort, "nobody.platform.example");
      expect(usual.status).toBe(404);
      expect(usual.headers["strict-transport-security"]).toBe("max-age=600");
      for (const method of ["GET", "HEAD"]) {
        const res = await httpsGet(tlsPort, "garbage1.platform.example", "/x", method);
        expect(res.status, method).toBe(502);
        expect(res.headers["strict-transport-security"], method).toBe("max-age=600");
        // The same names, framing aside (the usual answer is chunked, this one has a Content-Length).
        expect(headerNames(res.headers), method).toEqual(headerNames(usual.headers));
        expect(res.json, method).toEqual(method === "GET" ? { code: "unavailable", message: "the backend answered something that is not HTTP" } : undefined);
      }
    } finally {
      await garbage.stop();
    }
  });

  it("falls back to a wildcard certificate one label up, then to the operator's default", async () => {
    const wild = ca.issue(["*.apps.acme.example"]);
    expect((await upload("*.apps.acme.example", wild)).status).toBe(200);
    await expect.poll(async () => ((await handshake(tlsPort, "one.apps.acme.example")) as { fingerprint?: string }).fingerprint).toBe(fingerprintOf(wild.chain));
    // Two labels down, a TLS wildcard does not match: the default it is.
    expect(await handshake(tlsPort, "a.b.apps.acme.example")).toMatchObject({ fingerprint: fingerprintOf(defaultCert.chain) });
    expect(await handshake(tlsPort, "vm1.platform.example")).toMatchObject({ fingerprint: fingerprintOf(defaultCert.chain) });
    expect((await httpsGet(tlsPort, "vm1.platform.example")).json).toMatchObject({ backend: "a" });
  });

  it("redirects plain HTTP to HTTPS (308) for hosts with a certificate of their own, never the ACME challenge path, and sends HSTS over TLS", async () => {
    const redirected = await request(router.port, "shop.acme.example", "/cart?item=1", { method: "POST", body: "x" });
    expect(redirected.status).toBe(308);
    expect(redirected.headers.location).toBe(`https://shop.acme.example:${tlsPort}/cart?item=1`);
    expect((await request(router.port, "one.apps.acme.example", "/")).status).toBe(308);
    // Only the operator's default would cover it: served over plain HTTP as before.
    const plain = await request(router.port, "vm1.platform.example", "/");
    expect(plain.json).toMatchObject({ backend: "a" });
    expect(plain.headers["strict-transport-security"]).toBeUndefined();
    const challenge = await request(router.port, "shop.acme.example", "/.well-known/acme-challenge/abc");
    expect(challenge.status).toBe(404);
    expect(challenge.json).toMatchObject({ code: "not_found" });
    expect((await httpsGet(tlsPort, "shop.acme.example")).headers["strict-transport-security"]).toBe("max-age=600");
    // The router without the setting does neither.
    expect((await request(bare.port, "shop.acme.example", "/")).status).toBe(200);
  });

  it("without a certificate and without a default, refuses the handshake cleanly and says so", async () => {
    const res = await handshake(bareTlsPort, "vm1.platform.example");
    expect(res).toHaveProperty("error");
    // The router keeps serving names it has certificates for.
    await expect.poll(async () => ((await handshake(bareTlsPort, "shop.acme.example")) as { fingerprint?: string }).fingerprint).toBeDefined();
    await expect.poll(async () => (await bare.metrics()).get('dynroute_router_tls_handshakes_total{certificate="none"}')).toBeGreaterThanOrEqual(1);
  });

  it("keeps certificates cached through a flood of handshakes for made-up names (those are cached apart)", async () => {
    // One worker and a small certificate cache: 2,100 names push the real one out of the worker's own cache (2,000
    // entries); in the shared cache, names without a certificate would push it out too if they were kept there.
    const port = await freePort();
    const small = await PrivateRouter.start(redis.url, "tls:", { ROUTER_CACHE_TTL: "300", ROUTER_WORKERS: "1", ROUTER_CERT_CACHE_SIZE: "32k", ROUTER_LISTEN_TLS: `127.0.0.1:${port}`, ROUTER_ERROR_LOG_LEVEL: "notice" });
    try {
      // The subscriber's first SUBSCRIBE and the upload's "!cert:" message each make every cached certificate stale:
      // the certificate is cached only after both, or the last handshake would miss for that and not for the flood.
      await expect.poll(() => small.errorLog()).toContain("dynroute: subscribed to");
      const leaf = ca.issue(["kept.apps.acme.example"]);
      expect((await upload("kept.apps.acme.example", leaf)).status).toBe(200);
      await expect.poll(async () => (await small.metrics()).get("dynroute_router_invalidations_total") ?? 0).toBeGreaterThanOrEqual(1);
      await expect.poll(async () => ((await handshake(port, "kept.apps.acme.example")) as { fingerprint?: string }).fingerprint).toBe(fingerprintOf(leaf.chain));
      for (let batch = 0; batch < 42; batch++) {
        const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => handshake(port, `n${batch * 50 + i}.flood.example`)));
        expect(answers.every((a) => "error" in a)).toBe(true);
      }
      const misses = async () => (await small.metrics()).get('dynroute_router_tls_cache_total{result="miss"}');
      const before = await misses();
      expect(((await handshake(port, "kept.apps.acme.example")) as { fingerprint?: string }).fingerprint).toBe(fingerprintOf(leaf.chain));
      // Served from the shared cache: no lookup in Redis.
      expect(await misses()).toBe(before);
    } finally {
      await small.stop();
    }
  }, 60_000);

  it("serves a replaced certificate at once (invalidation) and stops serving a deleted one", async () => {
    const next = ca.issue(["shop.acme.example"]);
    expect((await upload("shop.acme.example", next)).status).toBe(200);
    await expect.poll(async () => ((await handshake(tlsPort, "shop.acme.example")) as { fingerprint?: string }).fingerprint, { timeout: 3000 }).toBe(fingerprintOf(next.chain));
    expect((await api("DELETE", "/v1/acme/certificates/shop.acme.example")).status).toBe(204);
    await expect.poll(async () => ((await handshake(tlsPort, "shop.acme.example")) as { fingerprint?: string }).fingerprint, { timeout: 3000 }).toBe(fingerprintOf(defaultCert.chain));
    await expect.poll(async () => "error" in (await handshake(bareTlsPort, "shop.acme.example")), { timeout: 3000 }).toBe(true);
  });
});
