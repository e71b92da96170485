import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import http from "node:http";
import https from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net, { type AddressInfo, type Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dgram from "node:dgram";
import { Redis } from "ioredis";
import { freePort, waitFor } from "./ports.js";
import { cpuSeconds } from "./proc-cpu.js";

/** The repo's nginx + Lua router, started by its own script in a prefix of its own, on a free port. */
export class PrivateRouter {
  private constructor(
    private readonly proc: ChildProcess,
    readonly prefix: string,
    readonly port: number,
    /** ROUTER_STATUS_LISTEN's port: /metrics and /health. */
    readonly statusPort: number,
    private readonly stderr: string[],
  ) {}

  /** `redisUrl` and `redisPrefix` as the daemon has them; `env` adds or overrides ROUTER_* settings. */
  static async start(redisUrl: string, redisPrefix: string, env: Record<string, string> = {}): Promise<PrivateRouter> {
    const prefix = mkdtempSync(join(tmpdir(), "dynroute-router-"));
    const port = await freePort();
    const statusPort = await freePort();
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
        ROUTER_STATUS_LISTEN: `127.0.0.1:${statusPort}`,
        // The prefix is a private temp dir: workers run as the owner, not www-data.
        ...(process.getuid?.() === 0 ? { ROUTER_USER: "root" } : {}),
        ...env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const stderr: string[] = [];
    proc.stderr!.on("data", (d) => stderr.push(String(d)));
    const router = new PrivateRouter(proc, prefix, port, statusPort, stderr);
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

  /** The status listener's Prometheus text as name{labels} → value. */
  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.statusPort}/metrics`)).text();
    const values = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = /^(\S+) (\S+)$/.exec(line);
      if (m && !line.startsWith("#")) values.set(m[1]!, Number(m[2]));
    }
    return values;
  }

  /** The status listener's /health: backends marked down now. */
  async health(): Promise<{ down: Array<{ backend: string; reason: string; seconds_left: number }> }> {
    return (await fetch(`http://127.0.0.1:${this.statusPort}/health`)).json() as Promise<{ down: Array<{ backend: string; reason: string; seconds_left: number }> }>;
  }

  /** The resident memory of each worker process, in bytes (Linux /proc). */
  workerRss(): number[] {
    const children = readFileSync(`/proc/${this.proc.pid}/task/${this.proc.pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return children.map((pid) => 1024 * Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0));
  }

  /** CPU time its worker processes have used, in seconds. */
  workersCpuSeconds(): number {
    return workersCpuSeconds(this.proc.pid!);
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

/** CPU time (user and system) used by the worker processes of the nginx whose master is `pid`, in seconds (Linux /proc). */
export function workersCpuSeconds(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
  return children.reduce((sum, child) => sum + cpuSeconds(Number(child)), 0);
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
    private readonly host: string,
  ) {
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
  }

  /** With `tls` (PEM key and cert), an https backend; `host` "::1" for IPv6. Answers say the TLS name the connection asked for. */
  static async start(name: string, tls?: { key: string; cert: string }, host = "127.0.0.1"): Promise<Backend> {
    const handler: http.RequestListener = (req, res) => {
      let bytes = 0;
      req.on("data", (c: Buffer) => (bytes += c.length));
      req.on("end", () => {
        const servername = (req.socket as TLSSocket).servername || null;
        const body = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers, bytes, ...(tls ? { servername } : {}) });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
    };
    const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    server.on("upgrade", (req, socket: Socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`);
      socket.on("data", (d: Buffer) => socket.write(`${name}:${d}`));
    });
    server.listen(await freePort(), host);
    await once(server, "listening");
    return new Backend(name, server, tls ? "https" : "http", host);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `${this.scheme}://${this.host.includes(":") ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Gone: refuses connections from now on. */
  async stop(): Promise<void> {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** A backend that speaks no HTTP: "hang" accepts and never answers; "garbage" answers bytes that are not HTTP. */
export class RawBackend {
  /** Connections accepted so far. */
  connections = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: net.Server) {}

  static async start(behaviour: "hang" | "garbage"): Promise<RawBackend> {
    const server = net.createServer();
    const backend = new RawBackend(server);
    server.on("connection", (s: Socket) => {
      backend.connections++;
      backend.sockets.add(s);
      s.once("close", () => backend.sockets.delete(s));
      s.on("error", () => undefined);
      if (behaviour === "garbage") s.once("data", () => s.end("SSH-2.0-OpenSSH_9.2\r\nthis is not HTTP\r\n"));
    });
    server.listen(await freePort(), "127.0.0.1");
    await once(server, "listening");
    return backend;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const closed = new Promise((r) => this.server.close(r));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

/** Sends `text` as is (for requests no HTTP client would send) and returns the answer's status and body. */
export function rawRequest(port: number, text: string | Buffer): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks).toString("latin1");
      const end = all.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: (\d+)/i.exec(all)?.[1];
      if (end >= 0 && length !== undefined && all.length >= end + 4 + Number(length)) socket.end();
    });
    socket.on("error", reject);
    socket.on("close", () => {
      const all = Buffer.concat(chunks).toString("latin1");
      const end = all.indexOf("\r\n\r\n");
      let body = all.slice(end + 4);
      if (/\r\ntransfer-encoding: chunked/i.test(all.slice(0, end))) body = dechunk(body);
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(all)?.[1] ?? 0), headers: all.slice(0, end), body });
    });
  });
}

/** Sends `text` as is and returns everything the router writes back until it closes the connection (for pipelined requests). */
export function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
  });
}

/** The header names of an answer, lower case and sorted, without the framing ones (which differ by how the body is sent). */
export function headerNames(headers: string | http.IncomingHttpHeaders): string[] {
  const names = typeof headers === "string" ? headers.split("\r\n").slice(1).map((line) => line.slice(0, line.indexOf(":")).toLowerCase()) : Object.keys(headers);
  return names.filter((name) => name !== "content-length" && name !== "transfer-encoding").sort();
}

function dechunk(text: string): string {
  let out = "";
  for (let at = 0; ; ) {
    const eol = text.indexOf("\r\n", at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/** A DNS server on loopback that knows no name: answers every query NXDOMAIN, and counts them. */
export class NxDomainDns {
  /** Names asked, in order. */
  readonly queries: string[] = [];
  private constructor(private readonly socket: dgram.Socket) {}

  static async start(): Promise<NxDomainDns> {
    const socket = dgram.createSocket("udp4");
    const dns = new NxDomainDns(socket);
    socket.on("message", (msg, from) => {
      if (msg.length < 12) return;
      const labels: string[] = [];
      let at = 12;
      while (at < msg.length && msg[at]! > 0) {
        labels.push(msg.subarray(at + 1, at + 1 + msg[at]!).toString());
        at += 1 + msg[at]!;
      }
      dns.queries.push(labels.join("."));
      const question = msg.subarray(12, at + 5);
      // Same id; QR, RD, RA set; RCODE 3 (name error); the question echoed, no answers.
      const header = Buffer.from([msg[0]!, msg[1]!, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0]);
      socket.send(Buffer.concat([header, question]), from.port, from.address);
    });
    socket.bind(0, "127.0.0.1");
    await once(socket, "listening");
    return dns;
  }

  get address(): string {
    return `127.0.0.1:${this.socket.address().port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
