import type { Validator } from "@bufbuild/protovalidate";
import type { Interceptor } from "@connectrpc/connect";
import { validateMessage } from "./validation.js";

/** Checks every request message against its buf.validate annotations before the handler runs. */
export function validateInterceptor(validator: Validator): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) validateMessage(validator, req.method.input, req.message);
    return next(req);
  };
}
