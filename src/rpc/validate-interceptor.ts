import type { Validator } from "@bufbuild/protovalidate";
import type { Interceptor } from "@connectrpc/connect";
import { validateMessage } from "./validation.js";

/** Checks every request message against its buf.validate annotations before the handler runs. */
export function validateInterceptor(validator: Validator): Interceptor {
  // Not async: a synchronous step needs no promise of its own (the outermost interceptor's catches what it throws).
  return (next) => (req) => {
    if (!req.stream) validateMessage(validator, req.method.input, req.message);
    return next(req);
  };
}
