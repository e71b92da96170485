// What the HTTP benchmarks share: a daemon on either store with a fresh data set, and the wrk scripts
// of the seed's workload (GET one mapping, PUT a new one, list), so every comparison drives the same calls.
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "../test/harness/ports.js";

export const TOKEN = "bench-token-0123456789abcdef";
/** The mapping GET scenarios read. */
export const DOMAIN = "get.bench.example";
/** A tenant of SEEDED mappings, for the list scenarios. */
export const PAGE_TENANT = "page";
export const SEEDED = 1000;
/** The name of seeded mapping `n` (also spliced into wrk scripts as Lua). */
export const seededName = (n: string) => `m${n}.page.example`;

export interface Daemon {
  base: string;
  pid: number;
  /** The mapping at DOMAIN as created (tenant "bench"). */
  created: unknown;
}

/** Starts the built daemon on one store (pushed to `procs` for the caller to stop), creates DOMAIN and seeds PAGE_TENANT. */
export async function startDaemon(store: "mysql" | "sqlite", opts: { mysqlUrl: string; redisUrl: string; dataDir: string; procs: ChildProcess[] }): Promise<Daemon> {
  const port = await freePort();
  const where = store === "mysql" ? { MYSQL_URL: opts.mysqlUrl } : { DYNROUTE_DATA_DIR: opts.dataDir };
  const proc = spawn(process.execPath, ["dist/src/main.js"], {
    env: { PATH: process.env.PATH, ...where, REDIS_URL: opts.redisUrl, DYNROUTE_REDIS_PREFIX: `${store}:`, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: `127.0.0.1:${port}` },
    stdio: ["ignore", "ignore", "inherit"], // default log level (info, one line a call), written as in production
  });
  opts.procs.push(proc);
  const base = `http://127.0.0.1:${port}`;
  const created = await until(async () => {
    const res = await put(`${base}/v1/bench/mapping`, { domain: DOMAIN, backends: ["http://a:1", "http://b:2"] });
    if (res.status !== 201) throw new Error(`create answered ${res.status}`);
    return res.json();
  });
  await seed(`${base}/v1/${PAGE_TENANT}/mapping`, { authorization: `Bearer ${TOKEN}` });
  return { base, pid: proc.pid!, created };
}

/**
 * PUTs SEEDED mappings (with a label, as real ones have) to a seed-style create URL: the first alone (the
 * peer makes a tenant's row on its first mapping, and two first mappings at once collide there), then 50 at a time.
 */
export async function seed(createUrl: string, headers: Record<string, string>): Promise<void> {
  const one = async (n: number) => {
    const res = await put(createUrl, { domain: seededName(String(n)), backends: ["http://a:1", "http://b:2"], labels: { team: "bench" } }, headers);
    if (res.status >= 300) throw new Error(`seeding answered ${res.status}`);
  };
  await one(0);
  for (let at = 1; at < SEEDED; at += 50) await Promise.all(Array.from({ length: Math.min(50, SEEDED - at) }, (_, i) => one(at + i)));
}

const put = (url: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
  fetch(url, { method: "PUT", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });

/**
 * A wrk script that PUTs a new mapping per request; `body` makes the JSON from a Lua expression for a
 * fresh domain. Each wrk thread has its own Lua state: setup() hands each a distinct id, so domains never collide.
 */
export const createScript = (body: (d: string) => string, headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` }) => `
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("id", tostring(threads) .. "-" .. tostring(os.time()))
end
local n = 0
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
${Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`).join("\n")}
request = function()
  n = n + 1
  local d = "c" .. id .. "-" .. n .. ".bench.example"
  return wrk.format(nil, nil, nil, ${body("d")})
end`;

export const luaString = (s: string) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

export async function waitForPort(port: number): Promise<void> {
  await until(() => fetch(`http://127.0.0.1:${port}/`));
}

async function until<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
