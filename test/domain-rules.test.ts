import { describe, expect, it } from "vitest";
import { normalizeDomain } from "../src/domain/domain-name.js";
import { InputError } from "../src/domain/errors.js";
import { parseLabelSelector } from "../src/domain/label-selector.js";
import { decodePageToken, encodePageToken } from "../src/service/page-token.js";

describe("normalizeDomain", () => {
  it.each([
    ["something.wmflabs.org", "something.wmflabs.org"],
    ["Something.WMFLabs.ORG", "something.wmflabs.org"],
    ["example.org.", "example.org"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["*.Example.org", "*.example.org"],
    ["localhost", "localhost"],
    ["a-b.c1.example", "a-b.c1.example"],
  ])("%s → %s", (raw, want) => {
    expect(normalizeDomain(raw, "domain")).toBe(want);
  });

  it.each([
    ["", "domain.hostname"],
    [".", "domain.hostname"],
    ["a..b", "domain.hostname"],
    ["-a.example", "domain.hostname"],
    ["a-.example", "domain.hostname"],
    ["under_score.example", "domain.hostname"],
    ["example.org:8080", "domain.hostname"],
    ["http://example.org", "domain.hostname"],
    ["exa mple.org", "domain.hostname"],
    ["a*.example.org", "domain.wildcard"],
    ["*", "domain.wildcard"],
    ["foo.*.example.org", "domain.wildcard"],
    ["*.*.example.org", "domain.wildcard"],
    ["10.0.0.1", "domain.hostname"],
    // IPv4 forms that do not look like one (hex, short): URL host parsing reads them as addresses.
    ["1.0x7f", "domain.hostname"],
    ["a.0x1", "domain.hostname"],
    ["xn--zz.example", "domain.hostname"],
    [`${"a".repeat(64)}.example`, "domain.hostname"],
    [Array(64).fill("abc").join("."), "domain.hostname"],
  ])("rejects %j", (raw, ruleId) => {
    try {
      normalizeDomain(raw, "mapping.domain");
      expect.unreachable(`accepted ${raw}`);
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).violations[0]).toMatchObject({ path: [{ name: "mapping" }, { name: "domain" }], ruleId });
    }
  });

  it("accepts a 253-character name and rejects 255", () => {
    const name253 = `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`;
    expect(name253.length).toBe(253);
    expect(normalizeDomain(name253, "d")).toBe(name253);
    expect(() => normalizeDomain(`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}`, "d")).toThrow(InputError);
  });
});

describe("parseLabelSelector", () => {
  it("parses the Kubernetes syntax", () => {
    expect(parseLabelSelector("env=prod, team==web", "s")).toEqual([
      { key: "env", op: "in", values: ["prod"] },
      { key: "team", op: "in", values: ["web"] },
    ]);
    expect(parseLabelSelector("", "s")).toEqual([]);
    expect(parseLabelSelector("flag=", "s")).toEqual([{ key: "flag", op: "in", values: [""] }]);
    expect(parseLabelSelector("env!=prod,tier in (a, b,a),zone notin (x),canary,!legacy", "s")).toEqual([
      { key: "env", op: "notin", values: ["prod"] },
      { key: "tier", op: "in", values: ["a", "b"] },
      { key: "zone", op: "notin", values: ["x"] },
      { key: "canary", op: "exists" },
      { key: "legacy", op: "absent" },
    ]);
  });
  it.each(["=prod", "env=pr od", 'e"nv=x', "a=b,,c=d", "a,", "a in b", "a in (b", "a notin", "!", "a=b=c", "a in (b c)"])("rejects %j", (bad) => {
    expect(() => parseLabelSelector(bad, "label_selector")).toThrow(InputError);
  });
});

describe("page tokens", () => {
  it("round-trip with the same filters only", () => {
    const token = encodePageToken(12345678901234n, "f1");
    expect(decodePageToken(token, "f1", "page_token")).toBe(12345678901234n);
    expect(() => decodePageToken(token, "f2", "page_token")).toThrow(/other filters/);
    expect(() => decodePageToken("garbage!", "f1", "page_token")).toThrow(/not a page token/);
  });
});
