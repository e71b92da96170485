import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { cpSync, mkdtempSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, inject, it } from "vitest";
import { openSqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { TOKEN } from "./harness/daemon.js";
import { assertRedisMatchesStore } from "./harness/convergence.js";
import { freePort, waitFor } from "./harness/ports.js";
import { runDaemon, spawnDaemon } from "./harness/process.js";
import { PrivateRedis } from "./harness/redis.js";
import { rest } from "./harness/rest.js";

const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) {
    try {
      process.kill(-c.pid!, "SIGKILL"); // npm start's whole group
    } catch {
      if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    }
  }
});

interface Started {
  proc: ChildProcess;
  baseUrl: string;
  stderr: string[];
  stdout: string[];
}

/** The README's start command, `npm start`, in a copy of the built checkout with nothing configured but a port. */
async function npmStart(dir: string, env: Record<string, string>): Promise<Started> {
  // A process group of its own, as a terminal gives it: Ctrl-C reaches npm and the daemon alike.
  const proc = spawn("npm", ["start"], { cwd: dir, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? dir, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  children.push(proc);
  const stderr: string[] = [];
  const stdout: string[] = [];
  createInterface({ input: proc.stdout! }).on("line", (l) => stdout.push(l));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stderr! }).on("line", (l) => {
      stderr.push(l);
      const m = /^dynroute is serving (http:\/\/\S+)$/.exec(l);
      if (m) resolve(m[1]!);
    });
    proc.once("exit", (code) => reject(new Error(`npm start exited with ${code}:\n${stderr.join("\n")}\n${stdout.join("\n")}`)));
  });
  return { proc, baseUrl, stderr, stdout };
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  proc.kill("SIGTERM");
  await once(proc, "exit");
}

/** Waits until no process of `npm start`'s group runs any more. */
async function groupGone(started: Started): Promise<void> {
  await waitFor("npm start's group to be gone", async () => {
    try {
      process.kill(-started.proc.pid!, 0);
    } catch {
      return;
    }
    throw new Error("a process of npm start still runs");
  });
}

/** Ctrl-C on `npm start`: SIGINT to the group, then wait until every process of it is gone. */
async function interrupt(started: Started): Promise<void> {
  process.kill(-started.proc.pid!, "SIGINT");
  await groupGone(started);
}

/** A checkout as a new user has it after `npm ci` (which builds): sources, build output, dependencies. */
function checkoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "dynroute-start-"));
  for (const f of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src", "gen", "scripts", "dist"]) cpSync(f, join(dir, f), { recursive: true, preserveTimestamps: true });
  symlinkSync(join(process.cwd(), "node_modules"), join(dir, "node_modules"));
  return dir;
}

describe("the README's start command", () => {
  it("starts with no servers but Redis, prints the URL, a new token and a curl example, and serves a create/get round trip", async () => {
    const dir = checkoutCopy();
    const port = await freePort();
    const env = { DYNROUTE_ADDR: `127.0.0.1:${port}`, REDIS_URL: inject("redisUrl"), DYNROUTE_REDIS_PREFIX: "readme:" };
    const first = await npmStart(dir, env);
    const tokenLine = first.stderr.find((l) => l.includes("admin token (new"));
    const token = /: (\S+)$/.exec(tokenLine ?? "")?.[1];
    expect(token, first.stderr.join("\n")).toMatch(/^[\w-]{32}$/);
    expect(first.stderr.join("\n")).toContain(`curl -X PUT ${first.baseUrl}/v1/demo/mapping`);
    expect(statSync(join(dir, "data", "admin-token")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "data", "dynroute.db")).isFile()).toBe(true);

    // A newcomer's first backend on this machine is refused, and the answer says how to allow it.
    const local = await rest(first.baseUrl, "PUT", "/v1/demo/mapping", { token: token!, body: { domain: "demo.example.org", backends: ["http://127.0.0.1:3000"] } });
    expect(local.status).toBe(400);
    expect(local.json.message).toContain("DYNROUTE_BACKEND_ALLOW=127.0.0.0/8");
    expect(first.stderr.join("\n")).toContain("DYNROUTE_BACKEND_ALLOW=127.0.0.0/8,::1/128");
    const created = await rest(first.baseUrl, "PUT", "/v1/demo/mapping", { token: token!, body: { domain: "demo.example.org", backends: ["http://10.0.0.5:3000"] } });
    expect(created.status).toBe(201);
    expect((await rest(first.baseUrl, "GET", "/v1/demo/mapping/demo.example.org", { token: token! })).json).toMatchObject({ domain: "demo.example.org" });
    expect((await rest(first.baseUrl, "GET", "/v1/demo/mapping", { token: TOKEN })).status).toBe(401);
    await interrupt(first);

    // Started again: the same token (not printed again) and the same data.
    const second = await npmStart(dir, env);
    expect(second.stderr.join("\n")).not.toContain(token!);
    expect(second.stderr.join("\n")).toContain("admin token: in data/admin-token");
    expect((await rest(second.baseUrl, "GET", "/v1/demo/mapping/demo.example.org", { token: token! })).json).toMatchObject({ domain: "demo.example.org", revision: created.json.revision });
    await interrupt(second);
  });

  it("stops the daemon when a service manager sends SIGTERM to npm alone: it drains, exits 0 and leaves no process behind", async () => {
    const dir = checkoutCopy();
    const started = await npmStart(dir, { DYNROUTE_ADDR: `127.0.0.1:${await freePort()}`, REDIS_URL: inject("redisUrl"), DYNROUTE_REDIS_PREFIX: "sigterm:" });
    const exited = once(started.proc, "close"); // after its output is read
    // A stop of a daemon that is up (the relay leading, Redis reached), as a service manager's stop usually is.
    await waitFor("the daemon to be ready", async () => expect((await rest(started.baseUrl, "GET", "/readyz", { token: null })).status).toBe(200));
    started.proc.kill("SIGTERM"); // to npm's pid only, as systemd's KillMode=mixed or a supervisor does
    const [code, signal] = await exited;
    expect({ code, signal }, started.stdout.join("\n")).toEqual({ code: 0, signal: null });
    expect(started.stdout.join("\n")).toContain('"signal":"SIGTERM"');
    await groupGone(started);
  });
});

describe("the embedded store", () => {
  it("has one owner: a second daemon on the same data dir stops with one clear line", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "dynroute-data-"));
    const owner = await spawnDaemon({ DYNROUTE_DATA_DIR: dataDir, DYNROUTE_TOKENS: TOKEN, REDIS_URL: inject("redisUrl") });
    children.push(owner.proc);
    const second = await runDaemon({ DYNROUTE_DATA_DIR: dataDir, DYNROUTE_TOKENS: TOKEN, DYNROUTE_ADDR: "127.0.0.1:0", REDIS_URL: inject("redisUrl") });
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^dynroute: .*dynroute\.db is in use by another dynroute process; .*MYSQL_URL/)]);
    expect((await rest(owner.baseUrl, "GET", "/v1/t/mapping")).status).toBe(200);
    await stop(owner.proc);
  });

  it("serves without Redis, says what waits, and distributes it when Redis appears", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "dynroute-data-"));
    const redisPort = await freePort();
    const daemon = await spawnDaemon({ DYNROUTE_DATA_DIR: dataDir, DYNROUTE_TOKENS: TOKEN, REDIS_URL: `redis://127.0.0.1:${redisPort}` });
    children.push(daemon.proc);
    const created = await rest(daemon.baseUrl, "PUT", "/v1/t/mapping", { body: { domain: "later.example.org", backends: ["http://a:1"] } });
    expect(created.status).toBe(201);
    await waitFor("the unreachable-Redis warning", async () => expect(daemon.lines.join("\n")).toMatch(/routes are not being distributed to routers; \d+ change\(s\) wait/));
    const ready = await rest(daemon.baseUrl, "GET", "/readyz", { token: null });
    expect(ready.json).toMatchObject({ store: "ok", redis: expect.stringMatching(/^unreachable/), outbox: { depth: 1 } });

    const redis = await PrivateRedis.startOn(redisPort);
    try {
      await waitFor("the backlog to drain", async () => expect((await rest(daemon.baseUrl, "GET", "/readyz", { token: null })).json).toMatchObject({ redis: "ok", outbox: { depth: 0 } }));
      expect((await rest(daemon.baseUrl, "GET", "/v1/t/mapping/later.example.org")).json.live).toBe(true);
    } finally {
      await stop(daemon.proc);
      await redis.destroy();
    }
  });

  it("keeps every acknowledged write through kill -9, and Redis converges after the restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "dynroute-data-"));
    const env = { DYNROUTE_DATA_DIR: dataDir, DYNROUTE_TOKENS: TOKEN, REDIS_URL: inject("redisUrl"), DYNROUTE_REDIS_PREFIX: "k9:" };
    const first = await spawnDaemon(env);
    children.push(first.proc);
    const acknowledged: string[] = [];
    let stopWriting = false;
    const writers = [...Array(4).keys()].map(async (w) => {
      for (let i = 0; !stopWriting; i++) {
        const domain = `w${w}-${i}.k9.example`;
        const res = await rest(first.baseUrl, "PUT", "/v1/k9/mapping", { body: { domain, backends: ["http://a:1"] } }).catch(() => undefined);
        if (res?.status === 201) acknowledged.push(domain);
        if (!res) return;
      }
    });
    await waitFor("some writes", async () => expect(acknowledged.length).toBeGreaterThan(50));
    first.proc.kill("SIGKILL");
    await first.exited;
    stopWriting = true;
    await Promise.all(writers);

    const second = await spawnDaemon(env);
    children.push(second.proc);
    const listed = await rest(second.baseUrl, "GET", "/v1/k9/mapping?limit=500&total=true");
    const stored = new Set<string>(listed.json.mappings.map((m: { domain: string }) => m.domain));
    expect(listed.json.total_size).toBeLessThanOrEqual(500);
    expect(acknowledged.filter((d) => !stored.has(d))).toEqual([]);
    await waitFor("every mapping live", async () => {
      const all = (await rest(second.baseUrl, "GET", "/v1/k9/mapping?limit=500")).json.mappings as Array<{ live: boolean }>;
      expect(all.every((m) => m.live)).toBe(true);
    });
    // Live can come from the killed daemon's last batch, applied but not yet deleted: wait for the restarted relay to drain it.
    await waitFor("the outbox drained", async () => expect(((await (await fetch(`${second.baseUrl}/readyz`)).json()) as { outbox: { depth: number } }).outbox.depth).toBe(0));
    await stop(second.proc);

    // With the daemon gone, compare every Redis key with the file itself.
    const store = openSqliteStore({ file: join(dataDir, "dynroute.db"), logger: pino({ level: "silent" }) });
    const redis = new Redis(inject("redisUrl"));
    try {
      await assertRedisMatchesStore(store, redis, { prefix: "k9:" });
    } finally {
      redis.disconnect();
      await store.close();
    }
  });
});
