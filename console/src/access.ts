import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { KeyService } from "../../gen/dynroute/v1/key_pb.js";
import type { Session } from "./session";
import { createApiTransport } from "./transport";

/** Sign-in failed; `field` is the form field to show the message at. */
export class SignInError extends Error {
  constructor(
    readonly field: "key" | "tenant",
    message: string,
  ) {
    super(message);
  }
}

/**
 * What a key may do, from WhoAmI: admins open the tenant they typed (or pick
 * one later), tenant keys always open their own.
 */
export async function probeAccess(key: string, tenant: string): Promise<Session> {
  try {
    const me = await createClient(KeyService, createApiTransport(key)).whoAmI({});
    if (me.role === "admin") return { key, role: "admin", tenant };
    if (tenant !== "" && tenant !== me.tenantId) throw new SignInError("tenant", `This key belongs to another tenant than "${tenant}".`);
    return { key, role: me.role === "editor" ? "editor" : "viewer", tenant: me.tenantId };
  } catch (err) {
    if (err instanceof SignInError) throw err;
    const ce = ConnectError.from(err);
    if (ce.code === Code.Unauthenticated) throw new SignInError("key", "This key was refused: it is wrong, expired or revoked.");
    throw ce;
  }
}
