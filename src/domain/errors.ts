/** One step of a field path: a field and, inside a list or a map, which element. */
export interface PathElement {
  name: string;
  index?: number;
  key?: string;
}

/** A field path: elements, or the dotted field names code writes ("mapping.domain"; never with subscripts). */
export type FieldRef = string | readonly PathElement[];

/** One broken rule at a field path. */
export interface FieldViolation {
  path: readonly PathElement[];
  ruleId: string;
  message: string;
}

/** Request values that break rules (from the proto annotations or from code). */
export class InputError extends Error {
  override name = "InputError";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${pathText(v.path)}: ${v.message}`).join("; "));
  }
}

export const toPath = (field: FieldRef): readonly PathElement[] => (typeof field === "string" ? field.split(".").map((name) => ({ name })) : field);

/** The path of element `index` of the list at `field`. */
export function elementOf(field: FieldRef, index: number): PathElement[] {
  const path = [...toPath(field)];
  path[path.length - 1] = { ...path[path.length - 1]!, index };
  return path;
}

/** A path as people read it: mapping.backends[1], labels["env"]. */
export const pathText = (path: readonly PathElement[]): string =>
  path.map((e) => e.name + (e.index !== undefined ? `[${e.index}]` : e.key !== undefined ? `[${JSON.stringify(e.key)}]` : "")).join(".");

export const inputError = (field: FieldRef, ruleId: string, message: string) => new InputError([{ path: toPath(field), ruleId, message }]);
