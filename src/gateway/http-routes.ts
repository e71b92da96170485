import { getOption, type DescField, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { rest } from "../../gen/dynroute/v1/rest_pb.js";
import { http } from "../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { parsePathTemplate, type PathTemplate } from "./path-template.js";

/** A path of fields from a message down to a nested field, e.g. mapping.revision. */
export type FieldPath = readonly DescField[];

/** One HTTP binding of one unary RPC, resolved against the descriptors. */
export interface HttpRoute {
  /** Upper case: GET, PUT, POST, PATCH, DELETE. */
  httpMethod: string;
  template: PathTemplate;
  method: DescMethod & { methodKind: "unary" };
  /** Path variable → the request field it sets. */
  pathFields: ReadonlyMap<string, FieldPath>;
  /** "*": the body is the whole request; a field: the body is that field; undefined: no body. */
  body: "*" | DescField | undefined;
  /** The response field sent as the body; undefined: the whole response. */
  responseBody: DescField | undefined;
  /** From the dynroute.v1.rest option; the template's variables are response fields. */
  createdLocation: { template: PathTemplate; fields: ReadonlyMap<string, FieldPath> } | undefined;
  etagField: FieldPath | undefined;
  ifMatchField: FieldPath | undefined;
  /** A request field that, set and not 0, is a precondition like If-Match. */
  ifMatchBodyField: FieldPath | undefined;
}

/**
 * Reads the google.api.http rules (with additional_bindings) and
 * dynroute.v1.rest options of every unary method. Rules that name missing
 * fields or use unsupported template syntax fail here, at startup.
 */
export function httpRoutes(services: readonly DescService[]): HttpRoute[] {
  const routes: HttpRoute[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      const rule = getOption(method, http);
      if (method.methodKind !== "unary" || !rule.pattern.case) continue;
      for (const binding of [rule, ...rule.additionalBindings]) routes.push(toRoute(method as HttpRoute["method"], binding));
    }
  }
  return routes;
}

function toRoute(method: HttpRoute["method"], rule: HttpRule): HttpRoute {
  const where = `${method.parent.typeName}.${method.name}`;
  const { case: verb, value } = rule.pattern;
  if (verb === undefined || verb === "custom") throw new Error(`${where}: only get, put, post, patch and delete rules are supported`);
  const template = parsePathTemplate(value);
  const pathFields = templateFields(template, method.input, where);
  const options = getOption(method, rest);
  return {
    httpMethod: verb.toUpperCase(),
    template,
    method,
    pathFields,
    body: rule.body === "" ? undefined : rule.body === "*" ? "*" : fieldPath(method.input, rule.body, where)[0],
    responseBody: rule.responseBody === "" ? undefined : fieldPath(method.output, rule.responseBody, where)[0],
    createdLocation: options.createdLocation === "" ? undefined : locationTemplate(options.createdLocation, method.output, where),
    etagField: options.etagField === "" ? undefined : fieldPath(method.output, options.etagField, where),
    ifMatchField: options.ifMatchField === "" ? undefined : fieldPath(method.input, options.ifMatchField, where),
    ifMatchBodyField: options.ifMatchBodyField === "" ? undefined : fieldPath(method.input, options.ifMatchBodyField, where),
  };
}

function locationTemplate(source: string, message: DescMessage, where: string): HttpRoute["createdLocation"] {
  const template = parsePathTemplate(source);
  return { template, fields: templateFields(template, message, where) };
}

function templateFields(template: PathTemplate, message: DescMessage, where: string): Map<string, FieldPath> {
  const fields = new Map<string, FieldPath>();
  for (const seg of template.segments) if ("variable" in seg) fields.set(seg.variable, fieldPath(message, seg.variable, where));
  return fields;
}

/** Resolves "a.b.c" (proto or JSON names) to fields; throws naming the rule when a step is missing. */
function fieldPath(message: DescMessage, path: string, where: string): FieldPath {
  const found = findFieldPath(message, path);
  if (!found) throw new Error(`${where}: ${message.typeName} has no field ${path}`);
  return found;
}

/** Like fieldPath, but undefined when a step is missing (for names that come from requests). */
export function findFieldPath(message: DescMessage, path: string): FieldPath | undefined {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const name of path.split(".")) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name || f.jsonName === name);
    if (!field) return undefined;
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}
