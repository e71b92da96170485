import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import type { Validator } from "@bufbuild/protovalidate";
import { InputError } from "../domain/errors.js";

/**
 * Checks a message against its buf.validate annotations. Paths in the error
 * are prefixed with `prefix` when the message sits inside a request.
 */
export function validateMessage<Desc extends DescMessage>(validator: Validator, schema: Desc, message: MessageShape<Desc>, prefix = ""): void {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return;
  if (result.kind === "error") throw result.error;
  throw new InputError(
    result.error.violations.map((v) => ({
      field: prefix + pathToString(v.field),
      ruleId: v.ruleId,
      message: v.message,
    })),
  );
}
