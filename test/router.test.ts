import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import http from "node:http";
import { once } from "node:events";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { waitFor } from "./harness/ports.js";
import { PrivateRedis } from "./harness/redis.js";
import { rest } from "./harness/rest.js";
import { Backend, LOOPBACK_ALLOWED, PrivateRouter, request, writeBackendPolicy } from "./harness/router.js";

const run = promisify(execFile);

// End to end with real processes: the daemon (REST) → its store → relay → a private Redis → the
// nginx + Lua router → real HTTP backends. The router's cache TTL is long, so every change seen
// through it within the waits below arrived by invalidation, not by expiry.
let redis: PrivateRedis;
let daemon: TestDaemon;
let router: PrivateRouter;
const backends: Backend[] = [];
beforeAll(async () => {
  redis = await PrivateRedis.start();
  daemon = await startTestDaemon(await freshStore("sqlite"), { REDIS_URL: redis.url, DYNROUTE_REDIS_PREFIX: "e2e:" });
  await daemon.store.ready;
  await writeBackendPolicy(redis.url, "e2e:", LOOPBACK_ALLOWED);
  router = await PrivateRouter.start(redis.url, "e2e:", { ROUTER_CACHE_TTL: "300" });
  for (const name of ["a", "b", "c"]) backends.push(await Backend.start(name));
});
afterAll(async () => {
  await router?.stop();
  await daemon?.close();
  for (const b of backends) await b.stop().catch(() => undefined);
  await redis?.destroy();
});

const a = () => backends[0]!;
const b = () => backends[1]!;
const c = () => backends[2]!;
const api = (method: string, path: string, body?: object) => rest(daemon.baseUrl, method, path, body ? { body } : {});
const via = (host: string, path = "/", opts?: Parameters<typeof request>[3]) => request(router.port, host, path, opts);
/** Which backends answered `n` requests for a host. */
async function answeredBy(host: string, n = 12): Promise<string[]> {
  const names = new Set<string>();
  for (let i = 0; i < n; i++) {
    const res = await via(host);
    expect(res.status, res.body).toBe(200);
    names.add(res.json.backend);
  }
  return [...names].sort();
}

describe("routing", () => {
  it("routes a created mapping to its backends, spread across them, with forwarding headers", async () => {
    expect((await api("PUT", "/v1/e2e/mapping", { domain: "site.e2e.example", backends: [a().url, b().url] })).status).toBe(201);
    await waitFor("the route", async () => expect((await via("site.e2e.example")).status).toBe(200));
    expect(await answeredBy("site.e2e.example")).toEqual(["a", "b"]);

    const res = await via("Site.E2E.example.:80", "/some/path?q=1");
    expect(res.json).toMatchObject({ url: "/some/path?q=1", method: "GET" });
    expect(res.json.headers).toMatchObject({ host: "Site.E2E.example.:80", "x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "site.e2e.example" });
  });

  it("moves traffic when the mapping changes, at once", async () => {
    await api("PUT", "/v1/e2e/mapping/site.e2e.example", { backends: [c().url] });
    await waitFor("traffic to move", async () => expect((await via("site.e2e.example")).json.backend).toBe("c"), 5000);
    expect(await answeredBy("site.e2e.example")).toEqual(["c"]);
  });

  it("follows a rename: the old host is 404, the new one routes", async () => {
    await api("POST", "/v1/e2e/mapping/site.e2e.example", { domain: "renamed.e2e.example", backends: [a().url] });
    await waitFor("the rename", async () => {
      const old = await via("site.e2e.example");
      expect(old.status).toBe(404);
      expect(old.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(old.json).toEqual({ code: "not_found", message: "no route for host site.e2e.example" });
      expect((await via("renamed.e2e.example")).json.backend).toBe("a");
    }, 5000);
  });

  it("answers 404 once a mapping is deleted, and for hosts nobody mapped", async () => {
    await api("DELETE", "/v1/e2e/mapping/renamed.e2e.example");
    await waitFor("the deletion", async () => expect((await via("renamed.e2e.example")).status).toBe(404), 5000);
    expect((await via("never.e2e.example")).json).toMatchObject({ code: "not_found" });
    const bad = await via("bad_host!");
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: "invalid_argument" });
  });

  it("serves wildcards for names no exact mapping claims, and picks up a new exact mapping at once", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "*.wild.e2e.example", backends: [b().url] });
    await waitFor("the wildcard", async () => expect((await via("one.wild.e2e.example")).json.backend).toBe("b"), 5000);
    expect((await via("two.levels.wild.e2e.example")).json.backend).toBe("b");
    expect((await via("wild.e2e.example")).status).toBe(404);
    // The exact name was cached as "not mapped"; creating it must still win at once.
    await api("PUT", "/v1/e2e/mapping", { domain: "one.wild.e2e.example", backends: [c().url] });
    await waitFor("the exact mapping", async () => expect((await via("one.wild.e2e.example")).json.backend).toBe("c"), 5000);
    expect((await via("other.wild.e2e.example")).json.backend).toBe("b");
  });

  it("resolves host-name backends (through /etc/hosts here)", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "named.e2e.example", backends: [`http://localhost:${a().port}`] });
    await waitFor("the route", async () => expect((await via("named.e2e.example")).json).toMatchObject({ backend: "a" }), 5000);
  });

  it("streams request bodies to the backend and keeps WebSocket upgrades open", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "stream.e2e.example", backends: [c().url] });
    await waitFor("the route", async () => expect((await via("stream.e2e.example")).status).toBe(200), 5000);
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    expect((await via("stream.e2e.example", "/upload", { method: "POST", body: big })).json).toMatchObject({ backend: "c", method: "POST", bytes: big.length });

    const req = http.request({ host: "127.0.0.1", port: router.port, path: "/ws", headers: { host: "stream.e2e.example", connection: "Upgrade", upgrade: "websocket" }, agent: false });
    req.end();
    const [res, socket] = (await once(req, "upgrade")) as [http.IncomingMessage, Socket];
    expect(res.statusCode).toBe(101);
    socket.write("hello");
    const [echo] = await once(socket, "data");
    expect(String(echo)).toBe("c:hello");
    socket.destroy();
  });

  it("puts a backend URL's path in front of the request's", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "prefixed.e2e.example", backends: [`${a().url}/app/`] });
    await waitFor("the route", async () => expect((await via("prefixed.e2e.example", "/x?y=1")).json).toMatchObject({ backend: "a", url: "/app/x?y=1" }), 5000);
  });

  it("proxies to https backends, failing over between them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dynroute-router-tls-"));
    await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]);
    const secure = await Backend.start("secure", { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") });
    try {
      await api("PUT", "/v1/e2e/mapping", { domain: "tls.e2e.example", backends: ["https://127.0.0.1:1", secure.url] });
      await waitFor("the route", async () => expect((await via("tls.e2e.example", "/s")).json).toMatchObject({ backend: "secure", url: "/s" }), 5000);
      for (let i = 0; i < 4; i++) expect((await via("tls.e2e.example")).json.backend).toBe("secure");
    } finally {
      await secure.stop();
    }
  });

  it("writes a JSON access log with the host, the chosen backend and the upstream status", async () => {
    await waitFor("the log line", async () => {
      const line = router.accessLog().find((l) => l.host === "stream.e2e.example" && l.method === "POST");
      expect(line).toMatchObject({ status: 200, backend: `127.0.0.1:${c().port}`, upstream_status: "200", uri: "/upload" });
    });
  });
});

describe("failures", () => {
  it("fails over from a dead backend with no error, and answers 502 JSON when none is left", async () => {
    const doomed = await Backend.start("doomed");
    const doomedUrl = doomed.url;
    await api("PUT", "/v1/e2e/mapping", { domain: "failover.e2e.example", backends: [doomedUrl, a().url] });
    await waitFor("the route", async () => expect((await via("failover.e2e.example")).status).toBe(200), 5000);
    await doomed.stop();
    expect(await answeredBy("failover.e2e.example", 10)).toEqual(["a"]);

    await api("PUT", "/v1/e2e/mapping", { domain: "dead.e2e.example", backends: [doomedUrl] });
    await waitFor("the 502", async () => {
      const res = await via("dead.e2e.example");
      expect(res.status).toBe(502);
      expect(res.json).toEqual({ code: "unavailable", message: "no backend of this host answered" });
    }, 5000);
  });

  it("keeps serving cached routes while Redis is down, 503 JSON for hosts it never saw, and catches up after", async () => {
    expect((await via("named.e2e.example")).status).toBe(200);
    await redis.stop();
    try {
      expect(await answeredBy("named.e2e.example", 5)).toEqual(["a"]);
      const unknown = await via("uncached.e2e.example");
      expect(unknown.status).toBe(503);
      expect(unknown.json).toMatchObject({ code: "unavailable", message: expect.stringContaining("Redis") });
      // Writes go on meanwhile; they wait in the outbox.
      expect((await api("PUT", "/v1/e2e/mapping", { domain: "during.e2e.example", backends: [b().url] })).status).toBe(201);
    } finally {
      await redis.resume();
    }
    // Redis came back empty: the relay reconciles and the router's subscriber reconnects.
    await waitFor("the new route", async () => expect((await via("during.e2e.example")).json?.backend).toBe("b"), 15_000);
    expect((await via("named.e2e.example")).json.backend).toBe("a");
  });
});

describe("the compatibility layout", () => {
  it("serves frontend:<domain> sets to a router configured for dynamicproxy's layout", async () => {
    const compatDaemon = await startTestDaemon(await freshStore("sqlite"), { REDIS_URL: redis.url, DYNROUTE_REDIS_PREFIX: "compat:", DYNROUTE_COMPAT_FRONTEND: "true" });
    await writeBackendPolicy(redis.url, "compat:", LOOPBACK_ALLOWED);
    const compatRouter = await PrivateRouter.start(redis.url, "compat:", { ROUTER_LAYOUT: "frontend" });
    try {
      await compatDaemon.store.ready;
      await rest(compatDaemon.baseUrl, "PUT", "/v1/legacy/mapping", { body: { domain: "legacy.e2e.example", backends: [a().url, b().url] } });
      await waitFor("the route", async () => expect((await request(compatRouter.port, "legacy.e2e.example")).status).toBe(200), 5000);
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await request(compatRouter.port, "legacy.e2e.example")).json.backend);
      expect([...seen].sort()).toEqual(["a", "b"]);
    } finally {
      await compatRouter.stop();
      await compatDaemon.close();
    }
  });
});

describe("dynroute-router render", () => {
  const render = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string; conf: string }>((resolve) => {
      const prefix = mkdtempSync(join(tmpdir(), "dynroute-render-"));
      const proc = spawn("router/dynroute-router", ["render"], { env: { PATH: process.env.PATH ?? "", ROUTER_PREFIX: prefix, ...env }, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      proc.stderr.on("data", (d) => (stderr += d));
      proc.on("exit", (code) => {
        let conf = "";
        try {
          conf = readFileSync(join(prefix, "nginx.conf"), "utf8");
        } catch {
          conf = "";
        }
        resolve({ code, stderr, conf });
      });
    });

  it("carries characters that sed and Lua treat specially into the config literally", async () => {
    const res = await render({ ROUTER_REDIS_PASSWORD: 'p&w|d\\x"y', ROUTER_REDIS_PREFIX: "a|b&c:" });
    expect(res.code, res.stderr).toBe(0);
    expect(res.conf).toContain('password = "p&w|d\\\\x\\"y"');
    expect(res.conf).toContain('prefix = "a|b&c:"');
    expect(res.conf).not.toMatch(/@[A-Z_]+@/);
  });

  it("stops on an invalid setting and writes nothing", async () => {
    const invalid: Array<Record<string, string>> = [{ ROUTER_CACHE_TTL: "five" }, { ROUTER_REDIS_PORT: "-1" }, { ROUTER_LAYOUT: "other" }];
    for (const env of invalid) {
      const res = await render(env);
      expect(res.code, JSON.stringify(env)).toBe(2);
      expect(res.stderr).toMatch(/^dynroute-router: ROUTER_\w+ must be/);
      expect(res.conf).toBe("");
    }
  });
});
