import { inputError } from "./errors.js";

const labelPart = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/** Parses "key=value,key2=value2" into pairs that must all match. */
export function parseLabelSelector(selector: string, field: string): Array<[string, string]> {
  if (selector.trim() === "") return [];
  return selector.split(",").map((term) => {
    const eq = term.indexOf("=");
    const key = (eq < 0 ? term : term.slice(0, eq)).trim();
    const value = eq < 0 ? "" : term.slice(eq + 1).trim();
    if (eq < 0 || !labelPart.test(key) || (value !== "" && !labelPart.test(value))) {
      throw inputError(field, "label_selector.syntax", `"${term}" is not key=value (letters, digits, '.', '_', '-')`);
    }
    return [key, value];
  });
}
