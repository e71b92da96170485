import { Code, ConnectError } from "@connectrpc/connect";

/** The Connect code name an RPC ended with ("OK" when it succeeded), to compare many calls at once. */
export const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => "OK",
    (err: unknown) => Code[ConnectError.from(err).code]!,
  );
