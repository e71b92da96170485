import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";

const run = promisify(execFile);
let daemon: TestDaemon;
beforeAll(async () => {
  daemon = await startTestDaemon(await freshStore("mysql"));
  await daemon.store.ready;
});
afterAll(() => daemon.close());

const protocolFlags = {
  connect: ["--protocol", "connect"],
  grpcweb: ["--protocol", "grpcweb"],
  grpc: ["--protocol", "grpc", "--http2-prior-knowledge"],
};

/** The README's command: buf curl with the local schema, no registry, no reflection. */
async function bufCurl(protocol: keyof typeof protocolFlags, method: string, body: object): Promise<unknown> {
  const { stdout } = await run("node_modules/.bin/buf", [
    "curl",
    "--schema",
    "proto",
    ...protocolFlags[protocol],
    "-H",
    `Authorization: Bearer ${TOKEN}`,
    "-d",
    JSON.stringify(body),
    `${daemon.baseUrl}/dynroute.v1.MappingService/${method}`,
  ]);
  return JSON.parse(stdout);
}

describe.each(Object.keys(protocolFlags) as Array<keyof typeof protocolFlags>)("buf curl --protocol %s", (protocol) => {
  it("creates, gets, lists, updates, renames and deletes", async () => {
    const tenant = `curl-${protocol}`;
    const domain = `something.${protocol}.wmflabs.org`;
    const created = await bufCurl(protocol, "CreateMapping", { tenant_id: tenant, mapping: { domain, backends: ["http://instance-01:3000", "http://instance-02:4000"] } });
    expect(created).toMatchObject({ mapping: { tenantId: tenant, domain, backends: ["http://instance-01:3000", "http://instance-02:4000"] } });
    expect(await bufCurl(protocol, "GetMapping", { tenant_id: tenant, domain })).toMatchObject(created as object);
    expect(await bufCurl(protocol, "ListMappings", { tenant_id: tenant, limit: 10 })).toMatchObject({ mappings: [(created as { mapping: unknown }).mapping] });
    expect(await bufCurl(protocol, "UpdateMapping", { tenant_id: tenant, domain, mapping: { domain, backends: ["http://instance-03:3000"] } })).toMatchObject({
      mapping: { domain, backends: ["http://instance-03:3000"] },
    });
    const renamed = `renamed.${protocol}.wmflabs.org`;
    expect(await bufCurl(protocol, "UpdateMapping", { tenant_id: tenant, domain, mapping: { domain: renamed, backends: ["http://instance-03:3000"] } })).toMatchObject({
      mapping: { domain: renamed },
    });
    expect(await bufCurl(protocol, "DeleteMapping", { tenant_id: tenant, domain: renamed })).toEqual({});
    expect(await bufCurl(protocol, "ListMappings", { tenant_id: tenant })).toEqual({});
  });
});

describe("server reflection", () => {
  const reflect = (args: string[]) =>
    run("node_modules/.bin/buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", `Authorization: Bearer ${TOKEN}`, ...args]).then(
      ({ stdout }) => ({ ok: true, out: stdout }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ""}${err.stderr ?? ""}` }),
    );

  it.each(["grpc-v1", "grpc-v1alpha"])("lets buf curl work without a local schema over %s", async (version) => {
    const listed = await reflect(["--reflect-header", "*", "--reflect-protocol", version, "--list-methods", daemon.baseUrl]);
    expect(listed.out.trim().split("\n")).toEqual(expect.arrayContaining(["dynroute.v1.MappingService/CreateMapping", "dynroute.v1.AdminService/Reconcile"]));

    const body = { tenant_id: `reflect-${version}`, mapping: { domain: `r.${version}.example.org`, backends: ["http://a:1"] } };
    const created = await reflect(["--reflect-header", "*", "--reflect-protocol", version, "-d", JSON.stringify(body), `${daemon.baseUrl}/dynroute.v1.MappingService/CreateMapping`]);
    expect(created.ok, created.out).toBe(true);
    expect(JSON.parse(created.out)).toMatchObject({ mapping: { domain: `r.${version}.example.org`, backends: ["http://a:1"] } });
  });

  it("resolves every field of a request through reflection alone", async () => {
    const body = { tenant_id: "reflect-all", limit: 5, label_selector: "env=prod", domain_suffix: "example.org", total: true };
    const listed = await reflect(["--reflect-header", "*", "-d", JSON.stringify(body), `${daemon.baseUrl}/dynroute.v1.MappingService/ListMappings`]);
    expect(listed.ok, listed.out).toBe(true);
    expect(JSON.parse(listed.out)).toEqual({ totalSize: 0 });
  });

  it("requires the admin token like every other service", async () => {
    const denied = await reflect(["--list-methods", daemon.baseUrl]);
    expect(denied.ok).toBe(false);
    expect(denied.out).toMatch(/not authenticated|unauthenticated/i);
  });
});
