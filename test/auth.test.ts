import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshStore, protocols, startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";
import { outcome } from "./harness/outcome.js";

let daemon: TestDaemon;
const SECOND = "second-rotated-token-abcdef";
beforeAll(async () => {
  daemon = await startTestDaemon(await freshStore("mysql"), { DYNROUTE_TOKENS: `${TOKEN},${SECOND}` });
  await daemon.store.ready;
});
afterAll(() => daemon.close());


describe.each(protocols)("auth over %s", (protocol) => {
  it("rejects every RPC without a token or with a wrong one", async () => {
    for (const token of [null, "wrong-token-wrong-token", `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const c = daemon.client(protocol, token);
      const results = await Promise.all([
        outcome(c.createMapping({ tenantId: "a", mapping: { domain: `auth-${protocol}.example.org`, backends: ["http://a:1"] } })),
        outcome(c.getMapping({ tenantId: "a", domain: "x.example.org" })),
        outcome(c.listMappings({ tenantId: "a" })),
        outcome(c.updateMapping({ tenantId: "a", domain: "x.example.org", mapping: { backends: ["http://a:1"] } })),
        outcome(c.deleteMapping({ tenantId: "a", domain: "x.example.org" })),
      ]);
      expect(results).toEqual(Array(5).fill("Unauthenticated"));
    }
    // Nothing was created by the rejected calls.
    expect((await daemon.client(protocol).listMappings({ tenantId: "a" })).mappings.map((m) => m.domain)).not.toContain(`auth-${protocol}.example.org`);
  });

  it("rejects before validating, so bad input without a token is still unauthenticated", async () => {
    expect(await outcome(daemon.client(protocol, null).createMapping({ tenantId: "no/such" }))).toBe("Unauthenticated");
  });

  it("accepts every configured token", async () => {
    for (const token of [TOKEN, SECOND]) {
      await expect(daemon.client(protocol, token).listMappings({ tenantId: "a" })).resolves.toBeDefined();
    }
  });
});

describe("auth headers", () => {
  const list = (headers: Record<string, string>) =>
    fetch(`${daemon.baseUrl}/dynroute.v1.MappingService/ListMappings`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ tenantId: "a" }),
    });

  it("takes X-API-Key and a case-insensitive Bearer scheme", async () => {
    expect((await list({ "x-api-key": TOKEN })).status).toBe(200);
    expect((await list({ authorization: `bearer ${SECOND}` })).status).toBe(200);
  });

  it("answers 401 with a JSON error for a missing or wrong token", async () => {
    for (const headers of [{}, { authorization: `Basic ${TOKEN}` }, { "x-api-key": "nope" }] as Array<Record<string, string>>) {
      const res = await list(headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: "unauthenticated" });
    }
  });

  it("never writes a token to the log", () => {
    expect(daemon.logs.length).toBeGreaterThan(10);
    expect(daemon.logs.join("\n")).not.toContain(TOKEN);
    expect(daemon.logs.join("\n")).not.toContain(SECOND);
  });
});
