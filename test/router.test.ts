import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import http from "node:http";
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, LOOPBACK_ALLOWED, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { freePort, waitFor } from "./harness/ports.js";
import { runDaemon } from "./harness/process.js";
import { PrivateRedis } from "./harness/redis.js";
import { rest } from "./harness/rest.js";
import { Redis } from "ioredis";
import { BackendPolicy } from "../src/policy/backend-policy.js";
import { RouteWriter } from "../src/sync/route-writer.js";
import { Backend, headerNames, NxDomainDns, PrivateRouter, RawBackend, rawExchange, rawRequest, request } from "./harness/router.js";

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

  it("answers 503 JSON for a disabled mapping, exact or wildcard, and routes it again once enabled", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "paused.e2e.example", backends: [a().url] });
    await api("PUT", "/v1/e2e/mapping", { domain: "*.paused-wild.e2e.example", backends: [a().url] });
    await waitFor("the routes", async () => expect((await via("x.paused-wild.e2e.example")).status).toBe(200), 5000);
    expect((await via("paused.e2e.example")).status).toBe(200);
    const patch = (domain: string, status: string) =>
      rest(daemon.baseUrl, "PATCH", `/v1/e2e/mapping/${domain}`, { body: { status }, headers: { "content-type": "application/merge-patch+json" } });
    expect((await patch("paused.e2e.example", "disabled")).json).toMatchObject({ status: "disabled", backends: [a().url] });
    await patch("*.paused-wild.e2e.example", "disabled");
    await waitFor("the switch", async () => {
      const res = await via("paused.e2e.example");
      expect(res.status).toBe(503);
      expect(res.json).toEqual({ code: "disabled", message: "paused.e2e.example is disabled by its owner" });
      expect((await via("x.paused-wild.e2e.example")).json).toMatchObject({ code: "disabled" });
    }, 5000);
    await patch("paused.e2e.example", "enabled");
    await waitFor("the route back", async () => expect((await via("paused.e2e.example")).json.backend).toBe("a"), 5000);
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

  it("without a route cache, reads every request's route from Redis: concurrent requests (sharing round trips) each get their own", async () => {
    const uncached = await PrivateRouter.start(redis.url, "e2e:", { ROUTER_CACHE_TTL: "0" });
    const hosts = ["a", "b", "c"].map((n) => `${n}.nocache.e2e.example`);
    const ask = () => {
      const asked = Array.from({ length: 60 }, (_, i) => (i % 4 === 3 ? "unknown.nocache.e2e.example" : hosts[i % 4]!));
      return Promise.all(asked.map((h) => request(uncached.port, h)));
    };
    try {
      for (const [i, host] of hosts.entries()) await api("PUT", "/v1/e2e/mapping", { domain: host, backends: [backends[i]!.url] });
      await waitFor("the routes", async () => {
        for (const h of hosts) expect((await request(uncached.port, h)).status).toBe(200);
      }, 5000);
      (await ask()).forEach((res, i) => (i % 4 === 3 ? expect(res.status).toBe(404) : expect(res.json?.backend, res.body).toBe("abc"[i % 4])));

      // A key Redis answers with an error (wrong type, as an older system might leave) fails only its own host,
      // not the hosts whose reads shared its round trip.
      const client = new Redis(redis.url);
      try {
        await client.set("e2e:route:wrongtype.nocache.e2e.example", "x");
        const mixed = await Promise.all(Array.from({ length: 60 }, (_, i) => request(uncached.port, i % 4 === 3 ? "wrongtype.nocache.e2e.example" : hosts[i % 4]!)));
        mixed.forEach((res, i) => (i % 4 === 3 ? expect(res.status, res.body).toBe(503) : expect(res.json?.backend, res.body).toBe("abc"[i % 4])));
      } finally {
        await client.del("e2e:route:wrongtype.nocache.e2e.example");
        client.disconnect();
      }

      await api("PUT", `/v1/e2e/mapping/${hosts[0]}`, { backends: [c().url] });
      await waitFor("the change", async () => expect((await request(uncached.port, hosts[0]!)).json.backend).toBe("c"), 5000);

      await redis.stop();
      try {
        for (const res of await ask()) expect(res.json, res.body).toMatchObject({ code: "unavailable", message: expect.stringContaining("Redis") });
      } finally {
        await redis.resume();
      }
      await waitFor("the routes again", async () => {
        for (const [i, res] of (await ask()).entries()) if (i % 4 !== 3) expect(res.json?.backend, res.body).toBe("cbc"[i % 4]);
      }, 15_000);
    } finally {
      await uncached.stop();
    }
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
    // Redis came back empty: the relay reconciles (routes and the destination policy) and the router's subscriber reconnects.
    await waitFor("the new route", async () => expect((await via("during.e2e.example")).json?.backend).toBe("b"), 15_000);
    expect((await via("named.e2e.example")).json.backend).toBe("a");
  });
});

describe("hostile requests", () => {
  /** Calls per command since the last CONFIG RESETSTAT, as Redis counts them (commands scripts run included). */
  async function commandCounts(client: Redis): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const m of (await client.info("commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts.set(m[1]!, Number(m[2]));
    return counts;
  }

  it("asks Redis at most once per unknown host, whatever its number of labels, and caches the answer", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "*.flood.e2e.example", backends: [a().url] });
    await waitFor("the wildcard", async () => expect((await via("x.flood.e2e.example")).json?.backend).toBe("a"), 5000);
    const client = new Redis(redis.url);
    try {
      // 117 labels, 251 characters: as long as a name gets.
      const labels = Array.from({ length: 115 }, () => "a").join(".");
      const hosts = Array.from({ length: 200 }, (_, i) => `r${i}-${Date.now()}.${labels}.zz`);
      await client.config("RESETSTAT");
      for (const host of hosts) expect((await via(host)).status).toBe(404);
      // Many labels under a wildcard: matched in the router, no lookup per label either.
      const deep = Array.from({ length: 60 }, (_, i) => `l${i}`).join(".");
      expect((await via(`${deep}.flood.e2e.example`)).json.backend).toBe("a");
      // Asked again: answered from the cache (negative caching of the whole host).
      for (const host of hosts.slice(0, 50)) expect((await via(host)).status).toBe(404);
      const counts = await commandCounts(client);
      // The daemons' relays poll with GET (sentinel) and INFO meanwhile; everything else is the router's.
      const router = [...counts].filter(([cmd]) => cmd !== "get" && cmd !== "info" && cmd !== "config");
      const total = router.reduce((sum, [, n]) => sum + n, 0);
      expect(counts.get("hget")).toBeGreaterThanOrEqual(hosts.length + 1);
      expect(total, JSON.stringify(router)).toBeLessThanOrEqual(hosts.length + 1 + 4);
    } finally {
      client.disconnect();
    }
  });

  it("answers JSON to requests nginx refuses before routing: bad request lines, TRACE, long URIs and headers", async () => {
    const cases: Array<[string, number, string]> = [
      ["GET /../x HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "invalid_argument"],
      ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "invalid_argument"],
      ["NOT HTTP AT ALL\r\n\r\n", 400, "invalid_argument"],
      ["TRACE / HTTP/1.1\r\nHost: site.e2e.example\r\n\r\n", 405, "unimplemented"],
      [`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: a.example\r\n\r\n`, 414, "invalid_argument"],
      [`GET / HTTP/1.1\r\nHost: a.example\r\nX-Big: ${"b".repeat(9000)}\r\n\r\n`, 431, "invalid_argument"],
    ];
    for (const [text, status, code] of cases) {
      const res = await rawRequest(router.port, text);
      expect(res.status, text.slice(0, 40)).toBe(status);
      expect(res.headers).toMatch(/\r\nContent-Type: application\/json; charset=utf-8/);
      expect(JSON.parse(res.body), text.slice(0, 40)).toMatchObject({ code });
    }
  });

  it("keeps no memory per distinct Host header a client makes up (a routed name with a long port)", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "ports.e2e.example", backends: [a().url] });
    await waitFor("the route", async () => expect((await via("ports.e2e.example")).status).toBe(200), 5000);
    // Each Host header differs from $host (nginx drops the port) and from every other, and is as long as nginx
    // takes: 6000 of them are ~47 MB of header text, in whichever worker served them.
    const port = (i: number) => String(i).padStart(7800, "0");
    const before = router.workerRss().reduce((sum, n) => sum + n, 0);
    let routed = 0;
    for (let round = 0; round < 12; round++) {
      const ask = Array.from({ length: 500 }, (_, i) => `HEAD / HTTP/1.1\r\nHost: ports.e2e.example:${port(round * 500 + i)}\r\n${i === 499 ? "Connection: close\r\n" : ""}\r\n`);
      routed += [...(await rawExchange(router.port, ask.join(""))).matchAll(/HTTP\/1\.1 200 /g)].length;
    }
    expect(routed).toBe(6000);
    expect(router.workerRss().reduce((sum, n) => sum + n, 0) - before).toBeLessThan(16 * 1024 * 1024);
  });

  it("routes, forwards and logs an absolute-form request by the host of its target", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "target.e2e.example", backends: [b().url] });
    await waitFor("the route", async () => expect((await via("target.e2e.example")).status).toBe(200), 5000);
    const res = await rawRequest(router.port, "GET http://Target.e2e.example/abs?q=1 HTTP/1.1\r\nHost: other.e2e.example\r\nConnection: close\r\n\r\n");
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body);
    expect(seen).toMatchObject({ backend: "b", url: "/abs?q=1" });
    expect(seen.headers).toMatchObject({ host: "target.e2e.example", "x-forwarded-host": "target.e2e.example" });
    await waitFor("the log line", async () => expect(router.accessLog().find((l) => l.uri === "/abs?q=1")).toMatchObject({ host: "target.e2e.example", status: 200 }));
  });
});

describe("failing backends", () => {
  let sick: PrivateRouter;
  const hung: RawBackend[] = [];
  beforeAll(async () => {
    // Short read timeout: a hung backend costs one second per try here.
    sick = await PrivateRouter.start(redis.url, "e2e:", { ROUTER_CACHE_TTL: "300", ROUTER_READ_TIMEOUT: "1s", ROUTER_BACKEND_DOWN_S: "60" });
  });
  afterAll(async () => {
    await sick?.stop();
    for (const h of hung) await h.stop();
  });
  const viaSick = (host: string) => request(sick.port, host);

  it("answers 502 JSON for a backend that speaks no HTTP, and skips it from then on", async () => {
    const garbage = await RawBackend.start("garbage");
    hung.push(garbage);
    await api("PUT", "/v1/e2e/mapping", { domain: "garbage.e2e.example", backends: [garbage.url] });
    await waitFor("the 502", async () => {
      const res = await viaSick("garbage.e2e.example");
      expect(res.status).toBe(502);
      expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(res.json).toEqual({ code: "unavailable", message: "the backend answered something that is not HTTP" });
    }, 5000);
    await waitFor("the log line", async () => expect(sick.accessLog().find((l) => l.host === "garbage.e2e.example")).toMatchObject({ status: 502 }));
    // Counted once, as the 502 it became (workers add their counts every second).
    const errors = async () => {
      await new Promise((r) => setTimeout(r, 1100));
      return (await sick.metrics()).get('dynroute_router_requests_total{class="5xx"}') ?? 0;
    };
    const before502 = await errors();
    expect((await viaSick("garbage.e2e.example")).status).toBe(502);
    expect((await errors()) - before502).toBe(1);

    await api("PUT", "/v1/e2e/mapping/garbage.e2e.example", { backends: [garbage.url, a().url] });
    await waitFor("the change", async () => expect((await viaSick("garbage.e2e.example")).status).toBe(200), 5000);
    const before = garbage.connections;
    for (let i = 0; i < 6; i++) expect((await viaSick("garbage.e2e.example")).json.backend).toBe("a");
    expect(garbage.connections).toBe(before);
    // Workers add their counts to the shared figures every second.
    await waitFor("the metric", async () => expect((await sick.metrics()).get("dynroute_router_upstream_garbage_total")).toBeGreaterThanOrEqual(1));
  });

  it("answers a backend's non-HTTP answer with the headers of the router's other JSON errors, to HEAD (no body), HTTP/1.0 and HTTP/0.9 requests too", async () => {
    const garbage = await RawBackend.start("garbage");
    hung.push(garbage);
    await api("PUT", "/v1/e2e/mapping", { domain: "garbage-head.e2e.example", backends: [garbage.url] });
    // Nothing listens there: a 502 the router answers the usual way, through nginx's own header writing.
    await api("PUT", "/v1/e2e/mapping", { domain: "refused.e2e.example", backends: [`http://127.0.0.1:${await freePort()}`] });
    await waitFor("the routes", async () => {
      expect((await viaSick("garbage-head.e2e.example")).status).toBe(502);
      expect((await viaSick("refused.e2e.example")).status).toBe(502);
    }, 5000);
    const usual = await rawRequest(sick.port, "GET / HTTP/1.1\r\nHost: refused.e2e.example\r\nConnection: close\r\n\r\n");
    expect(headerNames(usual.headers)).toEqual(["cache-control", "connection", "content-type", "date", "server"]);
    // Each answer is read until the router closes the connection (an answer to HEAD has a Content-Length but no body).
    for (const [method, version] of [["GET", "1.1"], ["HEAD", "1.1"], ["GET", "1.0"], ["HEAD", "1.0"]]) {
      const what = `${method} HTTP/${version}`;
      const res = await rawRequest(sick.port, `${method} /x HTTP/${version}\r\nHost: garbage-head.e2e.example\r\n\r\n`);
      expect(res.status, what).toBe(502);
      expect(headerNames(res.headers), what).toEqual(headerNames(usual.headers));
      expect(res.headers, what).toMatch(/\r\nContent-Type: application\/json; charset=utf-8\r\n/);
      expect(res.headers, what).toMatch(/\r\nConnection: close(\r\n|$)/);
      if (method === "GET") expect(JSON.parse(res.body), what).toEqual({ code: "unavailable", message: "the backend answered something that is not HTTP" });
      else expect(res.body, what).toBe("");
    }
    await waitFor("the log lines", async () => expect(sick.accessLog().filter((l) => l.host === "garbage-head.e2e.example" && l.method === "HEAD" && l.status === 502)).toHaveLength(2));
    // An HTTP/0.9 request (absolute-form: it names its host no other way) expects no status line or headers, and
    // gets none, as in the router's other answers.
    expect(JSON.parse(await rawExchange(sick.port, "GET http://garbage-head.e2e.example/x\r\n"))).toEqual({ code: "unavailable", message: "the backend answered something that is not HTTP" });
  });

  it("closes the connection after that 502, as it says: a request pipelined behind it gets no answer on it, one ahead of it does", async () => {
    const garbage = await RawBackend.start("garbage");
    hung.push(garbage);
    await api("PUT", "/v1/e2e/mapping", { domain: "garbage-pipe.e2e.example", backends: [garbage.url] });
    await api("PUT", "/v1/e2e/mapping", { domain: "fine-pipe.e2e.example", backends: [a().url] });
    await waitFor("the routes", async () => {
      expect((await viaSick("garbage-pipe.e2e.example")).status).toBe(502);
      expect((await viaSick("fine-pipe.e2e.example")).status).toBe(200);
    }, 5000);
    // An answer's status line follows the one before it right after its body, not necessarily at the start of a line.
    const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    // The last request of each exchange asks the router to close after it, whatever the answers before it did.
    const ask = (method: string, host: string, last = false) => `${method} /x HTTP/1.1\r\nHost: ${host}\r\n${last ? "Connection: close\r\n" : ""}\r\n`;
    for (const method of ["GET", "HEAD"]) {
      expect(statuses(await rawExchange(sick.port, ask(method, "garbage-pipe.e2e.example") + ask("GET", "fine-pipe.e2e.example", true))), method).toEqual([502]);
      expect(statuses(await rawExchange(sick.port, ask("GET", "fine-pipe.e2e.example") + ask(method, "garbage-pipe.e2e.example", true))), method).toEqual([200, 502]);
    }
  });

  it("asks DNS about a name that does not resolve once in a while, not on every request", async () => {
    const dns = await NxDomainDns.start();
    const resolving = await PrivateRouter.start(redis.url, "e2e:", { ROUTER_CACHE_TTL: "300", ROUTER_RESOLVER: dns.address });
    try {
      await api("PUT", "/v1/e2e/mapping", { domain: "nxdomain.e2e.example", backends: ["http://no-such-backend.invalid:8080"] });
      await waitFor("the 502", async () => {
        const res = await request(resolving.port, "nxdomain.e2e.example");
        expect(res.status).toBe(502);
        expect(res.json).toMatchObject({ code: "unavailable", message: expect.stringContaining("cannot resolve no-such-backend.invalid") });
      }, 5000);
      for (let i = 0; i < 10; i++) expect((await request(resolving.port, "nxdomain.e2e.example")).status).toBe(502);
      // Each worker (2) asks once and remembers the failure for a while.
      expect(dns.queries.filter((q) => q === "no-such-backend.invalid").length).toBeLessThanOrEqual(2);
    } finally {
      await resolving.stop();
      await dns.stop();
    }
  });

  it("tries a hung backend once per interval, not once per request, and still tries it when nothing else is left", async () => {
    const stuck = await RawBackend.start("hang");
    hung.push(stuck);
    await api("PUT", "/v1/e2e/mapping", { domain: "hung.e2e.example", backends: [stuck.url, a().url] });
    await waitFor("the route", async () => expect((await viaSick("hung.e2e.example")).status).toBe(200), 5000);
    for (let i = 0; i < 8; i++) expect((await viaSick("hung.e2e.example")).json.backend).toBe("a");
    // Round robin lands on it every other request; after the first timeout it is skipped.
    expect(stuck.connections).toBe(1);
    const health = await sick.health();
    expect(health.down).toContainEqual(expect.objectContaining({ backend: stuck.url.replace("http://", ""), reason: expect.stringMatching(/failed/) }));
    await waitFor("the metrics", async () => {
      const metrics = await sick.metrics();
      expect(metrics.get("dynroute_router_backends_marked_down_total")).toBeGreaterThanOrEqual(2);
      expect(metrics.get(`dynroute_router_backend_down{backend="${stuck.url.replace("http://", "")}"}`)).toBe(1);
    });

    // Marked down and alone: tried anyway (never fail closed), and the timeout is a JSON 504.
    await api("PUT", "/v1/e2e/mapping/hung.e2e.example", { backends: [stuck.url] });
    await waitFor("the change", async () => {
      const res = await viaSick("hung.e2e.example");
      expect(res.status).toBe(504);
      expect(res.json).toEqual({ code: "deadline_exceeded", message: "the backend did not answer in time" });
    }, 5000);
    expect(stuck.connections).toBeGreaterThan(1);
  });

  it("lets one route's failures to reach a backend in another way (https to a plain-HTTP one) mark down only that way", async () => {
    // Another tenant's route points at c's plain-HTTP port with https: its handshakes fail.
    await api("PUT", "/v1/e2e/mapping", { domain: "victim.e2e.example", backends: [c().url, b().url] });
    await api("PUT", "/v1/e2e/mapping", { domain: "poison.e2e.example", backends: [c().url.replace("http://", "https://")] });
    await waitFor("the routes", async () => expect((await viaSick("poison.e2e.example")).status).toBe(502), 5000);
    const { down } = await sick.health();
    expect(down, JSON.stringify(down)).toContainEqual(expect.objectContaining({ backend: c().url.replace("http://", ""), scheme: "https" }));
    // The victim's plain-HTTP way to c is untouched: round robin still reaches it.
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await viaSick("victim.e2e.example")).json.backend);
    expect([...seen].sort()).toEqual(["b", "c"]);
  });
});

describe("the destination policy", () => {
  it("refuses a host-name backend whose address the daemon's policy denies, with a JSON 502 naming the rule", async () => {
    // Operator denials come first: 127.0.0.1 is refused although the test daemons allow 127.0.0.0/8.
    const strict = await startTestDaemon(await freshStore("sqlite"), { REDIS_URL: redis.url, DYNROUTE_BACKEND_DENY: "127.0.0.1/32" });
    const strictRouter = await PrivateRouter.start(redis.url, strict.config.redis.prefix);
    try {
      await strict.store.ready;
      // The API does not resolve names at write time; the router checks what a name resolves to.
      const created = await rest(strict.baseUrl, "PUT", "/v1/e2e/mapping", { body: { domain: "policy.e2e.example", backends: [`http://localhost:${a().port}`] } });
      expect(created.status, JSON.stringify(created.json)).toBe(201);
      await waitFor("the refusal", async () => {
        const res = await request(strictRouter.port, "policy.e2e.example");
        expect(res.status).toBe(502);
        expect(res.json).toEqual({ code: "backend_refused", message: expect.stringContaining("backend localhost (127.0.0.1:") });
        expect(res.json.message).toContain("DYNROUTE_BACKEND_DENY");
      }, 5000);
      expect(strictRouter.errorLog()).toMatch(/policy\.e2e\.example: backend localhost \(127\.0\.0\.1:\d+\) refused: DYNROUTE_BACKEND_DENY/);
      await waitFor("the metric", async () => expect((await strictRouter.metrics()).get("dynroute_router_backend_refused_total")).toBeGreaterThanOrEqual(1));
    } finally {
      await strictRouter.stop();
      await strict.close();
    }
  });

  it("decides every address as the daemon's policy does (asked through the status listener: nothing is connected to)", async () => {
    // An IPv6 rule over the IPv4-mapped range matches nothing (mapped addresses are checked as IPv4), in both.
    const policy = new BackendPolicy({ deny: ["10.9.0.0/16", "::ffff:0:0/96"], allow: ["127.0.0.0/8", "::1/128"] });
    const client = new Redis(redis.url);
    const checker = await PrivateRouter.start(redis.url, "verdicts:");
    try {
      await new RouteWriter(client, { prefix: "verdicts:", compatFrontend: false, tombstoneTtlSeconds: 60 }).writePolicy(policy);
      const addresses = [
        ...["127.0.0.1", "127.255.0.9", "10.9.1.1", "10.8.1.1", "192.168.1.1", "8.8.8.8", "0.0.0.0", "169.254.169.254", "100.100.100.200", "168.63.129.16"],
        ...["192.0.0.192", "224.0.0.1", "255.255.255.255", "::", "::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:8.8.8.8", "::ffff:10.9.0.1"],
        // IPv4-compatible written in hex: ipaddr.js reads "::127.0.0.1" as IPv4-mapped, RFC 4291 and the router do not.
        ...["::7f00:1", "::ffff:0:7f00:1", "64:ff9b::7f00:1", "64:ff9b:1::1", "2002:7f00:1::", "fe80::1", "fec0::1", "ff02::1", "fd00:ec2::254"],
        ...["fd20:ce::254", "fd12::5", "2001:db8::1", "2600::1"],
      ];
      await waitFor("the policy", async () => {
        const res = await fetch(`http://127.0.0.1:${checker.statusPort}/policy?address=127.0.0.1`);
        expect(await res.json()).toEqual({ address: "127.0.0.1", refused: null });
      });
      for (const address of addresses) {
        const verdict = (await (await fetch(`http://127.0.0.1:${checker.statusPort}/policy?address=${encodeURIComponent(address)}`)).json()) as { refused: string | null };
        expect(verdict.refused !== null, `${address}: ${verdict.refused}`).toBe(policy.refusal(address) !== undefined);
      }
    } finally {
      await checker.stop();
      client.disconnect();
    }
  });

  it("routes to IPv6 literal backends the policy allows", async () => {
    const v6 = await Backend.start("v6", undefined, "::1");
    try {
      await api("PUT", "/v1/e2e/mapping", { domain: "v6.e2e.example", backends: [v6.url] });
      await waitFor("the route", async () => expect((await via("v6.e2e.example")).json?.backend).toBe("v6"), 5000);
    } finally {
      await v6.stop();
    }
  });

  it("fails closed until a policy is loaded, follows its changes, and checks IPv4-mapped addresses as IPv4", async () => {
    // Routes written with the daemon's own writer under a prefix no daemon serves: no policy there yet.
    const client = new Redis(redis.url);
    const writer = new RouteWriter(client, { prefix: "unpoliced:", compatFrontend: false, tombstoneTtlSeconds: 60 });
    const other = await Backend.start("d", undefined, "127.0.0.2");
    const bare = await PrivateRouter.start(redis.url, "unpoliced:");
    try {
      await writer.apply([
        { domain: "open.e2e.example", revision: 1n, backends: [other.url] },
        { domain: "mapped.e2e.example", revision: 2n, backends: [`http://[::ffff:127.0.0.1]:${a().port}`] },
      ]);
      const res = await request(bare.port, "open.e2e.example");
      expect(res.status).toBe(502);
      expect(res.json).toEqual({ code: "backend_refused", message: expect.stringContaining("no backend policy is loaded (unpoliced:backend-policy)") });

      await writer.writePolicy(new BackendPolicy({ deny: ["127.0.0.1/32"], allow: ["127.0.0.0/8", "::1/128"] }));
      await waitFor("the policy", async () => expect((await request(bare.port, "open.e2e.example")).json?.backend).toBe("d"), 5000);
      const mapped = await request(bare.port, "mapped.e2e.example");
      expect(mapped.status).toBe(502);
      expect(mapped.json).toMatchObject({ code: "backend_refused", message: expect.stringContaining("[::ffff:127.0.0.1]") });

      await writer.writePolicy(new BackendPolicy({ deny: [], allow: ["127.0.0.0/8"] }));
      await waitFor("the new policy", async () => expect((await request(bare.port, "mapped.e2e.example")).json?.backend).toBe("a"), 5000);
    } finally {
      await bare.stop();
      await other.stop();
      client.disconnect();
    }
  });
});

describe("backend TLS", () => {
  let tls: { key: string; cert: string; certFile: string };
  let secure: Backend;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "dynroute-router-tls-"));
    await run("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]);
    tls = { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8"), certFile: join(dir, "cert.pem") };
    secure = await Backend.start("secure", tls);
  });
  afterAll(() => secure?.stop());

  it("never reuses a connection opened for another TLS name on the same address", async () => {
    await api("PUT", "/v1/e2e/mapping", { domain: "byname.e2e.example", backends: [`https://localhost:${secure.port}`] });
    await api("PUT", "/v1/e2e/mapping", { domain: "byaddr.e2e.example", backends: [`https://127.0.0.1:${secure.port}`] });
    await waitFor("the routes", async () => {
      expect((await via("byname.e2e.example")).status).toBe(200);
      expect((await via("byaddr.e2e.example")).status).toBe(200);
    }, 5000);
    for (let i = 0; i < 6; i++) {
      expect((await via("byname.e2e.example")).json.servername).toBe("localhost");
      expect((await via("byaddr.e2e.example")).json.servername).toBeNull();
    }
  });

  it("verifies backend certificates when ROUTER_BACKEND_TLS_VERIFY=on", async () => {
    const strict = await PrivateRouter.start(redis.url, "e2e:", { ROUTER_BACKEND_TLS_VERIFY: "on", ROUTER_BACKEND_TLS_CA: tls.certFile });
    try {
      expect((await request(strict.port, "byname.e2e.example")).json).toMatchObject({ backend: "secure", servername: "localhost" });
      // The certificate names localhost, not 127.0.0.1.
      const wrong = await request(strict.port, "byaddr.e2e.example");
      expect(wrong.status).toBe(502);
      expect(wrong.json).toMatchObject({ code: "unavailable" });
      expect(strict.errorLog()).toMatch(/upstream SSL certificate does not match "127\.0\.0\.1"/);
    } finally {
      await strict.stop();
    }
  });
});

describe("the status listener", () => {
  it("serves Prometheus metrics: requests by class, upstream time, cache, Redis errors, invalidations", async () => {
    await waitFor("every worker's figures", async () => {
      const m = await router.metrics();
      expect(m.get('dynroute_router_requests_total{class="2xx"}')).toBeGreaterThan(0);
      expect(m.get('dynroute_router_requests_total{class="4xx"}')).toBeGreaterThan(0);
      expect(m.get('dynroute_router_requests_total{class="5xx"}')).toBeGreaterThan(0);
      expect(m.get('dynroute_router_cache_total{result="hit"}')).toBeGreaterThan(0);
      expect(m.get('dynroute_router_cache_total{result="miss"}')).toBeGreaterThan(0);
      expect(m.get("dynroute_router_invalidations_total")).toBeGreaterThan(0);
      expect(m.get("dynroute_router_redis_errors_total")).toBeGreaterThan(0); // the outage test above
      expect(m.get("dynroute_router_upstream_seconds_count")).toBeGreaterThan(0);
      expect(m.get('dynroute_router_upstream_seconds_bucket{le="+Inf"}')).toBe(m.get("dynroute_router_upstream_seconds_count"));
      expect(m.get('dynroute_router_lua_memory_bytes{worker="1"}')).toBeGreaterThan(0);
    });
    const res = await fetch(`http://127.0.0.1:${router.statusPort}/other`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: "not_found" });
  });
});

describe("the compatibility layout and the migration from dynamicproxy", () => {
  it("stops the daemon at startup on a Redis prefix or a database other than 0", async () => {
    const base = { DYNROUTE_TOKENS: "compat-token-0123456789", DYNROUTE_DATA_DIR: mkdtempSync(join(tmpdir(), "dynroute-data-")), DYNROUTE_COMPAT_FRONTEND: "true" };
    const prefixed = await runDaemon({ ...base, DYNROUTE_REDIS_PREFIX: "p:" });
    expect(prefixed.code).toBe(2);
    expect(prefixed.stderr).toMatch(/^dynroute: configuration error: DYNROUTE_REDIS_PREFIX: must be empty with DYNROUTE_COMPAT_FRONTEND=true/);
    const db3 = await runDaemon({ ...base, REDIS_URL: "redis://127.0.0.1:1/3" });
    expect(db3.code).toBe(2);
    expect(db3.stderr).toMatch(/^dynroute: configuration error: REDIS_URL: must use database 0 with DYNROUTE_COMPAT_FRONTEND=true/);
  });

  it("imports a dynamicproxy Redis (dry run first), serves it to routers reading frontend sets, and keeps those sets equal to the database", async () => {
    // The old system's Redis, which the daemon then takes over in the compatibility layout.
    const legacy = await PrivateRedis.start();
    const old = new Redis(legacy.url);
    const dataDir = mkdtempSync(join(tmpdir(), "dynroute-data-"));
    const mapFile = join(dataDir, "tenants.map");
    writeFileSync(mapFile, "# suffix tenant\nlegacy.example legacy\n");
    let compatDaemon: TestDaemon | undefined;
    let compatRouter: PrivateRouter | undefined;
    try {
      await old.sadd("frontend:old.legacy.example", a().url, b().url);
      await old.sadd("frontend:*.wild.legacy.example", c().url);
      await old.sadd("frontend:tools.other.example", a().url);
      const cli = (...args: string[]) => run(process.execPath, ["dist/src/cli.js", "import-frontend", "--redis", legacy.url, ...args], { env: { PATH: process.env.PATH ?? "", DYNROUTE_DATA_DIR: dataDir, ...LOOPBACK_ALLOWED } });
      const dry = await cli("--map", mapFile, "--tenant", "misc", "--dry-run");
      expect(dry.stderr).toContain("read 3 frontend set(s)");
      expect(dry.stderr).toContain("tenant legacy: would import 2 mapping(s)");
      expect(dry.stderr).toContain("tenant misc: would import 1 mapping(s)");
      expect(dry.stderr).toContain("dry run: nothing was written");
      const real = await cli("--map", mapFile, "--tenant", "misc");
      expect(real.stderr).toContain("tenant legacy: imported 2 mapping(s)");

      compatDaemon = await startTestDaemon({ DYNROUTE_DATA_DIR: dataDir }, { REDIS_URL: legacy.url, DYNROUTE_REDIS_PREFIX: "", DYNROUTE_COMPAT_FRONTEND: "true" });
      await compatDaemon.store.ready;
      const compatApi = (method: string, path: string, body?: object) => rest(compatDaemon!.baseUrl, method, path, body ? { body } : {});
      expect((await compatApi("GET", "/v1/legacy/mapping/*.wild.legacy.example")).json).toMatchObject({ backends: [c().url] });
      compatRouter = await PrivateRouter.start(legacy.url, "", { ROUTER_LAYOUT: "frontend", ROUTER_CACHE_TTL: "300" });
      const viaCompat = (host: string) => request(compatRouter!.port, host);
      await waitFor("the routes", async () => {
        expect((await viaCompat("old.legacy.example")).status).toBe(200);
        expect((await viaCompat("x.y.wild.legacy.example")).json?.backend).toBe("c");
      }, 5000);
      const seen = new Set<string>();
      for (let i = 0; i < 10; i++) seen.add((await viaCompat("old.legacy.example")).json.backend);
      expect([...seen].sort()).toEqual(["a", "b"]);

      // A stray member and a set the database does not have (left by the old system): reconciliation removes both.
      const stray = await RawBackend.start("hang");
      try {
        await old.sadd("frontend:old.legacy.example", stray.url);
        await old.sadd("frontend:gone.legacy.example", a().url);
        expect((await compatApi("POST", "/v1/admin/reconcile", {})).status).toBe(200);
        expect((await old.smembers("frontend:old.legacy.example")).sort()).toEqual([a().url, b().url].sort());
        expect(await old.exists("frontend:gone.legacy.example")).toBe(0);
        await waitFor("the router to follow", async () => expect((await viaCompat("gone.legacy.example")).status).toBe(404), 5000);
        for (let i = 0; i < 6; i++) expect(["a", "b"]).toContain((await viaCompat("old.legacy.example")).json.backend);
        expect(stray.connections).toBe(0);
      } finally {
        await stray.stop();
      }

      // dynamicproxy routers would replace the request's path with a backend's: refused at write time.
      const withPath = await compatApi("PUT", "/v1/legacy/mapping", { domain: "path.legacy.example", backends: [`${a().url}/app`] });
      expect(withPath.status).toBe(400);
      expect(withPath.json).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("mapping.backends[0]: must not have a path") });
    } finally {
      await compatRouter?.stop();
      await compatDaemon?.close();
      old.disconnect();
      await legacy.destroy();
    }
  });
});

describe("dynroute-router render", () => {
  const render = (env: Record<string, string>) =>
    new Promise<{ code: number | null; stderr: string; conf: string; status: string }>((resolve) => {
      const prefix = mkdtempSync(join(tmpdir(), "dynroute-render-"));
      const proc = spawn("router/dynroute-router", ["render"], { env: { PATH: process.env.PATH ?? "", ROUTER_PREFIX: prefix, ...env }, stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      proc.stderr.on("data", (d) => (stderr += d));
      proc.on("exit", (code) => {
        const read = (file: string) => {
          try {
            return readFileSync(join(prefix, file), "utf8");
          } catch {
            return "";
          }
        };
        resolve({ code, stderr, conf: read("nginx.conf"), status: read("status.conf") });
      });
    });

  it("carries characters that sed and Lua treat specially into the config literally", async () => {
    const res = await render({ ROUTER_REDIS_PASSWORD: 'p&w|d\\x"y', ROUTER_REDIS_PREFIX: "a|b&c:" });
    expect(res.code, res.stderr).toBe(0);
    expect(res.conf).toContain('password = "p&w|d\\\\x\\"y"');
    expect(res.conf).toContain('prefix = "a|b&c:"');
    expect(res.conf).not.toMatch(/@[A-Z_]+@/);
  });

  it("renders the status listener and backend TLS verification only when asked", async () => {
    const plain = await render({});
    expect(plain.conf).toContain("proxy_ssl_verify off;");
    expect(plain.conf).not.toContain("proxy_ssl_trusted_certificate");
    const full = await render({ ROUTER_STATUS_LISTEN: "127.0.0.1:9145", ROUTER_BACKEND_TLS_VERIFY: "on", ROUTER_BACKEND_TLS_CA: "/etc/hostname" });
    expect(full.code, full.stderr).toBe(0);
    expect(full.conf).toContain("proxy_ssl_verify on;");
    expect(full.conf).toContain("proxy_ssl_trusted_certificate /etc/hostname;");
    expect(full.status).toContain("listen 127.0.0.1:9145;");
    expect(plain.status).not.toContain("server {");
    expect(plain.conf).toContain("sentinels = nil,");
    const sentinel = await render({ ROUTER_REDIS_SENTINELS: "10.0.0.1:26379,10.0.0.2:26380", ROUTER_REDIS_SENTINEL_MASTER: "cache-main" });
    expect(sentinel.code, sentinel.stderr).toBe(0);
    expect(sentinel.conf).toContain('sentinels = { { host = "10.0.0.1", port = 26379 }, { host = "10.0.0.2", port = 26380 }, }, master_name = "cache-main"');
  });

  it("stops on an invalid setting and writes nothing", async () => {
    const invalid: Array<Record<string, string>> = [
      { ROUTER_CACHE_TTL: "five" },
      { ROUTER_REDIS_PORT: "-1" },
      { ROUTER_LAYOUT: "other" },
      { ROUTER_BACKEND_DOWN_S: "soon" },
      { ROUTER_BACKEND_TLS_VERIFY: "yes" },
      { ROUTER_BACKEND_TLS_VERIFY: "on", ROUTER_BACKEND_TLS_CA: "/nonexistent/ca.pem" },
      { ROUTER_REDIS_SENTINELS: "sentinel-1:26379" },
      { ROUTER_REDIS_SENTINELS: "10.0.0.1" },
    ];
    for (const env of invalid) {
      const res = await render(env);
      expect(res.code, JSON.stringify(env)).toBe(2);
      expect(res.stderr).toMatch(/^dynroute-router: ROUTER_\w+ must be/);
      expect(res.conf).toBe("");
    }
  });
});
