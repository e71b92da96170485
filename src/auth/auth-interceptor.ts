import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { access, type AccessRule } from "../../gen/dynroute/v1/access_pb.js";
import type { Authentication, Authenticator } from "./authenticator.js";
import { isRole, outranks, principalKey, type Principal } from "./principal.js";
import type { Role } from "../store/store.js";

/** The secret from `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedKey(header: Headers): string | undefined {
  const auth = header.get("authorization");
  const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  return bearer ?? header.get("x-api-key")?.trim() ?? undefined;
}

/**
 * Refuses every call without a valid key, before its request is read, and
 * records the caller's principal for the interceptors and services after it.
 */
export function authenticateInterceptor(authenticator: Authenticator): Interceptor {
  // Not async: a token or a cached key is checked without a promise (the outer interceptors catch what this throws).
  return (next) => (req) => {
    const admit = (result: Authentication) => {
      if ("refused" in result) throw new ConnectError(result.refused, Code.Unauthenticated);
      req.contextValues.set(principalKey, result.principal);
      return next(req);
    };
    const result = authenticator.authenticate(presentedKey(req.header));
    return result instanceof Promise ? result.then(admit) : admit(result);
  };
}

/** What a method needs, from its (dynroute.v1.access) option. */
interface MethodAccess {
  minRole: Role;
  /** The request field's local name holding the tenant, if the method names one. */
  tenantField?: string;
}

/**
 * Decides what the caller may do, after the request is decoded and before it
 * is validated, the same way for every protocol: the method's least role
 * (PERMISSION_DENIED below it), and for tenant keys the tenant the request
 * names (NOT_FOUND for any other tenant, so a key learns nothing about tenants
 * it does not belong to). Methods without an access option are for admins,
 * except those in `anyKey` (the schema, which reflection serves).
 */
export function authorizeInterceptor(anyKey: ReadonlySet<string>): Interceptor {
  const rules = new Map<DescMethod, MethodAccess>();
  const rule = (method: DescMethod) => {
    let found = rules.get(method);
    if (!found) rules.set(method, (found = methodAccess(method, anyKey.has(method.parent.typeName))));
    return found;
  };
  return (next) => (req) => {
    const principal = req.contextValues.get(principalKey);
    if (!principal) throw new ConnectError("not authenticated", Code.Unauthenticated);
    const { minRole, tenantField } = rule(req.method);
    if (tenantField && !req.stream && principal.role !== "admin") {
      checkTenant(principal, String((req.message as Record<string, unknown>)[tenantField] ?? ""));
    }
    if (!outranks(principal.role, minRole)) {
      throw new ConnectError(`this call needs ${article(minRole)} ${minRole} key; ${describe(principal)}`, Code.PermissionDenied);
    }
    return next(req);
  };
}

function checkTenant(principal: Principal, tenantId: string): void {
  if (tenantId === "") throw new ConnectError(`only admin keys act across tenants; ${describe(principal)}`, Code.PermissionDenied);
  if (tenantId !== principal.tenantId) throw new ConnectError(`tenant ${tenantId} not found`, Code.NotFound);
}

function methodAccess(method: DescMethod, openToAnyKey: boolean): MethodAccess {
  if (!hasOption(method, access)) return { minRole: openToAnyKey ? "viewer" : "admin" };
  const rule: AccessRule = getOption(method, access);
  if (!isRole(rule.minRole)) throw new Error(`${method.parent.typeName}.${method.name}: access.min_role "${rule.minRole}" is not a role`);
  const field = rule.tenantField === "" ? undefined : method.input.fields.find((f) => f.name === rule.tenantField);
  if (rule.tenantField !== "" && !field) throw new Error(`${method.parent.typeName}.${method.name}: access.tenant_field names no request field`);
  return { minRole: rule.minRole, ...(field ? { tenantField: field.localName } : {}) };
}

const describe = (p: Principal) => (p.role === "admin" ? "this key is an admin key" : `this key is ${article(p.role)} ${p.role} key of tenant ${p.tenantId}`);
const article = (role: Role) => (role === "viewer" ? "a" : "an");
