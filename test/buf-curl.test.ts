import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDatabase } from "./harness/mariadb.js";
import { startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";

const run = promisify(execFile);
let daemon: TestDaemon;
beforeAll(async () => {
  daemon = await startTestDaemon(await createDatabase(inject("mysqlAdminUrl")));
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
