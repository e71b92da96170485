import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";

const run = promisify(execFile);

// A program in a folder of its own that depends on this package, as an installed dependency would (a link in node_modules).
const CONSUMER_TS = `
import { createDynrouteClients, type Mapping, type Protocol } from "dynroute/client";
import { Code, ConnectError } from "@connectrpc/connect";

const [baseUrl, apiKey] = process.argv.slice(2) as [string, string];
const results: Record<string, unknown> = {};
for (const protocol of ["connect", "grpc", "grpc-web"] satisfies Protocol[]) {
  const { mappings, audit } = createDynrouteClients({ baseUrl, apiKey, protocol });
  const created: Mapping | undefined = (await mappings.createMapping({ tenantId: "pkg", mapping: { domain: \`\${protocol}.pkg.example\`, backends: ["http://a:1"] } })).mapping;
  const listed = await mappings.listMappings({ tenantId: "pkg", q: protocol });
  const events = await audit.listAuditEvents({ tenantId: "pkg", domain: \`\${protocol}.pkg.example\` });
  const denied = await createDynrouteClients({ baseUrl, apiKey: "wrong-key-wrong-key", protocol })
    .mappings.listMappings({ tenantId: "pkg" })
    .then(() => "ok", (err: unknown) => Code[ConnectError.from(err).code]);
  results[protocol] = { created: created?.domain, listed: listed.mappings.map((m) => m.domain), audited: events.events.length, denied };
}
console.log(JSON.stringify(results));
`;

let daemon: TestDaemon;
let dir: string;
let typeErrors: string;
beforeAll(async () => {
  daemon = await startTestDaemon(await freshStore("sqlite"));
  dir = mkdtempSync(join(tmpdir(), "dynroute-client-"));
  mkdirSync(join(dir, "node_modules", "@connectrpc"), { recursive: true });
  symlinkSync(resolve("."), join(dir, "node_modules", "dynroute"));
  // The consumer's own dependencies: connect (the copy the package uses) and Node's types.
  mkdirSync(join(dir, "node_modules", "@types"));
  symlinkSync(resolve("node_modules/@connectrpc/connect"), join(dir, "node_modules", "@connectrpc", "connect"));
  symlinkSync(resolve("node_modules/@types/node"), join(dir, "node_modules", "@types", "node"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  writeFileSync(join(dir, "consumer.ts"), CONSUMER_TS);
  // The README's example as written, pointed at this daemon.
  const readme = readFileSync("README.md", "utf8");
  const example = /### Typed clients[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)![1]!;
  writeFileSync(join(dir, "readme-example.ts"), example.replace("http://127.0.0.1:8080", daemon.baseUrl));
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: true, types: ["node"], outDir: "out" }, include: ["consumer.ts", "readme-example.ts"] }),
  );
  // Both programs type-checked and compiled as a consumer's build would.
  typeErrors = await run(process.execPath, [resolve("node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json")], { cwd: dir }).then(
    () => "",
    (err: { stdout: string }) => err.stdout,
  );
});
afterAll(() => daemon.close());

describe("the dynroute/client package export", () => {
  it("type-checks and runs from outside the checkout over Connect, gRPC and gRPC-Web, sending the key", async () => {
    expect(typeErrors).toBe("");
    const { stdout } = await run(process.execPath, [join(dir, "out", "consumer.js"), daemon.baseUrl, TOKEN], { cwd: dir });
    const results = JSON.parse(stdout);
    for (const protocol of ["connect", "grpc", "grpc-web"]) {
      expect(results[protocol], protocol).toEqual({ created: `${protocol}.pkg.example`, listed: [`${protocol}.pkg.example`], audited: 1, denied: "Unauthenticated" });
    }
  });

  it("runs the README's TypeScript example as written", async () => {
    await run(process.execPath, [join(dir, "out", "readme-example.js")], { cwd: dir, env: { ...process.env, DYNROUTE_TOKEN: TOKEN } });
    const mapping = (await daemon.client("connect").getMapping({ tenantId: "tools", domain: "something.wmflabs.org" })).mapping!;
    expect(mapping.backends).toEqual(["http://instance-02:3000"]);
  });
});
