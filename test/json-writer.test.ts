import { create, ScalarType, toJsonString, type DescField, type DescFile, type DescMessage, type Message } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { file_dynroute_v1_admin } from "../gen/dynroute/v1/admin_pb.js";
import { file_dynroute_v1_audit } from "../gen/dynroute/v1/audit_pb.js";
import { file_dynroute_v1_certificate } from "../gen/dynroute/v1/certificate_pb.js";
import { file_dynroute_v1_key } from "../gen/dynroute/v1/key_pb.js";
import { CertificateStatus_State, GetMappingResponseSchema, ListMappingsResponseSchema, MappingSchema, TlsMode, file_dynroute_v1_mapping } from "../gen/dynroute/v1/mapping_pb.js";
import { file_dynroute_v1_tenant } from "../gen/dynroute/v1/tenant_pb.js";
import { compileJsonWriter, jsonWriter, type JsonWriteOptions } from "../src/rpc/json-writer.js";

// The option sets the API writes with: REST (proto names, zero values too) and Connect (protobuf-es defaults).
const OPTION_SETS: JsonWriteOptions[] = [{ useProtoFieldName: true, alwaysEmitImplicit: true }, {}, { useProtoFieldName: true }, { alwaysEmitImplicit: true }];
const FILES: DescFile[] = [file_dynroute_v1_mapping, file_dynroute_v1_key, file_dynroute_v1_audit, file_dynroute_v1_tenant, file_dynroute_v1_certificate, file_dynroute_v1_admin];

/** A small deterministic PRNG (mulberry32), so a failure names a seed that reproduces it. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}
type Random = ReturnType<typeof random>;

const STRINGS = [
  "",
  "a",
  "get.bench.example",
  "xn--bcher-kva.example",
  "bücher.example",
  "日本語.例",
  "emoji 😀 and 👩‍👩‍👧",
  'quote " backslash \\ slash /',
  "controls \u0000\u0001\u001f\u007f tab\t nl\n cr\r",
  "line sep \u2028 para \u2029",
  "lone high \ud800 lone low \udc00",
  "<script>&amp;</script>",
  "x".repeat(300),
  "http://a:1",
  "https://instance-01.wmflabs.org:3000/path?x",
];
const MAP_KEYS = ["", "env", "team", "a.b", "Z-9", "0", "1", "10", "01", "-1", "4294967295", "4294967294", "ünï", "😀", "constructor", "toString", "hasOwnProperty"];

function randomString(r: Random): string {
  if (r.next() < 0.3) return Array.from({ length: r.int(12) }, () => String.fromCharCode(r.int(0x10000))).join("");
  return r.pick(STRINGS);
}

function randomScalar(type: ScalarType, r: Random): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(r);
    case ScalarType.BOOL:
      return r.next() < 0.5;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return r.pick([0, -0, 1, -1, 2147483647, -2147483648, r.int(1000) - 500]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return r.pick([0, 1, 4294967295, r.int(100000)]);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return r.pick([0, -0, 1.5, -2.25, Number.NaN, Infinity, -Infinity, 1e21, 5e-324, Number.MAX_VALUE, r.next()]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return r.pick([0n, 1n, -1n, 9223372036854775807n, -9223372036854775808n, BigInt(r.int(1e9))]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return r.pick([0n, 1n, 18446744073709551615n, 9007199254740993n, BigInt(r.int(1e9))]);
    case ScalarType.BYTES:
      return new Uint8Array(Array.from({ length: r.int(5) }, () => r.int(256)));
  }
}

function randomTimestamp(r: Random): Message {
  const seconds = r.pick([0n, 1n, -1n, 1_700_000_000n, -62135596800n, 253402300799n, BigInt(r.int(4e9)) - 2_000_000_000n, -62135596801n, 253402300800n]);
  const nanos = r.pick([0, 1, 10, 100, 1000, 10_000, 1_000_000, 999_999_999, 123_456_789, 123_456_700, 120_000_000, 500_000, r.int(1e9), -1, 1_000_000_000]);
  return create(TimestampSchema, { seconds, nanos });
}

function randomEnumValue(field: DescField & { enum: NonNullable<DescField["enum"]> }, r: Random): number {
  return r.next() < 0.85 ? r.pick(field.enum.values).number : r.pick([99, -1, 7]);
}

function randomValue(field: DescField, r: Random, depth: number): unknown {
  const element = (): unknown => {
    if (field.fieldKind === "scalar" || ((field.fieldKind === "list" || field.fieldKind === "map") && field.scalar !== undefined)) return randomScalar(field.scalar!, r);
    if (field.enum) return randomEnumValue(field as never, r);
    return randomMessage(field.message!, r, depth + 1);
  };
  switch (field.fieldKind) {
    case "list":
      return Array.from({ length: r.int(4) }, element);
    case "map":
      return Object.fromEntries(Array.from({ length: r.int(5) }, () => [r.next() < 0.8 ? r.pick(MAP_KEYS) : randomString(r), element()]));
    default:
      return element();
  }
}

/** A message of `desc` with random content: fields left unset, set to their zero value, or set to anything. */
function randomMessage(desc: DescMessage, r: Random, depth = 0): Message {
  if (desc.typeName === TimestampSchema.typeName) return randomTimestamp(r);
  const message = create(desc) as Message & Record<string, unknown>;
  if (depth > 3) return message;
  for (const field of desc.fields) {
    if (r.next() < 0.25) continue;
    const value = randomValue(field, r, depth);
    if (field.oneof) message[field.oneof.localName] = { case: field.localName, value };
    else message[field.localName] = value;
  }
  return message;
}

/** What protobuf-es writes, or the error it throws. */
function outcome(write: () => string): { json: string } | { error: string } {
  try {
    return { json: write() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

function allMessages(files: readonly DescFile[]): DescMessage[] {
  const out: DescMessage[] = [];
  const add = (m: DescMessage) => {
    out.push(m);
    m.nestedMessages.forEach(add);
  };
  for (const f of files) f.messages.forEach(add);
  return out;
}

describe("jsonWriter", () => {
  it("writes every API message byte for byte as protobuf-es's toJsonString, on random content", () => {
    let compared = 0;
    let compiled = 0;
    for (const desc of allMessages(FILES)) {
      for (const options of OPTION_SETS) {
        const write = jsonWriter(desc, options);
        const fast = compileJsonWriter(desc, options);
        for (let seed = 0; seed < 150; seed++) {
          const message = randomMessage(desc, random(seed * 7919 + desc.typeName.length));
          const expected = outcome(() => toJsonString(desc, message as never, options));
          const where = `${desc.typeName} seed ${seed} ${JSON.stringify(options)}`;
          expect(outcome(() => write(message)), where).toEqual(expected);
          // The compiled path on its own: whatever it writes is what protobuf-es writes.
          const written = fast?.(message);
          if (written !== undefined) {
            expect({ json: written }, where).toEqual(expected);
            compiled++;
          }
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(10_000);
    expect(compiled).toBeGreaterThan(compared / 4);
  });

  it("compiles the messages GetMapping, ListMappings and CreateMapping answer with", () => {
    for (const desc of [MappingSchema, GetMappingResponseSchema, ListMappingsResponseSchema]) {
      for (const options of OPTION_SETS) expect(compileJsonWriter(desc, options), desc.typeName).toBeDefined();
    }
  });

  it("writes mappings as protobuf-es does at their edges: empty, unicode, labels, TLS, certificate, large revisions, timestamps", () => {
    const mappings = [
      create(MappingSchema),
      create(MappingSchema, { domain: "bücher.example", backends: [], labels: {}, revision: 0n }),
      create(MappingSchema, {
        tenantId: "t-1",
        domain: "*.example.org",
        backends: ["http://a:1", "https://b.example:8443/p"],
        labels: { "10": "x", env: "prod", "2": "y", "team.a-b_c": "" },
        status: "disabled",
        tls: TlsMode.AUTOMATIC,
        createTime: create(TimestampSchema, { seconds: 1_700_000_000n, nanos: 0 }),
        updateTime: create(TimestampSchema, { seconds: 1_700_000_001n, nanos: 120_000_000 }),
        revision: 18446744073709551615n,
        live: true,
        certificateStatus: { state: CertificateStatus_State.FAILED, reason: 'rate "limited"\n', nextAttemptTime: create(TimestampSchema, { seconds: 253402300799n, nanos: 999_999_999 }) },
      }),
      create(MappingSchema, { tls: 42 as TlsMode, createTime: create(TimestampSchema, { seconds: -62135596800n, nanos: 1000 }) }),
    ];
    for (const options of OPTION_SETS) {
      const writeMapping = jsonWriter(MappingSchema, options);
      const writeGet = jsonWriter(GetMappingResponseSchema, options);
      const writeList = jsonWriter(ListMappingsResponseSchema, options);
      const compiled = compileJsonWriter(MappingSchema, options)!;
      for (const mapping of mappings) {
        expect(compiled(mapping)).toBe(toJsonString(MappingSchema, mapping, options));
        expect(writeMapping(mapping)).toBe(toJsonString(MappingSchema, mapping, options));
        const get = create(GetMappingResponseSchema, { mapping });
        expect(writeGet(get)).toBe(toJsonString(GetMappingResponseSchema, get, options));
      }
      for (const list of [create(ListMappingsResponseSchema), create(ListMappingsResponseSchema, { mappings, nextPageToken: "tok", totalSize: 0 })]) {
        expect(writeList(list)).toBe(toJsonString(ListMappingsResponseSchema, list, options));
      }
    }
  });

  it("leaves what it cannot write to protobuf-es, which answers or throws as before", () => {
    const write = jsonWriter(MappingSchema, { useProtoFieldName: true, alwaysEmitImplicit: true });
    const outOfRange = create(MappingSchema, { createTime: create(TimestampSchema, { seconds: 253402300800n }) });
    expect(outcome(() => write(outOfRange))).toEqual(outcome(() => toJsonString(MappingSchema, outOfRange, { useProtoFieldName: true, alwaysEmitImplicit: true })));
    expect(outcome(() => write(outOfRange))).toHaveProperty("error");
    const prototypeKey = create(MappingSchema, { labels: JSON.parse('{"__proto__": "x", "a": "b"}') as Record<string, string> });
    expect(write(prototypeKey)).toBe(toJsonString(MappingSchema, prototypeKey, { useProtoFieldName: true, alwaysEmitImplicit: true }));
    const wrongType = create(MappingSchema);
    (wrongType as unknown as Record<string, unknown>).revision = "12";
    expect(outcome(() => write(wrongType))).toEqual(outcome(() => toJsonString(MappingSchema, wrongType, { useProtoFieldName: true, alwaysEmitImplicit: true })));
    expect(write(undefined)).toBe(toJsonString(MappingSchema, undefined as never, { useProtoFieldName: true, alwaysEmitImplicit: true }));
  });
});
