import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, waitFor } from "./ports.js";

/** A private redis-server in a temp dir on a free port; the test that owns it may stop, restart or flush it. */
export class PrivateRedis {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly extraArgs: readonly string[],
  ) {}

  /** `extraArgs` go to redis-server as given, e.g. `["--replicaof", "127.0.0.1", "6379"]`. */
  static async start(extraArgs: readonly string[] = []): Promise<PrivateRedis> {
    return PrivateRedis.startOn(await freePort(), extraArgs);
  }

  /** On a given port: for a daemon that was told of a Redis before there was one. */
  static async startOn(port: number, extraArgs: readonly string[] = []): Promise<PrivateRedis> {
    const r = new PrivateRedis(mkdtempSync(join(tmpdir(), "dynroute-redis-")), port, extraArgs);
    await r.resume();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) with an empty dataset, as a restart without persistence does. */
  async resume(): Promise<void> {
    this.proc = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir, ...this.extraArgs], { stdio: "ignore" });
    await waitFor("redis-server to answer", async () => {
      const c = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      c.on("error", () => undefined); // the failed attempt rejects connect() below
      try {
        await c.connect();
        await c.ping();
      } finally {
        c.disconnect();
      }
    });
  }

  /** Stops the process without closing its connections (SIGSTOP): a server that no longer answers. */
  freeze(): void {
    this.proc?.kill("SIGSTOP");
  }

  /** Lets a frozen server run again (SIGCONT). */
  thaw(): void {
    this.proc?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill("SIGKILL");
    await exited;
    this.proc = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
