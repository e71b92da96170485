import { existsSync, mkdtempSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createConnection } from "mysql2/promise";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { createDatabase } from "./harness/mariadb.js";
import { TOKEN } from "./harness/daemon.js";
import { runDaemon, spawnDaemon } from "./harness/process.js";
import { waitFor } from "./harness/ports.js";

let url: string;
beforeAll(async () => {
  url = await createDatabase(inject("mysqlAdminUrl"));
});

describe("startup configuration", () => {
  it.each([
    [{ MYSQL_URL: "x" }, /^dynroute: configuration error: MYSQL_URL: not a URL/],
    [{ DYNROUTE_TOKENS_FILE: "/dev/null" }, /^dynroute: configuration error: DYNROUTE_TOKENS_FILE: \/dev\/null holds no token/],
    [{ DYNROUTE_TOKENS: "short", MYSQL_URL: "mysql://h/db" }, /^dynroute: configuration error: DYNROUTE_TOKENS: every token must be at least 16 characters/],
    [{ DYNROUTE_TOKENS: TOKEN, MYSQL_URL: "postgres://h/db" }, /^dynroute: configuration error: MYSQL_URL: scheme must be mysql:\/\//],
    [{ DYNROUTE_TOKENS: TOKEN, MYSQL_URL: "mysql://h/db", DYNROUTE_ADDR: "8080" }, /^dynroute: configuration error: DYNROUTE_ADDR: expected host:port/],
    [{ DYNROUTE_TOKENS: TOKEN, MYSQL_URL: "mysql://h/db", LOG_LEVEL: "loud" }, /^dynroute: configuration error: LOG_LEVEL: must be one of/],
    [{ DYNROUTE_TOKENS_FILE: "/nonexistent/tokens", MYSQL_URL: "mysql://h/db" }, /^dynroute: configuration error: DYNROUTE_TOKENS_FILE: cannot read/],
    [{ DYNROUTE_TOKENS: TOKEN, MYSQL_URL: "mysql://h/db", DYNROUTE_TLS_CERT: "/c.pem" }, /^dynroute: configuration error: DYNROUTE_TLS_KEY: TLS needs both/],
  ])("stops with one clear line for %j", async (env, message) => {
    const { code, stdout, stderr } = await runDaemon(env);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(message);
  });
});

describe("a taken port", () => {
  it("stops with one clear line and exit code 2 before writing anything", async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as net.AddressInfo;
    const dataDir = join(mkdtempSync(join(tmpdir(), "dynroute-taken-")), "data");
    try {
      const { code, stdout, stderr } = await runDaemon({ DYNROUTE_ADDR: `127.0.0.1:${port}`, DYNROUTE_DATA_DIR: dataDir });
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr.trim().split("\n")).toEqual([`dynroute: cannot listen on 127.0.0.1:${port}: the address is in use (EADDRINUSE); set DYNROUTE_ADDR to a free host:port`]);
      // Neither the embedded store nor a generated token was made.
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      taken.close();
    }
  });
});

describe("SIGTERM", () => {
  it("stops accepting, finishes the in-flight write, then exits 0", async () => {
    const daemon = await spawnDaemon({ MYSQL_URL: url, DYNROUTE_TOKENS: TOKEN });
    const client = createClient(MappingService, createConnectTransport({ baseUrl: daemon.baseUrl, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${TOKEN}` };
    await waitFor("migrations", () => client.createMapping({ tenantId: "t", mapping: { domain: "slow.example.org", backends: ["http://a:1"] } }, { headers }));

    // Hold the mapping's row lock so the update below stays in flight.
    const locker = await createConnection(url);
    await locker.query("BEGIN");
    await locker.query("SELECT id FROM mappings WHERE domain = 'slow.example.org' FOR UPDATE");
    const inflight = client.updateMapping({ tenantId: "t", domain: "slow.example.org", mapping: { backends: ["http://b:2"] } }, { headers });
    await new Promise((r) => setTimeout(r, 300));

    daemon.proc.kill("SIGTERM");
    await waitFor("the listener to close", async () => {
      const refused = await fetch(daemon.baseUrl).then(
        () => false,
        () => true,
      );
      if (!refused) throw new Error("still accepting");
    });
    await locker.query("COMMIT");
    await locker.end();

    expect((await inflight).mapping!.backends).toEqual(["http://b:2"]);
    expect(await daemon.exited).toBe(0);
    expect(daemon.lines.some((l) => l.includes('"msg":"shutting down"'))).toBe(true);
  });
});
