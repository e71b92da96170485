import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { FieldPathElementSchema, ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { InputError, type FieldViolation } from "../domain/errors.js";
import { StoreError, type StoreErrorCode } from "../store/store.js";

const storeCodes: Record<StoreErrorCode, Code> = {
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  permission_denied: Code.PermissionDenied,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

/**
 * Turns the errors of the layers below into ConnectErrors with codes. Anything
 * unexpected becomes a bare "internal error": its message and stack stay in
 * the log (as the cause) and never reach the client.
 */
export function errorInterceptor(): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof InputError) {
    return new ConnectError(err.message, Code.InvalidArgument, undefined, [
      { desc: ViolationsSchema, value: create(ViolationsSchema, { violations: err.violations.map(toViolationProto) }) },
    ]);
  }
  if (err instanceof StoreError) return new ConnectError(err.message, storeCodes[err.code], undefined, undefined, err);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

function toViolationProto(v: FieldViolation) {
  const elements: Array<MessageInitShape<typeof FieldPathElementSchema>> = v.path.map((e) => ({
    fieldName: e.name,
    subscript: e.index !== undefined ? { case: "index", value: BigInt(e.index) } : e.key !== undefined ? { case: "stringKey", value: e.key } : { case: undefined },
  }));
  return { field: { elements }, ruleId: v.ruleId, message: v.message };
}
