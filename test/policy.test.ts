import { create } from "@bufbuild/protobuf";
import { createValidator } from "@bufbuild/protovalidate";
import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { describe, expect, it } from "vitest";
import { MappingSchema } from "../gen/dynroute/v1/mapping_pb.js";
import { toConnectError } from "../src/rpc/error-interceptor.js";
import { validateMessage } from "../src/rpc/validation.js";
import { InputError, pathText } from "../src/domain/errors.js";
import { BackendPolicy, canonicalCidr } from "../src/policy/backend-policy.js";
import { canonicalBackends } from "../src/policy/backend-url.js";
import { ancestorClaims, inZones, registrableDomain } from "../src/policy/name-rules.js";

const defaults = { policy: new BackendPolicy({ deny: [], allow: [] }), pathless: false };

/** The violation a call throws, or undefined when it does not throw. */
function violation(fn: () => unknown): { field: string; ruleId: string; message: string } | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    const [v] = err.violations;
    return v && { field: pathText(v.path), ruleId: v.ruleId, message: v.message };
  }
}

describe("canonicalBackends", () => {
  it("accepts the seed's backends, IPv4 and IPv6 literals, paths, and lower-cases scheme and host", () => {
    expect(canonicalBackends(["http://instance-01:3000", "HTTPS://App.Internal/x/Y", "http://10.0.0.5:080", "http://[FD00::0:1]:8080"], "backends", defaults)).toEqual([
      "http://instance-01:3000",
      "https://app.internal/x/Y",
      "http://10.0.0.5:80",
      "http://[fd00::1]:8080",
    ]);
  });

  it.each([
    ["http://127.1", "backend.host"],
    ["http://2130706433", "backend.host"],
    ["http://0x7f000001", "backend.host"],
    ["http://0177.0.0.1", "backend.host"],
    ["http://10.0.0.5.", "backend.host"],
    ["http://app.example.org.", "backend.host"],
    ["http://1.2.3.256", "backend.host"],
    ["http://[fe80::1%25eth0]", "backend.host"],
    ["http://[::127.0.0.1]", "backend.host"],
    ["http://[64:ff9b::10.0.0.1]", "backend.host"],
    ["http://[::1", "backend.host"],
    ["http://ho st", "backend.host"],
    ["http://bücher.example", "backend.host"],
    ["http://:80", "backend.host"],
    ["http://host:0", "backend.port"],
    ["http://host:70000", "backend.port"],
    ["ftp://host", "backend.http_url"],
  ])("refuses %s naming the index", (bad, ruleId) => {
    expect(violation(() => canonicalBackends(["http://ok:1", bad], "mapping.backends", defaults))).toMatchObject({ field: "mapping.backends[1]", ruleId });
  });

  it("refuses duplicates that differ only in spelling", () => {
    expect(violation(() => canonicalBackends(["http://A:1", "HTTP://a:1"], "backends", defaults))).toMatchObject({ field: "backends[1]", ruleId: "backend.unique" });
  });

  it.each(["http://127.0.0.1:3000", "http://[::1]:3000", "http://169.254.169.254/latest", "http://[fe80::1]", "http://0.0.0.0", "http://224.0.0.1", "http://255.255.255.255", "http://[::ffff:127.0.0.1]", "http://[::]"])(
    "refuses %s by default, naming the setting that allows it",
    (bad) => {
      const v = violation(() => canonicalBackends([bad], "backends", defaults));
      expect(v).toMatchObject({ field: "backends[0]", ruleId: "backend.policy" });
      expect(v?.message).toMatch(/DYNROUTE_BACKEND_ALLOW=/);
    },
  );

  it("refuses any path, even /, when backends must be pathless (compatibility layout)", () => {
    const pathless = { ...defaults, pathless: true };
    expect(canonicalBackends(["http://a:1", "https://[fd00::1]:8443"], "backends", pathless)).toEqual(["http://a:1", "https://[fd00::1]:8443"]);
    for (const bad of ["http://a:1/", "http://a:1/app"]) {
      expect(violation(() => canonicalBackends([bad], "backends", pathless))).toMatchObject({ field: "backends[0]", ruleId: "backend.compat_path", message: expect.stringMatching(/must not have a path/) });
    }
  });

  it.each(["http://100.100.100.200/latest/meta-data", "http://[fd00:ec2::254]/", "http://168.63.129.16", "http://[fd20:ce::254]", "http://192.0.0.192", "http://[::7f00:1]", "http://[::ffff:0:7f00:1]", "http://[64:ff9b::a9fe:a9fe]", "http://[2002:7f00:1::]", "http://[fec0::1]"])(
    "refuses the metadata address or IPv4-carrying form %s",
    (bad) => {
      expect(violation(() => canonicalBackends([bad], "backends", defaults))).toMatchObject({ ruleId: "backend.policy" });
    },
  );

  it("keeps private ranges allowed", () => {
    expect(canonicalBackends(["http://10.1.2.3", "http://192.168.0.9:81", "http://172.16.0.1", "http://[fd12::5]"], "backends", defaults)).toHaveLength(4);
  });
});

describe("BackendPolicy", () => {
  it("lets DYNROUTE_BACKEND_ALLOW through what the defaults deny, and DYNROUTE_BACKEND_DENY beat both", () => {
    const policy = new BackendPolicy({ deny: ["127.0.0.9", "10.0.0.0/24"], allow: ["127.0.0.0/8", "::1"] });
    expect(policy.refusal("127.0.0.1")).toBeUndefined();
    expect(policy.refusal("::1")).toBeUndefined();
    expect(policy.refusal("127.0.0.9")).toMatch(/DYNROUTE_BACKEND_DENY/);
    expect(policy.refusal("10.0.0.77")).toMatch(/10\.0\.0\.0\/24, which DYNROUTE_BACKEND_DENY refuses/);
    expect(policy.refusal("10.0.1.1")).toBeUndefined();
    expect(policy.refusal("169.254.169.254")).toMatch(/link-local/);
  });

  it("serialises ordered rules for routers: operator denials, allowances, defaults", () => {
    const rules = new BackendPolicy({ deny: ["10.9.0.0/16"], allow: ["127.0.0.0/8"] }).toJSON().rules;
    expect(rules.slice(0, 2)).toEqual([
      { cidr: "10.9.0.0/16", action: "deny", reason: "DYNROUTE_BACKEND_DENY" },
      { cidr: "127.0.0.0/8", action: "allow", reason: "DYNROUTE_BACKEND_ALLOW" },
    ]);
    expect(rules.map((r) => r.cidr)).toEqual(expect.arrayContaining(["127.0.0.0/8", "169.254.0.0/16", "::1/128", "fe80::/10"]));
  });

  it("canonicalises CIDRs and refuses what is not one", () => {
    expect(canonicalCidr("10.1.2.3/8")).toBe("10.0.0.0/8");
    expect(canonicalCidr("::1")).toBe("::1/128");
    expect(canonicalCidr("192.168.1.1")).toBe("192.168.1.1/32");
    expect(() => canonicalCidr("10.0.0.0/33")).toThrow(/not a CIDR/);
    expect(() => canonicalCidr("example.org")).toThrow(/not a CIDR/);
  });
});

describe("name rules", () => {
  it.each(["com", "co.uk", "*.com", "*.co.uk", "xn--p1ai", "*.xn--p1ai", "github.io", "*.github.io"])("refuse the public suffix %s", (name) => {
    expect(violation(() => registrableDomain(name, "domain"))).toMatchObject({ ruleId: "domain.public_suffix" });
  });

  it("refuses single labels", () => {
    expect(violation(() => registrableDomain("localhost", "domain"))).toMatchObject({ ruleId: "domain.single_label" });
  });

  it.each([
    ["a.example.org", "example.org"],
    ["*.a.example.org", "example.org"],
    ["*.example.org", "example.org"],
    ["x.a.co.uk", "a.co.uk"],
    ["*.me.github.io", "me.github.io"],
  ])("locate %s in %s", (name, registrable) => {
    expect(registrableDomain(name, "domain")).toBe(registrable);
  });

  it("list the names whose owner owns a name too, nearest first", () => {
    expect(ancestorClaims("a.b.example.org")).toEqual(["*.a.b.example.org", "*.b.example.org", "b.example.org", "*.example.org", "example.org", "*.org", "org"]);
    expect(ancestorClaims("*.b.example.org")).toEqual(["b.example.org", "*.example.org", "example.org", "*.org", "org"]);
  });

  it("match zones by whole labels", () => {
    expect(inZones("a.vms.example.org", ["vms.example.org"])).toBe(true);
    expect(inZones("*.vms.example.org", ["vms.example.org"])).toBe(true);
    expect(inZones("vms.example.org", ["vms.example.org"])).toBe(true);
    expect(inZones("xvms.example.org", ["vms.example.org"])).toBe(false);
    expect(inZones("anything.example", [])).toBe(true);
  });
});

describe("validation paths", () => {
  it("keep map keys structured, dots and all, on the wire", () => {
    const bad = create(MappingSchema, { domain: "a.example.org", backends: ["http://a:1"], labels: { "bad key.with.dots": "x" } });
    let caught: unknown;
    try {
      validateMessage(createValidator(), MappingSchema, bad, "mapping");
    } catch (err) {
      caught = err;
    }
    expect((caught as InputError).violations[0]!.path).toEqual([{ name: "mapping" }, { name: "labels", key: "bad key.with.dots" }]);
    const [details] = toConnectError(caught).findDetails(ViolationsSchema);
    const elements = details!.violations[0]!.field!.elements;
    expect(elements.map((e) => [e.fieldName, e.subscript.case, String(e.subscript.value ?? "")])).toEqual([
      ["mapping", undefined, ""],
      ["labels", "stringKey", "bad key.with.dots"],
    ]);
  });
});
