import { create } from "@bufbuild/protobuf";
import { createContextKey, createContextValues, type ContextValues, type HandlerContext, type Interceptor, type MethodImplSpec, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";

export type UnaryImplSpec = Extract<MethodImplSpec, { kind: "unary" }>;
type Next = Parameters<Interceptor>[0];

export interface InProcessCall {
  /** The protocol name interceptors and handlers see, e.g. "rest". */
  protocolName: string;
  requestMethod: string;
  url: string;
  header: Headers;
  /** Values the call starts with (e.g. its parsed message, see deferMessage). */
  contextValues?: ContextValues;
}

// The answer is written only after the handler resolves (a cancelled call is never answered), and no handler
// watches for cancellation, so one signal that never fires serves every call.
const NEVER_ABORTED = new AbortController().signal;

// The call's context, for the handler at the end of a chain built once (see unaryInvoker).
const handlerContextKey = createContextKey<HandlerContext | undefined>(undefined, { description: "dynroute handler context" });

/**
 * Calls a unary implementation through interceptors, as connect's own
 * handlers do, for callers that speak another protocol (the REST gateway)
 * or serve Connect themselves. The interceptor chain is built once here, not
 * per call. The request starts as an empty message (one per method, frozen:
 * nothing before the decoding interceptor reads it): an interceptor in the
 * chain supplies the real one, so the ones before it (auth) run before
 * decoding. The context is built per call rather than with
 * createHandlerContext, which links two AbortControllers and copies three
 * Headers per call (measured: several percent of a REST GET) for deadlines
 * these callers do not have.
 */
export function unaryInvoker(spec: UnaryImplSpec, interceptors: readonly Interceptor[]): (call: InProcessCall) => Promise<UnaryResponse> {
  const { method } = spec;
  const empty = Object.freeze(create(method.input));
  const handler: Next = async (req) => {
    const context = req.contextValues.get(handlerContextKey)!;
    return {
      stream: false,
      service: method.parent,
      method,
      header: context.responseHeader,
      trailer: context.responseTrailer,
      message: create(method.output, await spec.impl((req as UnaryRequest).message, context)),
    };
  };
  const next = interceptors.reduceRight<Next>((inner, interceptor) => interceptor(inner), handler);
  return async (call) => {
    const values = call.contextValues ?? createContextValues();
    const context: HandlerContext = {
      method,
      service: method.parent,
      protocolName: call.protocolName,
      requestMethod: call.requestMethod,
      url: call.url,
      signal: NEVER_ABORTED,
      timeoutMs: () => undefined,
      requestHeader: call.header,
      responseHeader: new Headers(),
      responseTrailer: new Headers(),
      values,
    };
    values.set(handlerContextKey, context);
    const res = await next({
      stream: false,
      service: method.parent,
      method,
      requestMethod: call.requestMethod,
      url: call.url,
      signal: NEVER_ABORTED,
      header: call.header,
      contextValues: values,
      message: empty,
    });
    return res as UnaryResponse;
  };
}
