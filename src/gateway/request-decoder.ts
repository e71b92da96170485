import { fromJson, getOption, ScalarType, type DescField, type JsonObject, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";
import { InputError, inputError } from "../domain/errors.js";
import { findFieldPath, type FieldPath, type HttpRoute } from "./http-routes.js";

/** What an HTTP request says about the RPC's request message. */
export interface HttpInput {
  vars: ReadonlyMap<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body; undefined when there was none. */
  body: JsonValue | undefined;
  /** The revision an If-Match header names; undefined without one (or with `*`). */
  ifMatch: string | undefined;
}

/**
 * Builds the request message the way google.api.http transcoding does: the
 * body goes to its field (or is the whole request), query parameters set the
 * remaining fields, path variables win over both. Unknown fields and wrong
 * types are errors. A PATCH without an update_mask gets one naming the body's
 * top-level fields, so it changes only those (as a JSON merge would).
 */
export function decodeRequest(route: HttpRoute, input: HttpInput): MessageShape<HttpRoute["method"]["input"]> {
  const json: JsonObject = {};
  if (route.body === "*") {
    if (input.body !== undefined && !isObject(input.body)) throw inputError("body", "body.object", "must be a JSON object");
    Object.assign(json, input.body);
  } else if (route.body && input.body !== undefined) {
    json[route.body.jsonName] = input.body;
  }

  for (const [name, values] of groupQuery(input.query)) {
    const path = findFieldPath(route.method.input, name);
    if (!path || path.some((f) => f.fieldKind === "map")) throw inputError(name, "query.unknown", "is not a query parameter of this route");
    if (route.body === "*" || path[0] === route.body || [...route.pathFields.values()].some((p) => p[0] === path[0])) {
      throw inputError(name, "query.bound", "is set by the path or the body of this route, not by a query parameter");
    }
    const leaf = path[path.length - 1]!;
    if (leaf.fieldKind !== "list" && values.length > 1) throw inputError(name, "query.repeated", "may be given only once");
    setJson(json, path, leaf.fieldKind === "list" ? values.map((v) => queryValue(leaf, v)) : queryValue(leaf, values[0]!));
  }

  if (input.ifMatch !== undefined && route.ifMatchField) setJson(json, route.ifMatchField, input.ifMatch);
  if (route.httpMethod === "PATCH") deriveUpdateMask(route, json, input.body);
  for (const [variable, path] of route.pathFields) setJson(json, path, input.vars.get(variable)!);

  try {
    return fromJson(route.method.input, json, { ignoreUnknownFields: false });
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw inputError(route.body === undefined ? "query" : "body", "json.decode", (err as Error).message);
  }
}

function deriveUpdateMask(route: HttpRoute, json: JsonObject, body: JsonValue | undefined): void {
  const mask = route.method.input.fields.find((f) => f.message?.typeName === "google.protobuf.FieldMask");
  const target = route.body !== "*" ? route.body?.message : undefined;
  if (!mask || !target || !isObject(body) || json[mask.jsonName] !== undefined || json[mask.name] !== undefined) return;
  const paths = Object.keys(body).flatMap((key) => {
    const field = target.fields.find((f) => f.name === key || f.jsonName === key);
    // Output-only fields (as in a GET response sent back) are not changes.
    if (field && getOption(field, field_behavior).includes(FieldBehavior.OUTPUT_ONLY)) return [];
    return [field?.jsonName ?? key];
  });
  json[mask.jsonName] = paths.join(",");
}

function groupQuery(query: URLSearchParams): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of query) grouped.set(name, [...(grouped.get(name) ?? []), value]);
  return grouped;
}

// Query strings are text; ProtoJSON parses numbers, enums and well-known types from strings but wants real booleans.
function queryValue(field: DescField, value: string): JsonValue {
  if (field.scalar !== ScalarType.BOOL) return value;
  if (value === "" || value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw inputError(field.name, "query.bool", `must be true or false, got "${value}"`);
}

/** Sets a value at a field path in a ProtoJSON object, replacing the field under either of its names. */
function setJson(json: JsonObject, path: FieldPath, value: JsonValue): void {
  let target = json;
  path.forEach((field, i) => {
    const existing = target[field.jsonName] ?? target[field.name];
    delete target[field.name];
    if (i === path.length - 1) {
      target[field.jsonName] = value;
      return;
    }
    const next: JsonObject = isObject(existing) ? { ...existing } : {};
    target[field.jsonName] = next;
    target = next;
  });
}

const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
