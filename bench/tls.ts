// TLS benchmark: the router's TLS listener (certificate by SNI from Redis, cached) beside a static
// nginx TLS keepalive proxy with the same certificate and backend (the baseline, same run): full
// handshakes per second (no session resumption) and requests per second over kept-alive TLS; and
// the time from a certificate's upload being acknowledged to the router serving it (the path an
// ACME-issued certificate takes too: store, certificate outbox, relay, Redis, invalidation).
// Run: npm run bench:tls   (needs wrk and the router packages; BENCH_SECONDS, BENCH_ROUNDS, BENCH_CHANGES)
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { TestCa } from "../test/harness/certs.js";
import { freePort, waitFor } from "../test/harness/ports.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { PrivateRouter, request } from "../test/harness/router.js";
import { startStaticNginx } from "./static-nginx.js";
import { percentile, table } from "./table.js";
import { assertWrk, wrk, type WrkResult } from "./wrk.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 50);
const CONNECTIONS = 32;
/** Handshakes in flight at once from the Node client. */
const PARALLEL = 16;
const TOKEN = "bench-token-0123456789abcdef";
const HOST = "bench.example";
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);

/** Full handshakes (new sessions) per second for `seconds`, PARALLEL at a time. */
async function handshakes(port: number, servername: string, ca: string, seconds: number): Promise<{ rate: number; errors: number }> {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const socket = tls.connect({ host: "127.0.0.1", port, servername, ca, ALPNProtocols: ["http/1.1"] }, () => {
        done++;
        socket.destroy();
        resolve();
      });
      socket.on("error", () => {
        errors++;
        resolve();
      });
    });
  const started = performance.now();
  await Promise.all(
    [...Array(PARALLEL)].map(async () => {
      while (performance.now() < until) await one();
    }),
  );
  return { rate: done / ((performance.now() - started) / 1000), errors };
}

async function main() {
  await assertWrk();
  const dir = mkdtempSync(join(tmpdir(), "dynroute-bench-tls-"));
  const procs: ChildProcess[] = [];
  let router: PrivateRouter | undefined;
  const redis = await PrivateRedis.start();
  const ca = new TestCa();
  const leaf = ca.issue([HOST]);
  // wrk sends SNI from the URL's host: "localhost" (the only name /etc/hosts gives it).
  const local = ca.issue(["localhost"]);
  writeFileSync(join(dir, "cert.pem"), leaf.chain);
  writeFileSync(join(dir, "key.pem"), leaf.key);
  try {
    const [backendPort, basePort, routerTls] = [await freePort(), await freePort(), await freePort()];
    procs.push(await plainNginx(dir, backendPort, basePort));
    const daemonPort = await freePort();
    procs.push(
      spawn(process.execPath, ["dist/src/main.js"], {
        env: { PATH: process.env.PATH, DYNROUTE_DATA_DIR: join(dir, "data"), REDIS_URL: redis.url, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${daemonPort}`, DYNROUTE_BACKEND_ALLOW: "127.0.0.0/8", LOG_LEVEL: "warn" },
        stdio: ["ignore", "ignore", "inherit"],
      }),
    );
    const api = (path: string, method: string, body: object) =>
      fetch(`http://127.0.0.1:${daemonPort}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    await waitFor("the daemon", async () => {
      const res = await api("/v1/bench/mapping", "PUT", { domain: HOST, backends: [`http://127.0.0.1:${backendPort}`] });
      if (res.status !== 201) throw new Error(`create answered ${res.status}`);
    });
    const upload = async (cert: { chain: string; key: string }) => {
      const res = await api(`/v1/bench/certificates/${HOST}`, "PUT", { certificate_chain: cert.chain, private_key: cert.key });
      if (res.status !== 200) throw new Error(`upload answered ${res.status}: ${await res.text()}`);
    };
    await upload(leaf);
    // "localhost" cannot be mapped (a single label): the router serves it the operator's default certificate, after a lookup that finds none (cached).
    writeFileSync(join(dir, "local.pem"), local.chain);
    writeFileSync(join(dir, "local.key"), local.key);
    router = await PrivateRouter.start(redis.url, "", {
      ROUTER_ACCESS_LOG: "off",
      ROUTER_CACHE_TTL: "300",
      ROUTER_LISTEN_TLS: `127.0.0.1:${routerTls}`,
      ROUTER_TLS_DEFAULT_CERT: join(dir, "local.pem"),
      ROUTER_TLS_DEFAULT_KEY: join(dir, "local.key"),
    });
    await waitFor("the route", async () => {
      if ((await request(router!.port, HOST)).body !== "x") throw new Error("not routed yet");
    });

    // What wrk will do, once: SNI localhost, Host bench.example.
    progress(`baseline on ${basePort}, router TLS on ${routerTls}`);
    for (const port of [basePort, routerTls]) {
      const status = execFileSync("curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${HOST}`, `https://localhost:${port}/`]).toString();
      if (status !== "200") throw new Error(`https://localhost:${port}/ answered ${status}`);
    }
    const scenarios = [
      { name: "baseline: static nginx TLS keepalive proxy", port: basePort },
      { name: "router TLS (certificate by SNI, cached)", port: routerTls },
    ];
    const shakes: number[][] = scenarios.map(() => []);
    const kept: WrkResult[][] = scenarios.map(() => []);
    let shakeErrors = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [i, sc] of scenarios.entries()) {
        progress(`${sc.name}, round ${round}/${ROUNDS}`);
        const h = await handshakes(sc.port, HOST, ca.pem, SECONDS);
        shakes[i]!.push(h.rate);
        shakeErrors += h.errors;
        kept[i]!.push(await wrk(`https://localhost:${sc.port}/`, { dir, name: sc.name, seconds: SECONDS, connections: CONNECTIONS, headers: { Host: HOST } }));
      }
    }
    const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
    const rows = scenarios.map((sc, i) => ({
      scenario: sc.name,
      "handshakes/s (median)": Math.round(median(shakes[i]!)).toString(),
      "handshakes/s per round": shakes[i]!.map(Math.round).join(" / "),
      "× baseline": median(shakes[i]!.map((r, k) => r / shakes[0]![k]!)).toFixed(2),
      "kept-alive req/s (median)": Math.round(median(kept[i]!.map((r) => r.rps))).toString(),
      "req/s per round": kept[i]!.map((r) => Math.round(r.rps)).join(" / "),
      "req/s × baseline": median(kept[i]!.map((r, k) => r.rps / kept[0]![k]!.rps)).toFixed(2),
      "p99 ms": median(kept[i]!.map((r) => r.p99)).toFixed(2),
      "errors": String(kept[i]!.reduce((s, r) => s + r.errors, 0)),
    }));

    // Upload → served: alternate two certificates, poll handshakes until the new one is presented.
    progress("certificate propagation");
    const alternates = [ca.issue([HOST]), ca.issue([HOST])];
    const fingerprints = alternates.map((c) => new X509Certificate(c.chain).fingerprint256);
    const samples: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      await upload(alternates[i % 2]!);
      const acked = performance.now();
      for (;;) {
        const fp = await new Promise<string>((resolve) => {
          const s = tls.connect({ host: "127.0.0.1", port: routerTls, servername: HOST, ca: ca.pem }, () => {
            resolve(s.getPeerCertificate().fingerprint256);
            s.destroy();
          });
          s.on("error", () => resolve(""));
        });
        if (fp === fingerprints[i % 2]) break;
      }
      samples.push(performance.now() - acked);
    }
    samples.sort((p, q) => p - q);

    console.log(`\nTLS: ${ROUNDS} alternating rounds of ${SECONDS} s; handshakes: Node client, ${PARALLEL} in flight, full handshakes (TLS 1.3, P-256), SNI ${HOST};`);
    console.log(`kept-alive: wrk, ${CONNECTIONS} connections, 2 threads, SNI localhost (the router: default certificate), Host: ${HOST}; backend: static nginx; 2 nginx workers each; all on this machine (2 shared cores)\n`);
    console.log(table(Object.keys(rows[0]!), rows));
    if (shakeErrors > 0) console.log(`\nhandshake errors: ${shakeErrors}`);
    console.log("\ncertificate propagation: upload acknowledged by the API → first handshake through the router presenting it\n");
    const spread = { changes: String(CHANGES), "p50 ms": percentile(samples, 50).toFixed(1), "p99 ms": percentile(samples, 99).toFixed(1), "max ms": samples.at(-1)!.toFixed(1) };
    console.log(table(Object.keys(spread), [spread]));
  } finally {
    await router?.stop();
    for (const p of procs) {
      p.kill("SIGTERM");
      if (p.exitCode === null) await once(p, "exit");
    }
    await redis.destroy();
  }
}

/** One static backend answering "x", and the baseline: a TLS keepalive proxy to it with the same certificate, set up as the router's TLS listener is. */
function plainNginx(dir: string, backendPort: number, basePort: number): Promise<ChildProcess> {
  return startStaticNginx(
    dir,
    backendPort,
    `  server {
    listen 127.0.0.1:${basePort} ssl http2 reuseport;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:base_tls:10m;
    location / {
      proxy_pass http://x;
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_buffering off;
    }
  }`,
  );
}

await main();
