import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Role, WriteContext } from "../store/store.js";

/** Who is calling: the key that authenticated the call and what it may do. */
export interface Principal {
  keyId: string;
  role: Role;
  /** The tenant an editor or viewer key acts on; empty for admins. */
  tenantId: string;
}

const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 };
export const ROLES = Object.keys(RANK) as Role[];

export const isRole = (value: string): value is Role => value in RANK;
export const outranks = (held: Role, needed: Role) => RANK[held] >= RANK[needed];

/** Set by the authentication interceptor on every call that gets past it. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "dynroute principal" });
/** Set by the log interceptor: the call's X-Request-Id. */
export const requestIdKey = createContextKey<string>("", { description: "dynroute request id" });

/** The caller as a write records it in the audit trail. */
export function writerOf(ctx: HandlerContext): WriteContext {
  return { keyId: ctx.values.get(principalKey)?.keyId ?? "unknown", requestId: ctx.values.get(requestIdKey) };
}
