import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, waitFor } from "./ports.js";

export interface PolicyRule {
  cidr: string;
  action: "allow" | "deny";
  reason: string;
}

/**
 * Writes the backend destination policy as the daemon does (key and
 * announcement) — a stand-in until the daemon's own policy writer lands.
 */
export async function writeBackendPolicy(redisUrl: string, prefix: string, rules: PolicyRule[] | null): Promise<void> {
  const client = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    if (rules === null) await client.del(`${prefix}backend-policy`);
    else await client.set(`${prefix}backend-policy`, JSON.stringify({ rules }));
    await client.publish(`${prefix}route-invalidate`, "!backend-policy");
  } finally {
    client.disconnect();
  }
}

/** What the test daemons allow (DYNROUTE_BACKEND_ALLOW=127.0.0.0/8,::1/128): loopback backends. */
export const LOOPBACK_ALLOWED: PolicyRule[] = [
  { cidr: "127.0.0.0/8", action: "allow", reason: "DYNROUTE_BACKEND_ALLOW" },
  { cidr: "::1/128", action: "allow", reason: "DYNROUTE_BACKEND_ALLOW" },
  { cidr: "0.0.0.0/0", action: "deny", reason: "not an allowed test address" },
  { cidr: "::/0", action: "deny", reason: "not an allowed test address" },
];

/** The repo's nginx + Lua router, started by its own script in a prefix of its own, on a free port. */
export class PrivateRouter {
  private constructor(
    private readonly proc: ChildProcess,
    readonly prefix: string,
    readonly port: number,
    private readonly stderr: string[],
  ) {}

  /** `redisUrl` and `redisPrefix` as the daemon has them; `env` adds or overrides ROUTER_* settings. */
  static async start(redisUrl: string, redisPrefix: string, env: Record<string, string> = {}): Promise<PrivateRouter> {
    const prefix = mkdtempSync(join(tmpdir(), "dynroute-router-"));
    const port = await freePort();
    const redis = new URL(redisUrl);
    const proc = spawn("router/dynroute-router", ["start", "--foreground"], {
      env: {
        PATH: process.env.PATH ?? "",
        ROUTER_PREFIX: prefix,
        ROUTER_LISTEN: `127.0.0.1:${port}`,
        ROUTER_REDIS_HOST: redis.hostname,
        ROUTER_REDIS_PORT: redis.port || "6379",
        ROUTER_REDIS_PREFIX: redisPrefix,
        ROUTER_WORKERS: "2",
        // The prefix is a private temp dir: workers run as the owner, not www-data.
        ...(process.getuid?.() === 0 ? { ROUTER_USER: "root" } : {}),
        ...env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const stderr: string[] = [];
    proc.stderr!.on("data", (d) => stderr.push(String(d)));
    const router = new PrivateRouter(proc, prefix, port, stderr);
    await waitFor("the router to listen", async () => {
      if (proc.exitCode !== null) throw new Error(`router exited: ${stderr.join("")}`);
      await request(port, "router.invalid", "/");
    });
    return router;
  }

  accessLog(): Array<Record<string, unknown>> {
    return readFileSync(join(this.prefix, "logs", "access.log"), "utf8")
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  errorLog(): string {
    return readFileSync(join(this.prefix, "logs", "error.log"), "utf8");
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      this.proc.kill("SIGTERM");
      await once(this.proc, "exit");
    }
    rmSync(this.prefix, { recursive: true, force: true });
  }
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

/** A request through the router for `host`, as a browser would send it. */
export function request(port: number, host: string, path = "/", opts: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: opts.method ?? "GET", headers: { host, ...opts.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString();
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json });
      });
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** An HTTP backend that says who it is and what it got; upgrades echo with its name. */
export class Backend {
  private readonly sockets = new Set<Socket>();
  private constructor(
    readonly name: string,
    private readonly server: http.Server,
    private readonly scheme: "http" | "https",
  ) {
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
  }

  /** With `tls` (PEM key and cert), an https backend. */
  static async start(name: string, tls?: { key: string; cert: string }): Promise<Backend> {
    const handler: http.RequestListener = (req, res) => {
      let bytes = 0;
      req.on("data", (c: Buffer) => (bytes += c.length));
      req.on("end", () => {
        const body = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers, bytes });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
    };
    const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    server.on("upgrade", (req, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`);
      socket.on("data", (d: Buffer) => socket.write(`${name}:${d}`));
    });
    server.listen(await freePort(), "127.0.0.1");
    await once(server, "listening");
    return new Backend(name, server, tls ? "https" : "http");
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  /** Gone: refuses connections from now on. */
  async stop(): Promise<void> {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
