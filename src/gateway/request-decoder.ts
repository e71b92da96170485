import { create, fromJson, getOption, ScalarType, type DescField, type JsonObject, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { field as validateRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { FieldMaskSchema } from "@bufbuild/protobuf/wkt";
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
  /** The body is an RFC 7396 merge patch (Content-Type: application/merge-patch+json). */
  mergePatch: boolean;
}

/**
 * Builds the request message the way google.api.http transcoding does: the
 * body goes to its field (or is the whole request), query parameters set the
 * remaining fields, path variables win over both. Unknown fields and wrong
 * types are errors. A PATCH without an update_mask gets one naming the body's
 * top-level fields, so it changes only those, each replaced whole; a merge
 * patch names map entries one by one instead (`labels.<key>`), so maps are
 * merged and a null entry is removed.
 */
export function decodeRequest(route: HttpRoute, input: HttpInput): MessageShape<HttpRoute["method"]["input"]> {
  if (route.body === undefined && input.ifMatch === undefined && input.query.size === 0 && onlyStringPathFields(route) && !someSurrogate(input.vars)) {
    // Nothing but path variables, each a top-level string field: fromJson would set each string as it is
    // (it refuses only text that is not valid UTF-16, left to it above).
    const message = create(route.method.input) as Record<string, unknown>;
    for (const [variable, path] of route.pathFields) message[path[0]!.localName] = input.vars.get(variable)!;
    return message as MessageShape<HttpRoute["method"]["input"]>;
  }
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
  const mask = route.httpMethod === "PATCH" ? patchMask(route, json, input) : undefined;
  for (const [variable, path] of route.pathFields) setJson(json, path, input.vars.get(variable)!);

  let message;
  try {
    message = fromJson(route.method.input, json, { ignoreUnknownFields: false });
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw inputError(route.body === undefined ? "query" : "body", "json.decode", (err as Error).message);
  }
  // Set on the message, not in the JSON: ProtoJSON's FieldMask form would mangle label keys (case, '_').
  if (mask) (message as Record<string, unknown>)[mask.field.localName] = create(FieldMaskSchema, { paths: mask.paths });
  return message;
}

const SURROGATE = /[\ud800-\udfff]/;

function someSurrogate(vars: ReadonlyMap<string, string>): boolean {
  for (const v of vars.values()) if (SURROGATE.test(v)) return true;
  return false;
}

const stringPathFields = new WeakMap<HttpRoute, boolean>();

/** Whether each path variable of the route sets a top-level string field (outside any oneof). */
function onlyStringPathFields(route: HttpRoute): boolean {
  let only = stringPathFields.get(route);
  if (only === undefined) {
    only = [...route.pathFields.values()].every((p) => p.length === 1 && p[0]!.fieldKind === "scalar" && p[0]!.scalar === ScalarType.STRING && !p[0]!.oneof);
    stringPathFields.set(route, only);
  }
  return only;
}

/**
 * The update_mask a PATCH without one gets: the body's top-level fields,
 * output-only ones (as in a GET response sent back) left out. For a merge
 * patch, map fields name each entry, and null entries are removed from the
 * body (the mask path without a value is the removal).
 */
function patchMask(route: HttpRoute, json: JsonObject, input: HttpInput): { field: DescField; paths: string[] } | undefined {
  const field = route.method.input.fields.find((f) => f.message?.typeName === "google.protobuf.FieldMask");
  const target = route.body !== "*" ? route.body : undefined;
  if (!field || !target?.message) return undefined;
  const explicit = json[field.jsonName] !== undefined || json[field.name] !== undefined;
  if (input.mergePatch) {
    if (explicit) throw inputError(field.name, "merge_patch.update_mask", "cannot be combined with a merge patch: the patch names what changes");
    if (!isObject(input.body)) throw inputError(target.name, "merge_patch.object", "a merge patch must be a JSON object");
  }
  if (explicit || !isObject(input.body)) return undefined;
  const paths: string[] = [];
  for (const [key, value] of Object.entries(input.body)) {
    const f = target.message.fields.find((c) => c.name === key || c.jsonName === key);
    if (!f) {
      paths.push(key); // decoding rejects it by name
      continue;
    }
    if (getOption(f, field_behavior).includes(FieldBehavior.OUTPUT_ONLY)) continue;
    if (input.mergePatch && value === null && required(f)) throw inputError(`${target.name}.${f.name}`, "merge_patch.required", "is required and cannot be removed (null)");
    if (input.mergePatch && f.fieldKind === "map" && isObject(value)) {
      paths.push(...Object.keys(value).map((k) => `${f.name}.${k}`));
      // A null entry is removed by its mask path alone; ProtoJSON has no null map values. A copy: the parsed body stays as sent.
      json[target.jsonName] = { ...(json[target.jsonName] as JsonObject), [key]: Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) };
      continue;
    }
    paths.push(f.name);
  }
  if (paths.length === 0) throw inputError(target.name, "patch.empty", "names nothing to change: send the fields to change, e.g. {\"labels\": {\"env\": \"prod\"}}");
  return { field, paths };
}

/** A field whose empty value breaks its buf.validate rules, so null cannot remove it. */
function required(f: DescField): boolean {
  const rules = getOption(f, validateRules);
  if (rules.required) return true;
  const t = rules.type;
  return (t.case === "string" && t.value.minLen > 0n) || (t.case === "repeated" && t.value.minItems > 0n);
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
