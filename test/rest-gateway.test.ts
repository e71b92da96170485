import http2 from "node:http2";
import net from "node:net";
import { toJson } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MappingSchema } from "../gen/dynroute/v1/mapping_pb.js";
import { freshStore, startTestDaemon, stores, type TestDaemon } from "./harness/daemon.js";
import { rest, type RestOptions } from "./harness/rest.js";

describe.each(stores)("on the %s store", (kind) => {
  let daemon: TestDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(await freshStore(kind));
    await daemon.store.ready;
  });
  afterAll(() => daemon.close());

  const call = (method: string, path: string, opts?: RestOptions) => rest(daemon.baseUrl, method, path, opts);
  const JSON_TYPE = "application/json; charset=utf-8";

  describe("the seed's API, followed literally", () => {
    it("creates, gets, lists, updates with PUT, renames with POST and deletes", async () => {
      const seedBody = { domain: "something.wmflabs.org", backends: ["http://instance-01:3000", "http://instance-02:4000"] };

      const created = await call("PUT", "/v1/tools/mapping", { body: seedBody });
      expect(created.status).toBe(201);
      expect(created.headers.get("content-type")).toBe(JSON_TYPE);
      expect(created.headers.get("location")).toBe("/v1/tools/mapping/something.wmflabs.org");
      expect(created.json).toMatchObject({ tenant_id: "tools", ...seedBody, labels: {} });
      expect(created.headers.get("etag")).toBe(`"${created.json.revision}"`);

      const got = await call("GET", created.headers.get("location")!);
      expect(got.status).toBe(200);
      expect({ ...got.json, live: false }).toEqual(created.json);

      const listed = await call("GET", "/v1/tools/mapping");
      expect(listed.status).toBe(200);
      expect(listed.json.mappings.map((m: { domain: string }) => m.domain)).toEqual(["something.wmflabs.org"]);

      // "first do a GET, modify the JSON, and then do a POST": the GET's own output fields go back unchanged.
      const edited = { ...got.json, backends: ["http://instance-03:3000"] };
      const put = await call("PUT", "/v1/tools/mapping/something.wmflabs.org", { body: edited });
      expect(put.status).toBe(200);
      expect(put.json).toMatchObject({ domain: "something.wmflabs.org", backends: ["http://instance-03:3000"] });
      expect(BigInt(put.json.revision)).toBeGreaterThan(BigInt(created.json.revision));

      const renamed = await call("POST", "/v1/tools/mapping/something.wmflabs.org", { body: { ...put.json, domain: "renamed.wmflabs.org" } });
      expect(renamed.status).toBe(200);
      expect(renamed.json.domain).toBe("renamed.wmflabs.org");
      expect((await call("GET", "/v1/tools/mapping/something.wmflabs.org")).status).toBe(404);

      const deleted = await call("DELETE", "/v1/tools/mapping/renamed.wmflabs.org");
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe("");
      const gone = await call("GET", "/v1/tools/mapping/renamed.wmflabs.org");
      expect(gone.status).toBe(404);
      expect(gone.json).toMatchObject({ code: "not_found", message: expect.stringContaining("renamed.wmflabs.org") });
    });

    it("lists 50 at a time in insert order, pages with offset and limit, and with the cursor", async () => {
      const names = Array.from({ length: 60 }, (_, i) => `p${String(i).padStart(2, "0")}.list.example`);
      for (const domain of names) expect((await call("PUT", "/v1/lister/mapping", { body: { domain, backends: ["http://a:1"] } })).status).toBe(201);

      const first = await call("GET", "/v1/lister/mapping");
      expect(first.json.mappings.map((m: { domain: string }) => m.domain)).toEqual(names.slice(0, 50));
      expect(first.json).not.toHaveProperty("total_size");

      const byOffset = await call("GET", "/v1/lister/mapping?offset=55&limit=3");
      expect(byOffset.json.mappings.map((m: { domain: string }) => m.domain)).toEqual(names.slice(55, 58));

      const next = await call("GET", `/v1/lister/mapping?page_token=${encodeURIComponent(first.json.next_page_token)}&total=true`);
      expect(next.json.mappings.map((m: { domain: string }) => m.domain)).toEqual(names.slice(50));
      expect(next.json).toMatchObject({ next_page_token: "", total_size: 60 });

      const filtered = await call("GET", "/v1/lister/mapping?domain_suffix=list.example&limit=2&label_selector=");
      expect(filtered.json.mappings).toHaveLength(2);
      const searched = await call("GET", `/v1/lister/mapping?q=P5&label_selector=${encodeURIComponent("missing,x notin (y)")}&total=true`);
      expect(searched.json).toMatchObject({ mappings: [], total_size: 0 });
      const bySearch = await call("GET", `/v1/lister/mapping?q=P5&label_selector=${encodeURIComponent("!missing")}&total=true`);
      expect(bySearch.json.mappings.map((m: { domain: string }) => m.domain)).toEqual(names.slice(50, 60));
      expect((await call("GET", `/v1/lister/mapping?label_selector=${encodeURIComponent("a in b")}`)).status).toBe(400);
      // The JSON field name works as a query parameter too.
      expect((await call("GET", "/v1/lister/mapping?domainSuffix=nothing.example")).json.mappings).toEqual([]);
    });
  });

  describe("partial update and optimistic concurrency", () => {
    it("PATCH changes only the fields the body names", async () => {
      const created = (await call("PUT", "/v1/patch/mapping", { body: { domain: "patch.example.org", backends: ["http://a:1"], labels: { env: "prod" } } })).json;
      const labels = await call("PATCH", "/v1/patch/mapping/patch.example.org", { body: { labels: { team: "web" } } });
      expect(labels.status).toBe(200);
      expect(labels.json).toMatchObject({ backends: ["http://a:1"], labels: { team: "web" } });
      const backends = await call("PATCH", "/v1/patch/mapping/patch.example.org", { body: { backends: ["http://b:2"], revision: labels.json.revision, live: true } });
      expect(backends.json).toMatchObject({ backends: ["http://b:2"], labels: { team: "web" }, create_time: created.create_time });
      const explicit = await call("PATCH", "/v1/patch/mapping/patch.example.org?update_mask=labels", { body: { labels: {}, backends: ["http://ignored:1"] } });
      expect(explicit.json).toMatchObject({ backends: ["http://b:2"], labels: {} });
      const invalid = await call("PATCH", "/v1/patch/mapping/patch.example.org", { body: { backends: [] } });
      expect(invalid.status).toBe(400);
      expect(invalid.json.message).toContain("mapping.backends");
    });

    it("sends ETags, answers 412 for a stale If-Match and 304 for a current If-None-Match", async () => {
      const created = await call("PUT", "/v1/etag/mapping", { body: { domain: "etag.example.org", backends: ["http://a:1"] } });
      const etag = created.headers.get("etag")!;
      expect(etag).toMatch(/^"\d+"$/);

      const notModified = await call("GET", "/v1/etag/mapping/etag.example.org", { headers: { "if-none-match": etag } });
      expect(notModified.status).toBe(304);
      expect(notModified.headers.get("etag")).toBe(etag);
      expect((await call("GET", "/v1/etag/mapping/etag.example.org", { headers: { "if-none-match": '"1"' } })).status).toBe(200);

      const updated = await call("PUT", "/v1/etag/mapping/etag.example.org", { body: { backends: ["http://b:2"] }, headers: { "if-match": etag } });
      expect(updated.status).toBe(200);
      const newEtag = updated.headers.get("etag")!;
      expect(newEtag).not.toBe(etag);

      for (const method of ["PUT", "POST", "PATCH"]) {
        const stale = await call(method, "/v1/etag/mapping/etag.example.org", { body: { backends: ["http://c:3"] }, headers: { "if-match": etag } });
        expect(stale.status, method).toBe(412);
        expect(stale.json).toMatchObject({ code: "failed_precondition" });
      }
      const staleDelete = await call("DELETE", "/v1/etag/mapping/etag.example.org", { headers: { "if-match": etag } });
      expect(staleDelete.status).toBe(412);
      expect((await call("GET", "/v1/etag/mapping/etag.example.org")).json.backends).toEqual(["http://b:2"]);

      for (const bad of ["yesterday", '"1', 'W/ "1"', '"1" "2"', '"a"b', ","]) {
        const malformed = await call("DELETE", "/v1/etag/mapping/etag.example.org", { headers: { "if-match": bad } });
        expect(malformed.status, bad).toBe(400);
        expect(malformed.json.message, bad).toContain("If-Match");
      }
      expect((await call("DELETE", "/v1/etag/mapping/etag.example.org", { headers: { "if-match": newEtag } })).status).toBe(204);
    });

    it("follows RFC 9110: well-formed tags that do not match are 412, lists and * work, If-Match compares strongly", async () => {
      const created = await call("PUT", "/v1/cond/mapping", { body: { domain: "cond.example.org", backends: ["http://a:1"] } });
      const etag = created.headers.get("etag")!;
      const path = "/v1/cond/mapping/cond.example.org";
      const put = (ifMatch: string, backend: string) => call("PUT", path, { body: { backends: [backend] }, headers: { "if-match": ifMatch } });

      // Tags this API never issued (a cache's, an older client's), weak tags, and a tag with a comma inside: all well-formed, none matches.
      for (const tag of ['"stale-etag-value"', `W/${etag}`, '"1,2"', '""', '"0"', '"99999999999999999999999"', `W/${etag}, "nope"`]) {
        const res = await put(tag, "http://x:1");
        expect(res.status, tag).toBe(412);
        expect(res.json, tag).toMatchObject({ code: "failed_precondition" });
      }
      expect((await call("GET", path)).json.backends).toEqual(["http://a:1"]);

      const listed = await put(`"stale", "1", ${etag}`, "http://b:1");
      expect(listed.status).toBe(200);
      const etag2 = listed.headers.get("etag")!;
      const star = await put("*", "http://c:1");
      expect(star.status).toBe(200);
      const etag3 = star.headers.get("etag")!;
      expect((await put(`${etag}, ${etag2}`, "http://d:1")).status).toBe(412);
      // Only the newest revision listed can be current (a mapping's revisions rise); a newer one from elsewhere makes the list stale.
      expect((await put(`${etag3}, "${BigInt(etag3.slice(1, -1)) + 1000n}"`, "http://d:1")).status).toBe(412);
      expect((await call("GET", path)).headers.get("etag")).toBe(etag3);

      // If-None-Match compares weakly: any listed tag naming the current revision (or *) is 304.
      for (const tag of [etag3, `W/${etag3}`, `"x", ${etag3}`, "*"]) expect((await call("GET", path, { headers: { "if-none-match": tag } })).status, tag).toBe(304);
      expect((await call("GET", path, { headers: { "if-none-match": `${etag}, W/${etag2}` } })).status).toBe(200);
      expect((await call("GET", path, { headers: { "if-none-match": "nonsense" } })).status).toBe(400);

      // If-None-Match: * on a write: only where there is nothing yet. Tags on a write are refused, not ignored.
      const inm = (method: string, p: string, body?: unknown) => call(method, p, { ...(body ? { body } : {}), headers: { "if-none-match": "*" } });
      expect((await inm("PUT", path, { backends: ["http://x:1"] })).status).toBe(412);
      expect((await inm("DELETE", path)).status).toBe(412);
      expect((await inm("PUT", "/v1/cond/mapping/missing.example.org", { backends: ["http://x:1"] })).status).toBe(404);
      const taken = await inm("PUT", "/v1/cond/mapping", { domain: "cond.example.org", backends: ["http://x:1"] });
      expect(taken.status).toBe(412);
      expect(taken.json.code).toBe("failed_precondition");
      expect((await inm("PUT", "/v1/cond/mapping", { domain: "new.cond.example.org", backends: ["http://x:1"] })).status).toBe(201);
      const tagged = await call("PUT", path, { body: { backends: ["http://x:1"] }, headers: { "if-none-match": etag } });
      expect(tagged.status).toBe(400);
      expect(tagged.json.message).toMatch(/^If-None-Match: on a write takes only \*/);
      expect((await call("GET", path)).headers.get("etag")).toBe(etag3);

      // If-Match: * needs a current mapping; otherwise a missing one is 404 as without a condition.
      const missing = await call("DELETE", "/v1/cond/mapping/missing.example.org", { headers: { "if-match": "*" } });
      expect(missing.status).toBe(412);
      expect(missing.json.code).toBe("failed_precondition");
      expect((await call("DELETE", "/v1/cond/mapping/missing.example.org", { headers: { "if-match": '"5"' } })).status).toBe(404);
      expect((await call("DELETE", path, { headers: { "if-match": "*" } })).status).toBe(204);
    });

    it("takes the revision of a body read earlier as a precondition (GET, modify, PUT or POST back); 412 when stale", async () => {
      const path = "/v1/bodyrev/mapping/bodyrev.example.org";
      await call("PUT", "/v1/bodyrev/mapping", { body: { domain: "bodyrev.example.org", backends: ["http://a:1"] } });
      const alice = (await call("GET", path)).json;
      const bob = (await call("GET", path)).json;
      const first = await call("POST", path, { body: { ...alice, backends: ["http://alice:1"] } });
      expect(first.status).toBe(200);
      for (const method of ["POST", "PUT", "PATCH"]) {
        const lost = await call(method, path, { body: { ...bob, backends: ["http://bob:1"] } });
        expect(lost.status, method).toBe(412);
        expect(lost.json, method).toMatchObject({ code: "failed_precondition", message: expect.stringContaining(`not ${bob.revision}`) });
      }
      expect((await call("GET", path)).json.backends).toEqual(["http://alice:1"]);
      // Without a revision (or with 0) the update is unconditional, as before.
      expect((await call("POST", path, { body: { backends: ["http://c:1"] } })).status).toBe(200);
      expect((await call("POST", path, { body: { backends: ["http://d:1"], revision: "0" } })).status).toBe(200);
      // A body revision and If-Match that disagree can never both hold.
      const current = (await call("GET", path)).json;
      const both = await call("PUT", path, { body: { ...current, backends: ["http://e:1"] }, headers: { "if-match": `"${bob.revision}"` } });
      expect(both.status).toBe(412);
    });

    it("PATCH with application/merge-patch+json merges labels (null removes one) and replaces other fields", async () => {
      const path = "/v1/merge/mapping/merge.example.org";
      await call("PUT", "/v1/merge/mapping", { body: { domain: "merge.example.org", backends: ["http://a:1"], labels: { a: "1", b: "2", "Team.Name": "web" } } });
      const merge = (body: unknown, headers: Record<string, string> = {}) => call("PATCH", path, { body, headers: { "content-type": "application/merge-patch+json", ...headers } });

      const merged = await merge({ labels: { c: "3", b: null, "Team.Name": "ops" } });
      expect(merged.status).toBe(200);
      expect(merged.json).toMatchObject({ backends: ["http://a:1"], labels: { a: "1", c: "3", "Team.Name": "ops" } });
      expect(merged.json.labels).not.toHaveProperty("b");

      const replaced = await merge({ backends: ["http://b:1", "http://c:1"], labels: { zzz: null } });
      expect(replaced.json).toMatchObject({ backends: ["http://b:1", "http://c:1"], labels: { a: "1", c: "3", "Team.Name": "ops" } });
      const cleared = await merge({ labels: null });
      expect(cleared.json.labels).toEqual({});

      for (const [body, message] of [
        [{ backends: null }, /^mapping\.backends: is required/],
        [{ domain: null }, /^mapping\.domain: is required/],
        [[{ op: "add" }], /merge patch must be a JSON object/],
        [{ labels: { "bad key": "x" } }, /^mapping\.labels/],
      ] as const) {
        const res = await merge(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.json.message, JSON.stringify(body)).toMatch(message);
      }
      const withMask = await call("PATCH", `${path}?update_mask=labels`, { body: { labels: {} }, headers: { "content-type": "application/merge-patch+json" } });
      expect(withMask.status).toBe(400);
      expect(withMask.json.message).toMatch(/^update_mask:/);
      expect((await call("GET", path)).json).toMatchObject({ backends: ["http://b:1", "http://c:1"], labels: {} });

      // A merge patch that carries the revision read earlier is conditional too.
      const stale = await merge({ labels: { x: "1" }, revision: merged.json.revision });
      expect(stale.status).toBe(412);
    });

    it("answers an empty PATCH with 'nothing to change', whatever the content type", async () => {
      await call("PUT", "/v1/empty/mapping", { body: { domain: "empty.example.org", backends: ["http://a:1"] } });
      for (const type of ["application/json", "application/merge-patch+json"]) {
        for (const body of [{}, { revision: "1", live: true }]) {
          const res = await call("PATCH", "/v1/empty/mapping/empty.example.org", { body, headers: { "content-type": type } });
          expect(res.status, type).toBe(400);
          expect(res.json.message, type).toMatch(/^mapping: names nothing to change/);
          expect(res.json.message, type).not.toContain("backends");
        }
      }
      // Plain JSON keeps field replacement: labels named are replaced whole.
      await call("PATCH", "/v1/empty/mapping/empty.example.org", { body: { labels: { a: "1", b: "2" } } });
      const replaced = await call("PATCH", "/v1/empty/mapping/empty.example.org", { body: { labels: { c: "3" } } });
      expect(replaced.json.labels).toEqual({ c: "3" });
    });

    it("takes the same check from RPC clients as expected_revision", async () => {
      const created = (await call("PUT", "/v1/etag/mapping", { body: { domain: "rev.example.org", backends: ["http://a:1"] } })).json;
      const client = daemon.client("connect");
      await expect(client.deleteMapping({ tenantId: "etag", domain: "rev.example.org", expectedRevision: BigInt(created.revision) + 1n })).rejects.toThrow(/revision/);
      await client.deleteMapping({ tenantId: "etag", domain: "rev.example.org", expectedRevision: BigInt(created.revision) });
    });
  });

  describe("HTTP hygiene", () => {
    it("answers every bad request with a JSON error, the right status, and no change", async () => {
      const create = (body: unknown, headers?: Record<string, string>) => call("PUT", "/v1/bad/mapping", { body, ...(headers ? { headers } : {}) });
      const cases: Array<[string, Promise<Awaited<ReturnType<typeof call>>>, number, string, RegExp]> = [
        ["malformed JSON", create('{"domain": '), 400, "invalid_argument", /not valid JSON/],
        ["wrong type", create({ domain: "bad.example.org", backends: "http://a:1" }), 400, "invalid_argument", /backends.*expected Array/],
        ["unknown field", create({ domain: "bad.example.org", backends: ["http://a:1"], color: "red" }), 400, "invalid_argument", /"color" is unknown/],
        ["not an object", create("[1,2]"), 400, "invalid_argument", /Mapping/],
        ["no body", call("PUT", "/v1/bad/mapping", { headers: { "content-type": "application/json" } }), 400, "invalid_argument", /^mapping: value is required/],
        ["invalid domain", create({ domain: "bad_domain.example.org", backends: ["http://a:1"] }), 400, "invalid_argument", /^mapping\.domain:/],
        ["wildcard inside", create({ domain: "a.*.example.org", backends: ["http://a:1"] }), 400, "invalid_argument", /wildcard/],
        ["bad backend", create({ domain: "bad.example.org", backends: ["http://user@a:1"] }), 400, "invalid_argument", /^mapping\.backends\[0\]:/],
        ["no backends", create({ domain: "bad.example.org", backends: [] }), 400, "invalid_argument", /^mapping\.backends:/],
        ["other tenant in body", create({ tenant_id: "someone", domain: "bad.example.org", backends: ["http://a:1"] }), 400, "invalid_argument", /tenant_id/],
        ["form content type", create('{"domain":"bad.example.org","backends":["http://a:1"]}', { "content-type": "application/x-www-form-urlencoded" }), 415, "invalid_argument", /application\/json/],
        ["body too large", create({ domain: "bad.example.org", backends: ["http://a:1"], labels: { k: "v".repeat(70_000) } }), 413, "resource_exhausted", /larger than 65536/],
        ["bad query value", call("GET", "/v1/bad/mapping?limit=ten"), 400, "invalid_argument", /limit/],
        ["limit out of range", call("GET", "/v1/bad/mapping?limit=501"), 400, "invalid_argument", /^limit:/],
        ["unknown query parameter", call("GET", "/v1/bad/mapping?color=red"), 400, "invalid_argument", /^color: is not a query parameter/],
        ["query sets a path field", call("GET", "/v1/bad/mapping?tenant_id=x"), 400, "invalid_argument", /^tenant_id:/],
        ["bad percent-encoding", call("GET", "/v1/bad/mapping/%E0%A4%A"), 400, "invalid_argument", /percent-encoding/],
        ["unknown path", call("GET", "/v1/bad/mappings"), 404, "not_found", /no such route/],
        ["unknown version", call("GET", "/v2/bad/mapping"), 404, "not_found", /no such route/],
        ["missing mapping", call("GET", "/v1/bad/mapping/nothing.example.org"), 404, "not_found", /nothing\.example\.org/],
      ];
      for (const [what, answer, status, code, message] of cases) {
        const res = await answer;
        expect(res.status, what).toBe(status);
        expect(res.headers.get("content-type"), what).toBe(JSON_TYPE);
        expect(res.json, what).toMatchObject({ code, message: expect.stringMatching(message), details: expect.any(Array) });
        expect(res.text, what).not.toMatch(/at .*\.(ts|js):\d+/);
      }
      expect((await call("GET", "/v1/bad/mapping")).json.mappings).toEqual([]);
    });

    it("answers requests Node's HTTP parser rejects with the same JSON error shape, then closes", async () => {
      const raw = (request: string) =>
        new Promise<string>((resolve, reject) => {
          const socket = net.connect(daemon.app.listener.address.port, "127.0.0.1");
          let text = "";
          socket.on("data", (d) => (text += d));
          socket.on("end", () => resolve(text));
          socket.on("error", reject);
          socket.end(request);
        });
      const cases: Array<[string, string, number, string]> = [
        ["bad request line", "GARBAGE\r\n\r\n", 400, "invalid_argument"],
        ["headers over 16 KB", `GET /v1/x/mapping HTTP/1.1\r\nhost: a\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`, 431, "resource_exhausted"],
        ["Content-Length and Transfer-Encoding", "PUT /v1/x/mapping HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400, "invalid_argument"],
        ["bad header name", "GET / HTTP/1.1\r\nbad header: x\r\n\r\n", 400, "invalid_argument"],
      ];
      for (const [what, request, status, code] of cases) {
        const answer = await raw(request);
        const [head, body] = answer.split("\r\n\r\n");
        expect(head, what).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
        expect(head!.toLowerCase(), what).toContain("content-type: application/json; charset=utf-8");
        expect(JSON.parse(body!), what).toMatchObject({ code, message: expect.any(String), details: [] });
      }
    });

    it("names the broken rule in the details", async () => {
      const res = await call("PUT", "/v1/bad/mapping", { body: { domain: "bad.example.org", backends: ["ftp://a"] } });
      expect(res.json.details).toEqual([
        {
          "@type": "type.googleapis.com/buf.validate.Violations",
          violations: [expect.objectContaining({ rule_id: "backend.http_url", field: { elements: [{ field_name: "mapping" }, { field_name: "backends", index: "0" }] } })],
        },
      ]);
    });

    it("answers 405 with Allow, OPTIONS with Allow, and HEAD without a body", async () => {
      const wrong = await call("DELETE", "/v1/h/mapping");
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get("allow")).toBe("PUT, GET, HEAD, OPTIONS");
      expect(wrong.json).toMatchObject({ code: "unimplemented", message: expect.stringContaining("DELETE") });

      const options = await call("OPTIONS", "/v1/h/mapping/x.example.org");
      expect(options.status).toBe(204);
      expect(options.headers.get("allow")).toBe("GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS");

      await call("PUT", "/v1/h/mapping", { body: { domain: "head.example.org", backends: ["http://a:1"] } });
      const head = await call("HEAD", "/v1/h/mapping/head.example.org");
      expect(head.status).toBe(200);
      expect(head.text).toBe("");
      expect(head.headers.get("etag")).toMatch(/^"\d+"$/);
      expect((await call("HEAD", "/v1/h/mapping/missing.example.org")).status).toBe(404);
    });

    it("accepts the seed's lowercase names, proto names and JSON names; answers with proto names", async () => {
      const res = await call("PUT", "/v1/names/mapping", { body: { tenantId: "names", domain: "names.example.org", backends: ["http://a:1"] } });
      expect(res.status).toBe(201);
      expect(Object.keys(res.json).sort()).toEqual(["backends", "create_time", "domain", "labels", "live", "revision", "status", "tenant_id", "tls", "update_time"]);
    });

    it("normalises the domain in the path like the API does", async () => {
      await call("PUT", "/v1/norm/mapping", { body: { domain: "Bücher.Example.", backends: ["http://a:1"] } });
      const res = await call("GET", `/v1/norm/mapping/${encodeURIComponent("BÜCHER.example")}`);
      expect(res.status).toBe(200);
      expect(res.json.domain).toBe("xn--bcher-kva.example");
      const wildcard = await call("PUT", "/v1/norm/mapping", { body: { domain: "*.wild.example", backends: ["http://a:1"] } });
      expect(wildcard.headers.get("location")).toBe("/v1/norm/mapping/*.wild.example");
      expect((await call("GET", "/v1/norm/mapping/*.wild.example")).status).toBe(200);
    });

    it("keeps tenants apart", async () => {
      await call("PUT", "/v1/owner/mapping", { body: { domain: "owned.example.org", backends: ["http://a:1"] } });
      expect((await call("GET", "/v1/intruder/mapping/owned.example.org")).status).toBe(404);
      expect((await call("PUT", "/v1/intruder/mapping/owned.example.org", { body: { backends: ["http://evil:1"] } })).status).toBe(404);
      expect((await call("DELETE", "/v1/intruder/mapping/owned.example.org")).status).toBe(404);
      const taken = await call("PUT", "/v1/intruder/mapping", { body: { domain: "owned.example.org", backends: ["http://evil:1"] } });
      expect(taken.status).toBe(409);
      expect(taken.text).not.toContain("owner");
      expect((await call("GET", "/v1/owner/mapping/owned.example.org")).json.backends).toEqual(["http://a:1"]);
    });
  });

  describe("auth and logging on REST", () => {
    it("answers 401 on every route without a valid token, before reading the body", async () => {
      for (const token of [null, "wrong-token-wrong-token"]) {
        const answers = await Promise.all([
          call("PUT", "/v1/auth/mapping", { token, body: '{"not json' }),
          call("GET", "/v1/auth/mapping", { token }),
          call("GET", "/v1/auth/mapping?limit=nonsense", { token }),
          call("GET", "/v1/auth/mapping/x.example.org", { token }),
          call("PUT", "/v1/auth/mapping/x.example.org", { token, body: { backends: [] } }),
          call("POST", "/v1/auth/mapping/x.example.org", { token, body: {} }),
          call("PATCH", "/v1/auth/mapping/x.example.org", { token, body: {} }),
          call("DELETE", "/v1/auth/mapping/x.example.org", { token, headers: { "if-match": "garbage" } }),
          call("POST", "/v1/admin/reconcile", { token, body: {} }),
        ]);
        for (const a of answers) expect(a).toMatchObject({ status: 401, json: { code: "unauthenticated" } });
      }
      const apiKey = await call("GET", "/v1/auth/mapping", { token: null, headers: { "x-api-key": "test-admin-token-0123456789" } });
      expect(apiKey.status).toBe(200);
    });

    it("logs one line per call with the procedure, the path and the request id it echoes", async () => {
      const res = await call("GET", "/v1/logged/mapping/x.example.org", { headers: { "x-request-id": "rest-log-check-1" } });
      expect(res.headers.get("x-request-id")).toBe("rest-log-check-1");
      const line = daemon.logs.map((l) => JSON.parse(l)).find((l) => l.requestId === "rest-log-check-1");
      expect(line).toMatchObject({ procedure: "/dynroute.v1.MappingService/GetMapping", path: "/v1/logged/mapping/x.example.org", method: "GET", code: "NotFound" });
    });
  });

  describe("REST and Connect are one API", () => {
    it("stores the same result for the same operation, and reads back what the other wrote", async () => {
      const client = daemon.client("connect");
      const viaRest = (await call("PUT", "/v1/same/mapping", { body: { domain: "rest.same.example", backends: ["http://a:1", "https://b:2/p"], labels: { env: "prod" } } })).json;
      const viaRpc = (await client.createMapping({ tenantId: "same", mapping: { domain: "rpc.same.example", backends: ["http://a:1", "https://b:2/p"], labels: { env: "prod" } } })).mapping!;

      const restReadsRpc = (await call("GET", "/v1/same/mapping/rpc.same.example")).json;
      expect({ ...restReadsRpc, live: false }).toEqual(toJson(MappingSchema, viaRpc, { useProtoFieldName: true, alwaysEmitImplicit: true }));
      const rpcReadsRest = (await client.getMapping({ tenantId: "same", domain: "rest.same.example" })).mapping!;
      expect(toJson(MappingSchema, { ...rpcReadsRest, live: false }, { useProtoFieldName: true, alwaysEmitImplicit: true })).toEqual(viaRest);

      // Same input through either protocol: the same stored mapping but for its name, revision, times and liveness.
      const stored = ({ domain, revision, create_time, update_time, live, ...rest }: Record<string, unknown>) => rest;
      expect(stored(viaRest)).toEqual(stored(restReadsRpc));
    });

    it("serves REST over HTTP/2 (h2c) on the same port", async () => {
      const session = http2.connect(daemon.baseUrl);
      try {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = session.request({ ":method": "GET", ":path": "/v1/h2/mapping", authorization: "Bearer test-admin-token-0123456789" });
          let body = "";
          let status = 0;
          req.on("response", (h) => (status = Number(h[":status"])));
          req.on("data", (d) => (body += d));
          req.on("end", () => resolve({ status, body }));
          req.on("error", reject);
          req.end();
        });
        expect(status).toBe(200);
        expect(JSON.parse(body)).toEqual({ mappings: [], next_page_token: "" });
      } finally {
        session.close();
      }
    });
  });

  describe("fuzz", () => {
    it("answers malformed paths, bodies and headers without a 5xx, and keeps serving", async () => {
      let seed = 20261122;
      const rand = () => {
        seed = (seed * 1664525 + 1013904223) >>> 0;
        return seed / 2 ** 32;
      };
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
      const junk = (n: number) => Array.from({ length: n }, () => String.fromCharCode(Math.floor(rand() * 0x2ff) + 1)).join("");
      const segments = ["v1", "fuzz", "mapping", "x.example.org", "%", "%00", "..", ".", "*", "*.a.b", "", "%2F", encodeURIComponent(junk(5)), "a".repeat(300), "v2", "admin", "reconcile"];
      const bodies = ['{"domain":"f.example.org","backends":["http://a:1"]}', '{"labels":{"a":null,"b":"1"}}', '{"labels":null}', '{"backends":null}', "{}", "", "{", "null", "[]", '"str"', "1e999", '{"domain":{}}', '{"backends":[null]}', '{"labels":{"":""}}', '{"domain":"\\ud800"}', junk(40), '{"__proto__":{"x":1}}', '{"revision":"-1"}', '{"create_time":"yesterday"}'];
      const headerSets: Array<Record<string, string>> = [
        {},
        { "content-type": "text/plain" },
        { "content-type": "application/json; charset=latin1" },
        { "if-match": pick(['"1"', "*", "W/\"2\"", "x", '"99999999999999999999999"', '"1", "2", W/"3"', '"a,b"', ",", '"1" junk']) },
        { "if-none-match": pick(["*", '"1"', 'W/"1", "2"', "nonsense"]) },
        { "content-type": "application/merge-patch+json" },
        { "x-request-id": "../../etc" },
        { authorization: "Bearer" },
        { "content-type": "application/vnd.api+json" },
      ];
      const methods = ["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"];
      const statuses = new Map<number, number>();
      for (let i = 0; i < 400; i++) {
        const path = "/" + Array.from({ length: 1 + Math.floor(rand() * 5) }, () => pick(segments)).join("/") + (rand() < 0.3 ? `?${pick(["limit", "offset", "total", "page_token", "x", "update_mask"])}=${encodeURIComponent(junk(3))}` : "");
        const method = pick(methods);
        const withBody = !["GET", "HEAD", "OPTIONS", "TRACE"].includes(method) && rand() < 0.8;
        let res;
        try {
          res = await call(method, path, { headers: pick(headerSets), ...(withBody ? { body: pick(bodies) } : {}) });
        } catch (err) {
          // fetch itself refuses some requests (e.g. a TRACE with a body); that is the client, not the server.
          if (err instanceof TypeError && !/fetch failed/.test(err.message)) continue;
          throw err;
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        expect(res.status, `${method} ${path}`).toBeLessThan(500);
        // `/` (as the client normalises the path) is the web console's page; every other answer is JSON.
        if (res.text !== "" && new URL(daemon.baseUrl + path).pathname !== "/") expect(() => JSON.parse(res.text), `${method} ${path}`).not.toThrow();
      }
      expect([...statuses.keys()].some((s) => s >= 400)).toBe(true);
      expect((await call("GET", "/v1/fuzz/mapping")).status).toBe(200);
    });
  });
});
