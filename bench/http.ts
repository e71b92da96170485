// HTTP throughput benchmark: GET one mapping and PUT/create over REST and over
// Connect, beside a bare node:http server answering the same JSON in the same
// run (the ceiling). Load from wrk (apt-get install wrk) on the same machine.
// Run: npm run bench:http   (BENCH_SECONDS, BENCH_CONNECTIONS to tune)
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase, PrivateMariaDb } from "../test/harness/mariadb.js";
import { freePort } from "../test/harness/ports.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { table } from "./table.js";
import { assertWrk, wrk } from "./wrk.js";
const TOKEN = "bench-token-0123456789abcdef";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const DOMAIN = "get.bench.example";
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);

interface Result {
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

async function main() {
  await assertWrk();
  const dir = mkdtempSync(join(tmpdir(), "dynroute-bench-"));
  const [db, redis] = await Promise.all([PrivateMariaDb.start(), PrivateRedis.start()]);
  const procs: ChildProcess[] = [];
  try {
    const port = await freePort();
    const mysqlUrl = await createDatabase(db.adminUrl);
    const daemon = spawn(process.execPath, ["dist/src/main.js"], {
      env: { PATH: process.env.PATH, MYSQL_URL: mysqlUrl, REDIS_URL: redis.url, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${port}` },
      stdio: ["ignore", "ignore", "inherit"], // default log level (info, one line a call), written as in production
    });
    procs.push(daemon);
    const base = `http://127.0.0.1:${port}`;
    const created = await waitForCreate(base);

    // Baselines in processes of their own, like the daemon (see baseline-server.ts).
    const baseline = async (mode: string) => {
      const p = await freePort();
      procs.push(
        spawn(process.execPath, ["dist/bench/baseline-server.js"], {
          env: { PATH: process.env.PATH, MODE: mode, PORT: String(p), MAPPING: JSON.stringify(created), MYSQL_URL: mysqlUrl, REDIS_URL: redis.url },
          stdio: ["ignore", "ignore", "inherit"],
        }),
      );
      await waitForPort(p);
      return `http://127.0.0.1:${p}`;
    };
    const staticBase = await baseline("static");
    const sameIoBase = await baseline("same-io");

    const connectGet = JSON.stringify({ tenantId: "bench", domain: DOMAIN });
    const results: Result[] = [];
    const scenario = async (name: string, url: string, script: string) => {
      progress(name);
      results.push({ scenario: name, ...(await wrk(url, { dir, name, script, seconds: SECONDS, connections: CONNECTIONS })) });
    };
    await scenario("ceiling: node:http GET, same JSON", `${staticBase}/v1/bench/mapping/${DOMAIN}`, `wrk.method = "GET"`);
    await scenario("same I/O: node:http + SELECT + HGET", `${sameIoBase}/v1/bench/mapping/${DOMAIN}`, `wrk.method = "GET"`);
    await scenario("REST GET /v1/bench/mapping/{domain}", `${base}/v1/bench/mapping/${DOMAIN}`, `wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer ${TOKEN}"`);
    await scenario(
      "Connect GetMapping (unary JSON POST)",
      `${base}/dynroute.v1.MappingService/GetMapping`,
      `wrk.method = "POST"\nwrk.body = ${luaString(connectGet)}\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer ${TOKEN}"`,
    );
    // Each wrk thread has its own Lua state: setup() hands each a distinct id, so domains never collide.
    const createScript = (body: (d: string) => string) => `
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", tostring(threads) .. "-" .. tostring(os.time()))
end
local n = 0
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${TOKEN}"
request = function()
  n = n + 1
  local d = "c" .. id .. "-" .. n .. ".bench.example"
  return wrk.format(nil, nil, nil, ${body("d")})
end`;
    await scenario("ceiling: node:http PUT, parses body", `${staticBase}/v1/bench/mapping`, createScript((d) => `'{"domain":"' .. ${d} .. '","backends":["http://a:1","http://b:2"]}'`));
    await scenario("REST PUT /v1/bench/mapping (create)", `${base}/v1/bench/mapping`, createScript((d) => `'{"domain":"r' .. ${d} .. '","backends":["http://a:1","http://b:2"]}'`));
    await scenario(
      "Connect CreateMapping (unary JSON POST)",
      `${base}/dynroute.v1.MappingService/CreateMapping`,
      createScript((d) => `'{"tenantId":"bench","mapping":{"domain":"k' .. ${d} .. '","backends":["http://a:1","http://b:2"]}}'`).replace('wrk.method = "PUT"', 'wrk.method = "POST"'),
    );
    printTable(results);
  } finally {
    for (const p of procs) {
      p.kill("SIGTERM");
      if (p.exitCode === null) await once(p, "exit");
    }
    await Promise.all([db.destroy(), redis.destroy()]);
  }
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function waitForCreate(base: string): Promise<unknown> {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(`${base}/v1/bench/mapping`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ domain: DOMAIN, backends: ["http://a:1", "http://b:2"] }),
      });
      if (res.status === 201) return res.json();
      throw new Error(`create answered ${res.status}`);
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const luaString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

function printTable(results: Result[]) {
  const getCeiling = results[0]!.rps;
  const sameIo = results.find((r) => r.scenario.startsWith("same I/O"))!.rps;
  const putCeiling = results.find((r) => r.scenario.startsWith("ceiling: node:http PUT"))!.rps;
  const rows = results.map((r) => ({
    scenario: r.scenario,
    "req/s": Math.round(r.rps).toString(),
    "p50 ms": r.p50.toFixed(2),
    "p99 ms": r.p99.toFixed(2),
    "× ceiling": r.scenario.startsWith("ceiling") ? "1.00 (baseline)" : (r.rps / (/PUT|Create/.test(r.scenario) ? putCeiling : getCeiling)).toFixed(2),
    "× same I/O": /GET|Get/.test(r.scenario) && !r.scenario.startsWith("ceiling") ? (r.rps / sameIo).toFixed(2) : "",
    "non-2xx/errors": r.errors.toString(),
  }));
  console.log(`\n${CONNECTIONS} connections, 2 wrk threads, ${SECONDS} s each, all on this machine (${process.arch}, Node ${process.version})\n`);
  console.log(table(Object.keys(rows[0]!), rows));
}

await main();
