// The peer comparison: the seed's workload (GET one mapping, PUT a new one, list a tenant's
// mappings) driven by wrk at 50 connections against the peer, Wikimedia's invisible-unicorn, and against
// dynroute on both stores, in one run. The peer is not part of this repository and is not packaged for
// Debian or npm: start it yourself (README, "Benchmarks") and give its address as PEER_URL. Without it
// this prints how, and nothing else. Run: PEER_URL=http://127.0.0.1:5000 npm run bench:peer
import { type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase, PrivateMariaDb } from "../test/harness/mariadb.js";
import { PrivateRedis } from "../test/harness/redis.js";
import { table } from "./table.js";
import { createScript, DOMAIN, PAGE_TENANT, SEEDED, seed, startDaemon, TOKEN } from "./workload.js";
import { assertWrk, wrk, type WrkResult } from "./wrk.js";

const PEER_URL = process.env.PEER_URL;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 50;
/** dynroute pages lists (500 at most); the peer answers every mapping of the tenant at once. */
const PAGE = 500;
const progress = (what: string) => process.stderr.write(`bench: ${what}\n`);

async function main() {
  if (!PEER_URL) {
    console.log("\npeer comparison not run: set PEER_URL to a running invisible-unicorn (see README, Benchmarks)\n");
    return;
  }
  await assertWrk();
  const dir = mkdtempSync(join(tmpdir(), "dynroute-bench-peer-"));
  const [db, redis] = await Promise.all([PrivateMariaDb.start(), PrivateRedis.start()]);
  const procs: ChildProcess[] = [];
  try {
    progress("seeding the peer");
    await fetch(`${PEER_URL}/v1/bench/mapping`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ domain: DOMAIN, backends: ["http://a:1", "http://b:2"] }) });
    await seed(`${PEER_URL}/v1/${PAGE_TENANT}/mapping`, {});
    const mysqlUrl = await createDatabase(db.adminUrl);
    const targets = [
      { name: "peer (invisible-unicorn)", base: PEER_URL, listQuery: "", perList: SEEDED },
      { name: "dynroute, MySQL", base: (await startDaemon("mysql", { mysqlUrl, redisUrl: redis.url, dataDir: join(dir, "data"), procs })).base, listQuery: `?limit=${PAGE}`, perList: PAGE },
      { name: "dynroute, SQLite", base: (await startDaemon("sqlite", { mysqlUrl, redisUrl: redis.url, dataDir: join(dir, "data"), procs })).base, listQuery: `?limit=${PAGE}`, perList: PAGE },
    ];
    const auth = `wrk.headers["Authorization"] = "Bearer ${TOKEN}"`;
    const rows: Array<Record<string, string>> = [];
    const workloads = [
      { name: "GET one mapping", unit: "req/s", url: (t: (typeof targets)[0]) => `${t.base}/v1/bench/mapping/${DOMAIN}`, script: () => auth, per: () => 1 },
      { name: "PUT create", unit: "req/s", url: (t: (typeof targets)[0]) => `${t.base}/v1/bench/mapping`, script: () => createScript((d) => `'{"domain":"' .. ${d} .. '","backends":["http://a:1","http://b:2"]}'`), per: () => 1 },
      { name: "list", unit: "mappings/s", url: (t: (typeof targets)[0]) => `${t.base}/v1/${PAGE_TENANT}/mapping${t.listQuery}`, script: () => auth, per: (t: (typeof targets)[0]) => t.perList },
    ];
    for (const w of workloads) {
      let peer: number | undefined;
      for (const t of targets) {
        progress(`${w.name}: ${t.name}`);
        const r: WrkResult = await wrk(w.url(t), { dir, name: `${w.name} ${t.name}`, script: w.script(), seconds: SECONDS, connections: CONNECTIONS, timeoutSeconds: 30 });
        const rate = r.rps * w.per(t);
        peer ??= rate;
        rows.push({
          workload: w.name,
          server: t.name,
          rate: `${Math.round(rate)} ${w.unit}`,
          "p50 ms": r.p50.toFixed(2),
          "p99 ms": r.p99.toFixed(2),
          "× peer": t === targets[0] ? "1.00 (baseline)" : (rate / peer).toFixed(1),
          "non-2xx/errors": r.errors.toString(),
        });
      }
    }
    console.log(`\npeer workload: wrk -t2 -c${CONNECTIONS} -d${SECONDS}s per row, ${SEEDED} mappings in the listed tenant; dynroute lists pages of ${PAGE}, the peer all at once\n`);
    console.log(table(Object.keys(rows[0]!), rows));
  } finally {
    for (const p of procs) {
      p.kill("SIGTERM");
      if (p.exitCode === null) await once(p, "exit");
    }
    await Promise.all([db.destroy(), redis.destroy()]);
  }
}

await main();
