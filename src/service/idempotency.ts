import { createHash } from "node:crypto";
import { toBinary, type Message } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { inputError } from "../domain/errors.js";
import type { WriteContext } from "../store/store.js";

const HEADER = "idempotency-key";
const valid = /^[\x21-\x7e]{1,255}$/;

/**
 * The Idempotency-Key a write was sent with (REST header, or the same
 * request header over Connect, gRPC and gRPC-Web), and a digest of the call
 * (method and request), so a repeat with another request is told apart.
 */
export function idempotencyOf(ctx: HandlerContext, req: Message): WriteContext["idempotency"] {
  const key = ctx.requestHeader.get(HEADER);
  if (key === null) return undefined;
  if (!valid.test(key)) throw inputError("Idempotency-Key", "idempotency_key.valid", "must be 1 to 255 printable ASCII characters without spaces");
  const fingerprint = createHash("sha256")
    .update(`${ctx.method.parent.typeName}/${ctx.method.name}\n`)
    .update(toBinary(ctx.method.input, req))
    .digest("hex");
  return { key, fingerprint };
}
