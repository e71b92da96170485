import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import https from "node:https";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestCa } from "./certs.js";
import { freePort, waitFor } from "./ports.js";

/** GET over https trusting `ca`; the body as text. */
function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/**
 * Debian's pebble (an ACME CA for tests) with pebble-challtestsrv as its DNS,
 * which answers 127.0.0.1 for every name: HTTP-01 validation reaches the
 * router's HTTP port on loopback, and nothing leaves the machine. Pebble's
 * own TLS certificate comes from a CA made here with openssl.
 */
export class PrivatePebble {
  private constructor(
    private readonly procs: ChildProcess[],
    readonly directoryUrl: string,
    /** PEM file of the CA that signed pebble's TLS certificate (DYNROUTE_ACME_CA_FILE). */
    readonly caFile: string,
    private readonly caPem: string,
    private readonly managementUrl: string,
    private readonly dnsManagementUrl: string,
    readonly logs: string[],
  ) {}

  /** `httpPort`: where pebble validates HTTP-01 (the router's HTTP port). `validitySeconds`: of the certificates it issues. */
  static async start(httpPort: number, validitySeconds: number): Promise<PrivatePebble> {
    const dir = mkdtempSync(join(tmpdir(), "dynroute-pebble-"));
    const ca = new TestCa();
    const tls = ca.issue(["127.0.0.1", "localhost"]);
    writeFileSync(join(dir, "cert.pem"), tls.chain);
    writeFileSync(join(dir, "key.pem"), tls.key);
    const [listen, management, dns, dnsManagement, tlsPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    writeFileSync(
      join(dir, "pebble.json"),
      JSON.stringify({
        pebble: {
          listenAddress: `127.0.0.1:${listen}`,
          managementListenAddress: `127.0.0.1:${management}`,
          certificate: join(dir, "cert.pem"),
          privateKey: join(dir, "key.pem"),
          httpPort,
          tlsPort,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          certificateValidityPeriod: validitySeconds,
        },
      }),
    );
    const logs: string[] = [];
    const run = (cmd: string, args: string[], env: Record<string, string> = {}) => {
      const proc = spawn(cmd, args, { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
      proc.stdout!.on("data", (d) => logs.push(String(d)));
      proc.stderr!.on("data", (d) => logs.push(String(d)));
      return proc;
    };
    const procs = [
      run("pebble-challtestsrv", ["-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", `127.0.0.1:${dns}`, "-http01", "", "-https01", "", "-tlsalpn01", "", "-management", `127.0.0.1:${dnsManagement}`]),
      run("pebble", ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dns}`], { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" }),
    ];
    const pebble = new PrivatePebble(procs, `https://127.0.0.1:${listen}/dir`, ca.certFile, ca.pem, `https://127.0.0.1:${management}`, `http://127.0.0.1:${dnsManagement}`, logs);
    await waitFor("pebble to answer", async () => {
      for (const p of procs) if (p.exitCode !== null) throw new Error(`exited: ${logs.join("")}`);
      const res = await get(pebble.directoryUrl, pebble.caPem);
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      await fetch(`${pebble.dnsManagementUrl}/clear-a`, { method: "POST", body: JSON.stringify({ host: "probe.invalid" }) });
    });
    return pebble;
  }

  /** The root that issues pebble's certificates, which clients of the router trust. */
  async root(): Promise<string> {
    const res = await get(`${this.managementUrl}/roots/0`, this.caPem);
    if (res.status !== 200) throw new Error(`pebble roots: ${res.status}`);
    return res.body;
  }

  /** Makes the DNS answer `address` (a loopback address) for `host`, or the default again with null. */
  async resolve(host: string, address: string | null): Promise<void> {
    const res = address
      ? await fetch(`${this.dnsManagementUrl}/add-a`, { method: "POST", body: JSON.stringify({ host, addresses: [address] }) })
      : await fetch(`${this.dnsManagementUrl}/clear-a`, { method: "POST", body: JSON.stringify({ host }) });
    if (!res.ok) throw new Error(`challtestsrv: ${res.status}`);
  }

  async stop(): Promise<void> {
    for (const p of this.procs) {
      if (p.exitCode === null) {
        p.kill("SIGTERM");
        await once(p, "exit");
      }
    }
  }
}
