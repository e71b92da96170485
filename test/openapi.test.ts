import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../gen/dynroute/v1/admin_pb.js";
import { AuditService } from "../gen/dynroute/v1/audit_pb.js";
import { CertificateService } from "../gen/dynroute/v1/certificate_pb.js";
import { KeyService } from "../gen/dynroute/v1/key_pb.js";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { TenantService } from "../gen/dynroute/v1/tenant_pb.js";
import { httpRoutes } from "../src/gateway/http-routes.js";
import { freshStore, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { rest } from "./harness/rest.js";

let daemon: TestDaemon;
let doc: any;
beforeAll(async () => {
  daemon = await startTestDaemon(await freshStore("mysql"));
  await daemon.store.ready;
  const res = await rest(daemon.baseUrl, "GET", "/v1/openapi.json", { token: null });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
  doc = res.json;
});
afterAll(() => daemon.close());

describe("/v1/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    expect(doc.openapi).toBe("3.1.0");
    const result = await new Validator().validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it("describes every google.api.http binding, and nothing else", () => {
    const expected = httpRoutes([MappingService, AdminService, KeyService, AuditService, TenantService, CertificateService]).map((r) => `${r.httpMethod} ${r.template.source}`);
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual([...expected, "GET /healthz", "GET /readyz", "GET /metrics"].sort());
    expect(expected).toContain("PATCH /v1/{tenant_id}/mapping/{domain}");
    expect(expected).toEqual(expect.arrayContaining(["POST /v1/keys", "DELETE /v1/keys/{id}", "GET /v1/{tenant_id}/audit", "GET /v1/audit", "PUT /v1/tenants/{tenant_id}"]));
  });

  it("lists each error status a route can answer with the error schema, and the operational endpoints without auth", async () => {
    const error = { $ref: "#/components/schemas/Error" };
    const statuses = (op: { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }) =>
      Object.entries(op.responses)
        .filter(([, r]) => (r.content?.["application/json"]?.schema as { $ref?: string } | undefined)?.$ref === error.$ref)
        .map(([s]) => s);
    const item = doc.paths["/v1/{tenant_id}/mapping/{domain}"];
    expect(statuses(item.put)).toEqual(["400", "401", "403", "404", "409", "412", "413", "415", "500", "503", "default"]);
    expect(statuses(item.get)).toEqual(["400", "401", "403", "404", "500", "503", "default"]);
    expect(statuses(item.delete)).toEqual(["400", "401", "403", "404", "412", "500", "503", "default"]);
    expect(statuses(doc.paths["/v1/{tenant_id}/mapping"].put)).toEqual(["400", "401", "403", "404", "409", "412", "413", "415", "429", "500", "503", "default"]);
    expect(statuses(doc.paths["/v1/{tenant_id}/mapping/{domain}/backends"].put)).toEqual(["400", "401", "403", "404", "412", "413", "415", "500", "503", "default"]);
    expect(item.patch.requestBody.content).toHaveProperty(["application/merge-patch+json"]);

    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      expect(doc.paths[path].get.security, path).toEqual([]);
      const res = await fetch(daemon.baseUrl + path);
      expect(Object.keys(doc.paths[path].get.responses), path).toContain(String(res.status));
      expect(Object.keys(doc.paths[path].get.responses[res.status].content), path).toContain(res.headers.get("content-type")!.split(";")[0]);
    }
    // Every documented error status of a route is one the gateway really answers in that shape.
    const unauthenticated = await rest(daemon.baseUrl, "DELETE", "/v1/oa/mapping/x.example.org", { token: null });
    expect(statuses(item.delete)).toContain(String(unauthenticated.status));
  });

  it("states statuses, headers, auth and the rules from buf.validate", () => {
    const create = doc.paths["/v1/{tenant_id}/mapping"].put;
    expect(create.responses["201"].headers).toHaveProperty("Location");
    expect(create.requestBody.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/dynroute.v1.Mapping" });
    expect(doc.paths["/v1/{tenant_id}/mapping/{domain}"].delete.responses).toHaveProperty("204");
    expect(doc.paths["/v1/{tenant_id}/mapping/{domain}"].delete.responses).toHaveProperty("412");
    const list = doc.paths["/v1/{tenant_id}/mapping"].get;
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual(["tenant_id", "offset", "limit", "page_token", "label_selector", "domain_suffix", "total", "q", "status"]);
    expect(list.parameters.find((p: { name: string }) => p.name === "limit").schema).toMatchObject({ type: "integer", minimum: 0, maximum: 500 });

    const mapping = doc.components.schemas["dynroute.v1.Mapping"];
    expect(mapping.properties.backends).toMatchObject({ type: "array", minItems: 1, maxItems: 64, uniqueItems: true, items: { type: "string", maxLength: 2048 } });
    expect(mapping.properties.revision).toMatchObject({ readOnly: true, type: "string" });
    expect(mapping.properties.create_time).toMatchObject({ readOnly: true, format: "date-time" });
    expect(doc.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
  });

  it("matches what the gateway really answers", async () => {
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    ajv.addSchema({ $id: "doc", components: doc.components });
    const check = (schema: object, value: unknown) => {
      const ok = ajv.validate({ $ref: `doc${(schema as { $ref: string }).$ref}` }, value);
      expect(ajv.errors ?? [], JSON.stringify(value)).toEqual([]);
      return ok;
    };
    const created = await rest(daemon.baseUrl, "PUT", "/v1/oa/mapping", { body: { domain: "oa.example.org", backends: ["http://a:1"], labels: { env: "prod" } } });
    expect(check(doc.paths["/v1/{tenant_id}/mapping"].put.responses["201"].content["application/json"].schema, created.json)).toBe(true);
    const listed = await rest(daemon.baseUrl, "GET", "/v1/oa/mapping?total=true");
    expect(check(doc.paths["/v1/{tenant_id}/mapping"].get.responses["200"].content["application/json"].schema, listed.json)).toBe(true);
    const missing = await rest(daemon.baseUrl, "GET", "/v1/oa/mapping/none.example.org");
    expect(check(doc.paths["/v1/{tenant_id}/mapping/{domain}"].get.responses.default.content["application/json"].schema, missing.json)).toBe(true);
    // And the schema would catch a wrong answer.
    expect(ajv.validate({ $ref: "doc#/components/schemas/dynroute.v1.Mapping" }, { ...created.json, backends: "http://a:1" })).toBe(false);
  });
});
