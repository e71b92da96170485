/** One broken rule: `field` is a path like "mapping.backends[0]". */
export interface FieldViolation {
  field: string;
  ruleId: string;
  message: string;
}

/** Request values that break rules (from the proto annotations or from code). */
export class InputError extends Error {
  override name = "InputError";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.message}`).join("; "));
  }
}

export const inputError = (field: string, ruleId: string, message: string) => new InputError([{ field, ruleId, message }]);
