import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateMappingRequestSchema } from "../gen/dynroute/v1/mapping_pb.js";
import { freshStore, protocols, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { rawRpc, type RawCall } from "./harness/raw-rpc.js";

const CREATE = "/dynroute.v1.MappingService/CreateMapping";
// Field 2 (mapping) says 200 bytes follow; 3 do.
const TRUNCATED = Uint8Array.from([0x12, 0xc8, 0x01, 0x0a, 0x01, 0x61]);

describe.each(stores)("malformed request messages on the %s store", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  const call = (c: Omit<RawCall, "path"> & { path?: string }) => rawRpc(daemon.baseUrl, { path: CREATE, ...c });
  const rejected = async () => {
    const metrics = await (await fetch(`${daemon.baseUrl}/metrics`)).text();
    return Number(/dynroute_rpc_requests_total\{procedure="dynroute.v1.MappingService\/CreateMapping",code="InvalidArgument"\} (\d+)/.exec(metrics)?.[1] ?? 0);
  };

  describe.each(protocols)("over %s", (protocol) => {
    it("answers invalid_argument after authentication, logged and counted", async () => {
      for (const token of [null, "wrong-token-wrong-token"]) {
        for (const json of [false, true]) {
          const res = await call({ protocol, token, json, message: json ? new TextEncoder().encode('{"tenantId": ') : TRUNCATED });
          expect(res.code, `${token} json=${json} ${res.message}`).toBe(Code.Unauthenticated);
        }
      }
      const before = await rejected();
      const cases: Array<Omit<RawCall, "path" | "protocol">> = [
        { message: TRUNCATED },
        { message: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]) },
        { message: Uint8Array.from([0x0b]) }, // a group start tag with no end
        { message: TRUNCATED, gzip: true },
        { message: new TextEncoder().encode('{"tenantId": '), json: true },
        { message: new TextEncoder().encode('{"mapping": {"backends": "x"}}'), json: true },
      ];
      for (const c of cases) {
        const res = await call({ protocol, ...c });
        expect(res.code, JSON.stringify(c)).toBe(Code.InvalidArgument);
        expect(res.status, JSON.stringify(c)).toBe(protocol === "connect" ? 400 : 200);
        expect(res.message, JSON.stringify(c)).toMatch(/^body: is not a valid dynroute\.v1\.CreateMappingRequest in the protobuf (binary|JSON) format/);
      }
      expect(await rejected()).toBe(before + cases.length);
      const logged = daemon.logs.map((l) => JSON.parse(l)).filter((l) => l.procedure === CREATE && l.code === "InvalidArgument" && /^body: is not a valid/.test(l.message));
      expect(logged.length).toBeGreaterThanOrEqual(cases.length);
    });

    it("leaves bodies over the limit to connect: resource_exhausted, not a 5xx", async () => {
      const big = toBinary(CreateMappingRequestSchema, create(CreateMappingRequestSchema, { tenantId: "big", mapping: { domain: "big.example.org", backends: ["http://a:1"], labels: { k: "v".repeat(70_000) } } }));
      expect((await call({ protocol, message: big })).code).toBe(Code.ResourceExhausted);
      expect((await call({ protocol, message: Uint8Array.from({ length: 70_000 }, () => 0xff) })).code).toBe(Code.ResourceExhausted);
    });

    it("still serves well-formed messages, compressed or not", async () => {
      const message = toBinary(CreateMappingRequestSchema, create(CreateMappingRequestSchema, { tenantId: "ok", mapping: { domain: `ok-${protocol}.example.org`, backends: ["http://a:1"] } }));
      expect((await call({ protocol, message })).code).toBe("ok");
      const again = await call({ protocol, message, gzip: true });
      expect(again.code).toBe(Code.AlreadyExists);
    });
  });

  it("answers a seeded fuzz of mutated binary messages on every protocol without a 5xx or internal error", async () => {
    let seed = 20261129;
    const rand = () => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    const valid = toBinary(
      CreateMappingRequestSchema,
      create(CreateMappingRequestSchema, { tenantId: "fuzz", mapping: { domain: "fuzz.example.org", backends: ["http://a:1", "https://b:2/p"], labels: { env: "prod" } } }),
    );
    const mutate = (): Uint8Array => {
      const bytes = Uint8Array.from(valid);
      switch (Math.floor(rand() * 4)) {
        case 0: // flip bits
          for (let i = 0; i < 1 + rand() * 4; i++) bytes[Math.floor(rand() * bytes.length)]! ^= 1 << Math.floor(rand() * 8);
          return bytes;
        case 1: // truncate
          return bytes.subarray(0, Math.floor(rand() * bytes.length));
        case 2: // random bytes
          return Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
        default: // splice random bytes in
          return Uint8Array.from([...bytes.subarray(0, 5), ...Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * 256)), ...bytes.subarray(5)]);
      }
    };
    const codes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const protocol = protocols[i % protocols.length]!;
      const res = await call({ protocol, message: mutate(), gzip: rand() < 0.2 });
      const name = res.code === "ok" ? "ok" : Code[res.code];
      codes.set(name, (codes.get(name) ?? 0) + 1);
      expect(res.status, `${protocol} #${i}`).toBeLessThan(500);
      expect([Code.Internal, Code.Unknown, Code.Unimplemented], `${protocol} #${i}: ${res.message}`).not.toContain(res.code);
    }
    expect(codes.get("InvalidArgument")).toBeGreaterThan(100);
    expect((await daemon.client("grpc").listMappings({ tenantId: "fuzz" })).mappings.length).toBeGreaterThanOrEqual(0);
  });
});
