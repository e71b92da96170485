import { create, toJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, codeToString } from "@connectrpc/connect/protocol-connect";

/** The JSON error every REST answer uses: `{code, message, details}`, details as google.rpc.Status-style Any JSON. */
export interface ErrorAnswer {
  status: number;
  headers: Headers;
  body: { code: string; message: string; details: JsonValue[] };
}

/**
 * Maps an error to the Connect protocol's HTTP status and a JSON body.
 * `precondition`: the request carried one (If-Match, or a body revision),
 * so a FAILED_PRECONDITION is HTTP's own 412 rather than 400.
 */
export function errorAnswer(err: unknown, precondition = false): ErrorAnswer {
  const ce = ConnectError.from(err);
  const status = precondition && ce.code === Code.FailedPrecondition ? 412 : codeToHttpStatus(ce.code);
  const details = ce.details.flatMap((d): JsonValue[] =>
    "desc" in d ? [{ "@type": `type.googleapis.com/${d.desc.typeName}`, ...(toJson(d.desc, create(d.desc, d.value), { useProtoFieldName: true }) as object) }] : [],
  );
  return { status, headers: ce.metadata, body: { code: codeToString(ce.code), message: ce.rawMessage, details } };
}

/** An error the gateway answers itself, before any RPC runs (unknown route, wrong method, body too large). */
export function httpError(status: number, code: Code, message: string, headers: Record<string, string> = {}): ErrorAnswer {
  return { status, headers: new Headers(headers), body: { code: codeToString(code), message, details: [] } };
}
