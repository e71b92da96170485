import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, waitFor } from "./ports.js";
import { PrivateRedis } from "./redis.js";

export const MASTER_NAME = "mymaster";

/**
 * Redis HA on loopback as operators run it: a master, a replica of it and
 * three sentinels (quorum 2) watching them, with Debian's redis-server only
 * (`--replicaof`, `--sentinel`). A master that stops answering for a second
 * is failed over. The test that owns it may kill any part.
 */
export class SentinelGroup {
  private constructor(
    readonly master: PrivateRedis,
    readonly replica: PrivateRedis,
    private readonly sentinels: ChildProcess[],
    readonly sentinelPorts: number[],
    private readonly dir: string,
  ) {}

  static async start(): Promise<SentinelGroup> {
    const master = await PrivateRedis.start();
    const replica = await PrivateRedis.start(["--replicaof", "127.0.0.1", String(master.port)]);
    const dir = mkdtempSync(join(tmpdir(), "dynroute-sentinel-"));
    const ports = [await freePort(), await freePort(), await freePort()];
    const sentinels = ports.map((port, i) => {
      // Sentinels rewrite their configuration file: each gets one of its own.
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          "",
        ].join("\n"),
      );
      return spawn("redis-server", [conf, "--sentinel"], { stdio: "ignore" });
    });
    const group = new SentinelGroup(master, replica, sentinels, ports, dir);
    // Failover needs every sentinel to know the replica and a majority of the others.
    await waitFor("the replica to sync", async () => {
      if (!/master_link_status:up/.test(await group.query(replica.port, ["INFO", "replication"]) as string)) throw new Error("not synced yet");
    });
    await waitFor("the sentinels to see each other and the replica", async () => {
      for (const port of ports) {
        const replicas = (await group.query(port, ["SENTINEL", "REPLICAS", MASTER_NAME])) as unknown[];
        const others = (await group.query(port, ["SENTINEL", "SENTINELS", MASTER_NAME])) as unknown[];
        if (replicas.length < 1 || others.length < 2) throw new Error(`sentinel ${port}: ${replicas.length} replica(s), ${others.length} other sentinel(s)`);
      }
    }, 60_000);
    return group;
  }

  /** REDIS_URL for the daemon. */
  get url(): string {
    return `redis+sentinel://${this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(",")}/${MASTER_NAME}`;
  }

  /** The master's port as the sentinels report it now. */
  async masterPort(): Promise<number> {
    const [, port] = (await this.query(this.sentinelPorts[0]!, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])) as [string, string];
    return Number(port);
  }

  /** Waits until the sentinels promoted another server than `oldPort` and it answers as a master. */
  async failedOverFrom(oldPort: number): Promise<number> {
    return waitFor("the sentinels to fail over", async () => {
      const port = await this.masterPort();
      if (port === oldPort) throw new Error("still the old master");
      if (!/role:master/.test((await this.query(port, ["INFO", "replication"])) as string)) throw new Error("not promoted yet");
      return port;
    }, 30_000);
  }

  /** One command to one server, on a connection of its own. */
  async query(port: number, command: string[]): Promise<unknown> {
    const c = new Redis({ port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on("error", () => undefined); // the failed attempt rejects below
    try {
      await c.connect();
      return await c.call(command[0]!, ...command.slice(1));
    } finally {
      c.disconnect();
    }
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.sentinels.map(async (s) => {
        if (s.exitCode !== null || s.signalCode !== null) return;
        const exited = new Promise((resolve) => s.once("exit", resolve));
        s.kill("SIGKILL");
        await exited;
      }),
    );
    await Promise.all([this.master.destroy(), this.replica.destroy()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
