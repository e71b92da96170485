import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freshStore, startTestDaemon, TOKEN, type StoreEnv, type TestDaemon } from "./harness/daemon.js";
import { spawnDaemon } from "./harness/process.js";
import { rest } from "./harness/rest.js";

/** The admin CLI as its own process, on the store `env` names. */
async function cli(args: string[], env: Record<string, string>, input = ""): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ["dist/src/cli.js", ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  proc.stdin.end(input);
  const [code] = await once(proc, "exit");
  return { code: code as number | null, stdout, stderr };
}

const lines = (jsonl: string) => jsonl.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
/** What a move keeps: everything but what the target store assigns anew. */
const portable = ({ revision: _r, create_time: _c, update_time: _u, ...rest }: Record<string, unknown>) => rest;

let source: TestDaemon;
let sourceEnv: StoreEnv;
beforeAll(async () => {
  sourceEnv = await freshStore("mysql");
  source = await startTestDaemon(sourceEnv);
  await source.store.ready;
  const put = (tenant: string, body: object) => rest(source.baseUrl, "PUT", `/v1/${tenant}/mapping`, { body });
  await put("tools", { domain: "something.wmflabs.org", backends: ["http://instance-01:3000", "http://instance-02:4000"], labels: { env: "prod" } });
  await put("tools", { domain: "*.wild.wmflabs.org", backends: ["https://b:443/p"] });
  await put("other", { domain: "other.example.org", backends: ["http://c:1"] });
});
afterAll(() => source.close());

describe("export and import", () => {
  it("moves every tenant from MySQL to the embedded store and back, unchanged", async () => {
    const exported = await cli(["export"], sourceEnv);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain("exported 3 mapping(s)");
    const original = lines(exported.stdout);
    expect(original.map((l) => l.domain)).toEqual(["something.wmflabs.org", "*.wild.wmflabs.org", "other.example.org"]);
    expect(original[0]).toMatchObject({ tenant_id: "tools", labels: { env: "prod" }, revision: expect.any(String) });

    const sqlite = { DYNROUTE_DATA_DIR: mkdtempSync(join(tmpdir(), "dynroute-data-")) };
    const imported = await cli(["import"], sqlite, exported.stdout);
    expect(imported.code).toBe(0);
    expect(imported.stderr).toContain("tenant tools: imported 2 mapping(s)");
    expect(imported.stderr).toContain("tenant other: imported 1 mapping(s)");
    const copied = lines((await cli(["export"], sqlite)).stdout);
    expect(copied.map(portable)).toEqual(original.map(portable));

    const back = await freshStore("mysql");
    expect((await cli(["import"], back, (await cli(["export"], sqlite)).stdout)).code).toBe(0);
    expect(lines((await cli(["export"], back)).stdout).map(portable)).toEqual(original.map(portable));
  });

  it("exports one tenant with --tenant", async () => {
    const one = await cli(["export", "--tenant", "other"], sourceEnv);
    expect(lines(one.stdout).map((l) => l.domain)).toEqual(["other.example.org"]);
  });

  it("writes nothing on a dry run, and reports what a real run would do", async () => {
    const target = { DYNROUTE_DATA_DIR: mkdtempSync(join(tmpdir(), "dynroute-data-")) };
    const dry = await cli(["import", "--dry-run"], target, (await cli(["export"], sourceEnv)).stdout);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain("tenant tools: would import 2 mapping(s)");
    expect(dry.stderr).toContain("dry run: nothing was written");
    expect((await cli(["export"], target)).stdout).toBe("");
  });

  it("imports each tenant all or nothing, and names every bad line", async () => {
    const target = await freshStore("mysql");
    const daemon = await startTestDaemon(target);
    await daemon.store.ready;
    // A domain of tenant "tools" is taken in the target by someone else.
    await rest(daemon.baseUrl, "PUT", "/v1/squatter/mapping", { body: { domain: "something.wmflabs.org", backends: ["http://x:1"] } });
    const input = [
      (await cli(["export"], sourceEnv)).stdout.trim(),
      JSON.stringify({ tenant_id: "broken", domain: "ok.broken.example", backends: ["http://a:1"] }),
      JSON.stringify({ tenant_id: "broken", domain: "bad_name.example", backends: ["http://a:1"] }),
      "not json",
    ].join("\n");
    const res = await cli(["import"], target, input);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^line 5 \(tenant broken, not imported\): domain: must be a domain name/m);
    expect(res.stderr).toMatch(/^line 6: .*JSON/m);
    expect(res.stderr).toContain("tenant tools: not imported: domain something.wmflabs.org is already mapped");
    expect(res.stderr).toContain("tenant other: imported 1 mapping(s)");
    const after = lines((await cli(["export"], target)).stdout).map((l) => `${l.tenant_id} ${l.domain}`);
    expect(after).toEqual(["squatter something.wmflabs.org", "other other.example.org"]);
    await daemon.close();
  });

  it("refuses a data dir a running daemon owns, with one clear line", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "dynroute-data-"));
    const owner = await spawnDaemon({ DYNROUTE_DATA_DIR: dataDir, DYNROUTE_TOKENS: TOKEN, REDIS_URL: inject("redisUrl") });
    try {
      const res = await cli(["export"], { DYNROUTE_DATA_DIR: dataDir });
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toMatch(/^dynroute: .* is in use by another dynroute process/);
    } finally {
      owner.proc.kill("SIGTERM");
      await owner.exited;
    }
  });

  it("answers usage errors with exit code 2", async () => {
    for (const args of [[], ["frobnicate"], ["export", "--dry-run"], ["import", "--bogus"]]) {
      const res = await cli(args, sourceEnv);
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toContain("usage:");
    }
  });
});
