import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { KeyService } from "../../gen/dynroute/v1/key_pb.js";
import { MappingService } from "../../gen/dynroute/v1/mapping_pb.js";
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
 * Finds out what a key may do, with calls that change nothing (the API has no
 * "who am I" yet): ListKeys answers only admins. A tenant key's ListMappings
 * answers NOT_FOUND for any tenant but its own; then an UpdateMapping naming no
 * domain passes the access check and fails validation (an editor) or is
 * refused (a viewer).
 */
export async function probeAccess(key: string, tenant: string): Promise<Session> {
  const transport = createApiTransport(key);
  try {
    await createClient(KeyService, transport).listKeys({});
    return { key, role: "admin", tenant };
  } catch (err) {
    const ce = ConnectError.from(err);
    if (ce.code === Code.Unauthenticated) throw new SignInError("key", "This key was refused: it is wrong, expired or revoked.");
    if (ce.code !== Code.PermissionDenied) throw ce;
  }
  if (tenant === "") throw new SignInError("tenant", "This key belongs to one tenant: enter its name.");
  const mappings = createClient(MappingService, transport);
  try {
    await mappings.listMappings({ tenantId: tenant, limit: 1 });
  } catch (err) {
    if (ConnectError.from(err).code === Code.NotFound) throw new SignInError("tenant", `This key does not belong to tenant "${tenant}".`);
    throw err;
  }
  try {
    await mappings.updateMapping({ tenantId: tenant, domain: "" });
  } catch (err) {
    const ce = ConnectError.from(err);
    if (ce.code === Code.InvalidArgument) return { key, role: "editor", tenant };
    if (ce.code === Code.PermissionDenied) return { key, role: "viewer", tenant };
    throw ce;
  }
  throw new Error("unexpected answer to the access probe");
}
