import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { TokenCheck } from "./tokens.js";

/** The admin token from `Authorization: Bearer <token>` or `X-API-Key: <token>`. */
export function presentedToken(header: Headers): string | undefined {
  const auth = header.get("authorization");
  const bearer = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
  return bearer ?? header.get("x-api-key")?.trim() ?? undefined;
}

/** Rejects every call without a valid admin token, before validation or any store access. */
export function authInterceptor(check: TokenCheck): Interceptor {
  return (next) => async (req) => {
    if (!check(presentedToken(req.header))) {
      throw new ConnectError("missing or invalid admin token: send Authorization: Bearer <token> or X-API-Key: <token>", Code.Unauthenticated);
    }
    return next(req);
  };
}
