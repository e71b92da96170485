import { getOption, isFieldSet, ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { field as validateRules, type FieldRules, Int32RulesSchema, MapRulesSchema, RepeatedRulesSchema, StringRulesSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";
import { sendJson } from "../server/json-response.js";
import type { PlainRoute } from "../server/listener.js";
import type { HttpRoute } from "./http-routes.js";

type Schema = Record<string, unknown>;

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

/**
 * An OpenAPI 3.1 document for the REST gateway's routes, derived from the
 * same descriptors: paths and methods from google.api.http, schemas from the
 * messages as ProtoJSON with proto field names, limits from buf.validate
 * rules, read-only fields from google.api.field_behavior.
 */
export function openApiDocument(routes: readonly HttpRoute[], info: OpenApiInfo, otherPaths: Record<string, object> = {}): Schema {
  const schemas: Record<string, Schema> = { Error: errorSchema() };
  const ref = (message: DescMessage): Schema => {
    const wkt = wellKnown(message.typeName);
    if (wkt) return wkt;
    if (!(message.typeName in schemas)) {
      schemas[message.typeName] = {}; // placeholder first: messages may refer to themselves
      schemas[message.typeName] = messageSchema(message, ref);
    }
    return { $ref: `#/components/schemas/${message.typeName}` };
  };

  const paths: Record<string, Record<string, Schema>> = {};
  const seen = new Map<string, number>();
  for (const route of routes) {
    const path = route.template.segments.map((s) => ("literal" in s ? s.literal : `{${s.variable}}`)).join("/");
    const name = route.method.name;
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    (paths[`/${path}`] ??= {})[route.httpMethod.toLowerCase()] = operation(route, count === 1 ? name : `${name}_${route.httpMethod.toLowerCase()}`, ref);
  }

  return {
    openapi: "3.1.0",
    info,
    paths: { ...paths, ...otherPaths },
    components: {
      schemas,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "An admin token: Authorization: Bearer <token>." },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "The same admin token in X-API-Key." },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
  };
}

function operation(route: HttpRoute, operationId: string, ref: (m: DescMessage) => Schema): Schema {
  const input = route.method.input;
  const parameters: Schema[] = [...route.pathFields.keys()].map((name) => ({ name, in: "path", required: true, schema: { type: "string" } }));
  const bound = new Set([...route.pathFields.values()].map((p) => p[0]));
  if (route.body !== "*") {
    for (const f of input.fields) {
      if (bound.has(f) || f === route.body || f === route.ifMatchField?.[0] || !queryable(f)) continue;
      parameters.push({ name: f.name, in: "query", required: false, schema: fieldSchema(f, ref) });
    }
  }
  if (route.ifMatchField) {
    parameters.push({ name: "If-Match", in: "header", required: false, schema: { type: "string" }, description: "* or ETags from earlier answers (strong comparison); none current answers 412." });
  }
  if (route.etagField && route.httpMethod === "GET") {
    parameters.push({ name: "If-None-Match", in: "header", required: false, schema: { type: "string" }, description: "* or ETags (weak comparison); one current answers 304." });
  } else if (route.httpMethod !== "GET" && (route.ifMatchField || route.createdLocation)) {
    parameters.push({ name: "If-None-Match", in: "header", required: false, schema: { const: "*" }, description: "*: only if there is none yet (else 412)." });
  }

  const okHeaders: Record<string, Schema> = {};
  if (route.etagField) okHeaders.ETag = { schema: { type: "string" }, description: "The revision, as a strong ETag." };
  if (route.createdLocation) okHeaders.Location = { schema: { type: "string" }, description: "Where the created resource is." };
  const status = route.createdLocation ? "201" : route.method.output.fields.length === 0 ? "204" : "200";
  const okBody = route.responseBody ? fieldSchema(route.responseBody, ref) : ref(route.method.output);
  const responses: Record<string, Schema> = {
    [status]: { description: "Success.", headers: okHeaders, ...(status === "204" ? {} : { content: { "application/json": { schema: okBody } } }) },
  };
  if (route.etagField && route.httpMethod === "GET") responses["304"] = { description: "Not modified: If-None-Match names the current revision." };
  for (const [code, description] of errorStatuses(route)) responses[code] = { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
  responses.default = { description: "Any other error: code, message and details.", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };

  const body = route.body === "*" ? ref(input) : route.body ? fieldSchema(route.body, ref) : undefined;
  return {
    operationId,
    tags: [route.method.parent.name],
    summary: `${route.method.parent.typeName}.${route.method.name}`,
    parameters,
    // PATCH also takes an RFC 7396 merge patch of the same shape (null removes).
    ...(body ? { requestBody: { required: true, content: { "application/json": { schema: body }, ...(route.httpMethod === "PATCH" ? { "application/merge-patch+json": { schema: body } } : {}) } } } : {}),
    responses,
  };
}

/** The error statuses a route can answer, from what the route has: a body, path variables, preconditions. */
function errorStatuses(route: HttpRoute): Array<[string, string]> {
  const statuses: Array<[string, string]> = [
    ["400", "invalid_argument: a field breaks its rules (named in the message and details), or a malformed header or body."],
    ["401", "unauthenticated: no valid key."],
    ["403", "permission_denied: the key's role or tenant does not allow this call."],
  ];
  // Every path variable names something that may not exist for this key (a tenant of another is not found either);
  // a body that is a whole resource may clash with another one.
  if (route.pathFields.size > 0) statuses.push(["404", "not_found: no such resource, or a tenant this key may not see."]);
  if (route.body !== undefined && route.body !== "*" && route.body.fieldKind === "message") statuses.push(["409", "already_exists: the domain is mapped already (in any tenant)."]);
  if (route.ifMatchField || route.ifMatchBodyField || route.createdLocation) {
    statuses.push(["412", "failed_precondition: If-Match (or the body's revision) names no current revision, or If-None-Match: * finds one; nothing changed."]);
  }
  if (route.createdLocation) statuses.push(["429", "resource_exhausted: the tenant's quota of this resource is reached."]);
  if (route.body) {
    statuses.push(["413", "resource_exhausted: the body is larger than the limit."]);
    statuses.push(["415", "invalid_argument: the body is not JSON."]);
  }
  statuses.push(["500", "internal: a bug; details only in the log."], ["503", "unavailable: the database is down or not ready; retry."]);
  return statuses.sort(([a], [b]) => a.localeCompare(b));
}

// Query parameters carry scalars, enums, lists of them, and well-known types written as strings.
const queryable = (f: DescField) => f.fieldKind === "scalar" || f.fieldKind === "enum" || (f.fieldKind === "list" && f.listKind !== "message") || (f.fieldKind === "message" && wellKnown(f.message.typeName)?.type === "string");

function messageSchema(message: DescMessage, ref: (m: DescMessage) => Schema): Schema {
  const properties: Record<string, Schema> = {};
  for (const f of message.fields) properties[f.name] = fieldSchema(f, ref);
  return { type: "object", properties, additionalProperties: false };
}

function fieldSchema(f: DescField, ref: (m: DescMessage) => Schema): Schema {
  const rules = getOption(f, validateRules);
  let schema: Schema;
  switch (f.fieldKind) {
    case "scalar":
      schema = { ...scalarSchema(f.scalar), ...limits(rules) };
      break;
    case "enum":
      schema = { type: "string", enum: f.enum.values.map((v) => v.name) };
      break;
    case "message":
      schema = ref(f.message);
      break;
    case "list": {
      const item = f.listKind === "scalar" ? scalarSchema(f.scalar) : f.listKind === "enum" ? { type: "string", enum: f.enum.values.map((v) => v.name) } : ref(f.message);
      schema = { type: "array", items: { ...item, ...limits(rules?.type.case === "repeated" ? rules.type.value.items : undefined) }, ...limits(rules) };
      break;
    }
    case "map": {
      const value = f.mapKind === "scalar" ? scalarSchema(f.scalar) : f.mapKind === "enum" ? { type: "string" } : ref(f.message);
      const values = rules?.type.case === "map" ? rules.type.value.values : undefined;
      schema = { type: "object", additionalProperties: { ...value, ...limits(values) }, ...limits(rules) };
      break;
    }
  }
  if (getOption(f, field_behavior).includes(FieldBehavior.OUTPUT_ONLY)) schema = { ...schema, readOnly: true };
  return schema;
}

/** The buf.validate rules that JSON Schema can say as well. */
function limits(rules: FieldRules | undefined): Schema {
  const out: Schema = {};
  const t = rules?.type;
  if (t?.case === "string") {
    const r = t.value;
    if (isFieldSet(r, StringRulesSchema.field.minLen)) out.minLength = Number(r.minLen);
    if (isFieldSet(r, StringRulesSchema.field.maxLen)) out.maxLength = Number(r.maxLen);
    if (isFieldSet(r, StringRulesSchema.field.pattern)) out.pattern = r.pattern;
  } else if (t?.case === "int32") {
    const r = t.value;
    if (r.greaterThan.case === "gte") out.minimum = r.greaterThan.value;
    if (r.lessThan.case === "lte") out.maximum = r.lessThan.value;
    if (isFieldSet(r, Int32RulesSchema.field.const)) out.const = r.const;
  } else if (t?.case === "repeated") {
    const r = t.value;
    if (isFieldSet(r, RepeatedRulesSchema.field.minItems)) out.minItems = Number(r.minItems);
    if (isFieldSet(r, RepeatedRulesSchema.field.maxItems)) out.maxItems = Number(r.maxItems);
    if (r.unique) out.uniqueItems = true;
  } else if (t?.case === "map") {
    const r = t.value;
    if (isFieldSet(r, MapRulesSchema.field.minPairs)) out.minProperties = Number(r.minPairs);
    if (isFieldSet(r, MapRulesSchema.field.maxPairs)) out.maxProperties = Number(r.maxPairs);
    if (r.keys?.type.case === "string" && isFieldSet(r.keys.type.value, StringRulesSchema.field.pattern)) out.propertyNames = { pattern: r.keys.type.value.pattern };
  }
  return out;
}

function scalarSchema(scalar: ScalarType): Schema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int32", minimum: 0 };
    default:
      // ProtoJSON writes 64-bit integers as decimal strings (and reads numbers too).
      return { type: "string", pattern: "^-?[0-9]+$", format: "int64" };
  }
}

function wellKnown(typeName: string): Schema | undefined {
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time" };
    case "google.protobuf.FieldMask":
      return { type: "string", description: "Comma-separated field names." };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]+)?s$" };
    default:
      return undefined;
  }
}

function errorSchema(): Schema {
  const codes = Object.values(Code)
    .filter((c): c is Code => typeof c === "number")
    .map(codeToString);
  return {
    type: "object",
    required: ["code", "message"],
    properties: {
      code: { type: "string", enum: codes },
      message: { type: "string", description: "What went wrong; validation errors start with the field's path." },
      details: { type: "array", items: { type: "object", properties: { "@type": { type: "string" } } }, description: "Typed details, e.g. buf.validate.Violations." },
    },
  };
}

/** Serves the document (built once) at `path`, without auth: it holds no data, and tools fetch it before they have a token. */
export function createOpenApiRoute(path: string, document: Schema): PlainRoute {
  const body = JSON.stringify(document);
  return async (req, res) => {
    if ((req.url ?? "").split("?", 1)[0] !== path || (req.method !== "GET" && req.method !== "HEAD")) return false;
    sendJson(req, res, 200, body);
    return true;
  };
}
