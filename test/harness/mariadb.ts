import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";
import { createConnection } from "mysql2/promise";
import { freePort, waitFor } from "./ports.js";

const run = promisify(execFile);

/**
 * A private MariaDB server in a temp dir on a free port, owned by the test
 * that started it: it may stop, kill and restart it at will.
 */
export class PrivateMariaDb {
  private proc: ChildProcess | undefined;

  private constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<PrivateMariaDb> {
    const dataDir = mkdtempSync(join(tmpdir(), "dynroute-mariadb-"));
    await run("mariadb-install-db", ["--no-defaults", `--datadir=${dataDir}`, "--auth-root-authentication-method=normal", "--skip-test-db", ...asRoot()]);
    const db = new PrivateMariaDb(dataDir, await freePort());
    await db.resume();
    return db;
  }

  /** Root URL (no database): grants are skipped, so any user connects. */
  get adminUrl(): string {
    return `mysql://root@127.0.0.1:${this.port}/`;
  }

  async resume(): Promise<void> {
    this.proc = spawn(
      "mariadbd",
      [
        "--no-defaults",
        `--datadir=${this.dataDir}`,
        `--port=${this.port}`,
        "--bind-address=127.0.0.1",
        `--socket=${join(this.dataDir, "mysqld.sock")}`,
        `--pid-file=${join(this.dataDir, "mysqld.pid")}`,
        "--skip-grant-tables",
        "--innodb-buffer-pool-size=64M",
        // Test data is disposable; a group commit per second keeps the suite fast.
        "--innodb-flush-log-at-trx-commit=2",
        ...asRoot(),
      ],
      { stdio: "ignore" },
    );
    await waitFor("mariadbd to accept connections", async () => {
      const conn = await createConnection({ host: "127.0.0.1", port: this.port, user: "root" });
      await conn.end();
    });
  }

  /** Clean shutdown; the data dir survives for resume(). */
  async stop(): Promise<void> {
    await this.signal("SIGTERM");
  }

  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((resolve) => proc.once("exit", resolve));
    proc.kill(sig);
    await exited;
    this.proc = undefined;
  }
}

const asRoot = () => (process.getuid?.() === 0 ? ["--user=root"] : []);

/** Creates an empty database on the server and returns its URL. */
export async function createDatabase(adminUrl: string): Promise<string> {
  const name = `dynroute_test_${randomBytes(6).toString("hex")}`;
  const conn = await createConnection(adminUrl);
  await conn.query(`CREATE DATABASE ${name}`);
  await conn.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A server-wide status counter (SHOW GLOBAL STATUS), such as Com_commit: what a test's statements cost the server. */
export async function globalStatus(adminUrl: string, name: string): Promise<number> {
  const conn = await createConnection(adminUrl);
  try {
    const [[row]] = (await conn.query("SHOW GLOBAL STATUS LIKE ?", [name])) as unknown as [[{ Value: string }]];
    return Number(row.Value);
  } finally {
    await conn.end();
  }
}
