import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Validator } from "@bufbuild/protovalidate";
import type { Path } from "@bufbuild/protobuf/reflect";
import { InputError, toPath, type FieldRef, type PathElement } from "../domain/errors.js";

/**
 * Checks a message against its buf.validate annotations. Paths in the error
 * are placed under `prefix` when the message sits inside a request; map keys
 * and indices stay structured.
 */
export function validateMessage<Desc extends DescMessage>(validator: Validator, schema: Desc, message: MessageShape<Desc>, prefix: FieldRef = ""): void {
  const result = validator.validate(schema, message);
  if (result.kind === "valid") return;
  if (result.kind === "error") throw result.error;
  const under = prefix === "" ? [] : toPath(prefix);
  throw new InputError(result.error.violations.map((v) => ({ path: [...under, ...elements(v.field)], ruleId: v.ruleId, message: v.message })));
}

/** protovalidate's path (fields, then list indices and map keys) as elements. */
function elements(path: Path): PathElement[] {
  const out: PathElement[] = [];
  for (const step of path) {
    if (step.kind === "list_sub") out[out.length - 1] = { ...out[out.length - 1]!, index: step.index };
    else if (step.kind === "map_sub") out[out.length - 1] = { ...out[out.length - 1]!, key: String(step.key) };
    else out.push({ name: step.name });
  }
  return out;
}
