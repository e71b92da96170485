import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, ConnectError } from "@connectrpc/connect";

export const hasCode = (err: unknown, code: Code) => err instanceof ConnectError && err.code === code;

/** What to tell a person about a failed call. */
export function errorText(err: unknown): string {
  const ce = ConnectError.from(err);
  switch (ce.code) {
    case Code.Unauthenticated:
      return "The key was refused: it is wrong, expired or revoked.";
    case Code.PermissionDenied:
      // The server says why (a role, or for certificates the names that are not the tenant's).
      return `This key may not do that: ${ce.rawMessage}`;
    case Code.Unavailable:
      return `The daemon cannot serve this right now: ${ce.rawMessage}`;
    case Code.Unknown:
    case Code.Internal:
      return "The daemon could not answer (network error or internal error). Try again.";
    default:
      return ce.rawMessage;
  }
}

/**
 * The server's validation errors by field, keyed like `domain`, `backends[1]`,
 * `labels["env"]` (the path inside the request's `within` message, e.g. its
 * `mapping` or `tenant`, when there is one).
 */
export function fieldViolations(err: unknown, within = "mapping"): Map<string, string[]> {
  const byField = new Map<string, string[]>();
  if (!hasCode(err, Code.InvalidArgument)) return byField;
  for (const { violations } of (err as ConnectError).findDetails(ViolationsSchema)) {
    for (const v of violations) {
      const path = (v.field?.elements ?? [])
        .map((e) => e.fieldName + (e.subscript.case === "index" ? `[${e.subscript.value}]` : e.subscript.case === "stringKey" ? `["${e.subscript.value}"]` : ""))
        .join(".");
      const key = path.startsWith(`${within}.`) ? path.slice(within.length + 1) : path;
      byField.set(key, [...(byField.get(key) ?? []), v.message]);
    }
  }
  return byField;
}
