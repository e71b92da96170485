import { inputError } from "./errors.js";

/**
 * One term of a label selector, as Kubernetes defines them: `in` (`k=v`,
 * `k==v`, `k in (a,b)`) needs the label with one of the values; `notin`
 * (`k!=v`, `k notin (a,b)`) matches mappings without the label too;
 * `exists` (`k`) and `absent` (`!k`) test the key alone.
 */
export type LabelRequirement = { key: string; op: "in" | "notin"; values: string[] } | { key: string; op: "exists" | "absent" };

const LABEL_PART = "[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?";
// Tokens: a word (key or value), an operator, a parenthesis or a comma; whitespace between them.
const TOKEN = /\s*(==|!=|=|!|\(|\)|,|[^\s=!(),]+)/y;
const KEY = new RegExp(`^${LABEL_PART}$`);
const VALUE = new RegExp(`^(?:${LABEL_PART})?$`);

/**
 * Parses a comma-separated label selector in Kubernetes syntax; all terms
 * must hold. "" selects everything.
 */
export function parseLabelSelector(selector: string, field: string): LabelRequirement[] {
  const tokens = tokenize(selector, field);
  const fail = (why: string): never => {
    throw inputError(field, "label_selector.syntax", `${why}; use k=v, k==v, k!=v, k in (a,b), k notin (a,b), k or !k, joined by commas`);
  };
  const requirements: LabelRequirement[] = [];
  let at = 0;
  const next = () => tokens[at++];
  const peek = () => tokens[at];
  const key = (t: string | undefined) => (t !== undefined && KEY.test(t) ? t : fail(`"${t ?? ""}" is not a label key`));
  const value = (t: string | undefined) => (t !== undefined && VALUE.test(t) && !["(", ")", ","].includes(t) ? t : fail(`"${t ?? ""}" is not a label value`));

  while (at < tokens.length) {
    if (peek() === "!") {
      next();
      requirements.push({ key: key(next()), op: "absent" });
    } else {
      const k = key(next());
      const op = peek();
      if (op === undefined || op === ",") requirements.push({ key: k, op: "exists" });
      else if (op === "=" || op === "==" || op === "!=") {
        next();
        // An empty value (k= or k!=) names a label set to "".
        const v = peek() === undefined || peek() === "," ? "" : value(next());
        requirements.push({ key: k, op: op === "!=" ? "notin" : "in", values: [v] });
      } else if (op === "in" || op === "notin") {
        next();
        if (next() !== "(") fail(`${op} needs a list in parentheses`);
        const values: string[] = [];
        for (;;) {
          values.push(peek() === "," || peek() === ")" ? "" : value(next()));
          const t = next();
          if (t === ")") break;
          if (t !== ",") fail(`the list after ${op} is not closed`);
        }
        requirements.push({ key: k, op, values: [...new Set(values)] });
      } else fail(`"${op}" is not an operator`);
    }
    if (at < tokens.length && next() !== ",") fail("terms must be separated by commas");
    if (at === tokens.length && tokens[tokens.length - 1] === ",") fail("a comma must be followed by a term");
  }
  return requirements;
}

function tokenize(selector: string, field: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < selector.length) {
    if (/^\s*$/.test(selector.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(selector);
    if (!m) throw inputError(field, "label_selector.syntax", "is not a label selector");
    tokens.push(m[1]!);
  }
  return tokens;
}
