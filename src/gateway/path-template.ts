/**
 * google.api.http path templates: literal segments, `{field.path}` (one
 * segment, same as `{field.path=*}`) and `{field.path=**}` (the rest of the
 * path, slashes included). Enough for our rules; anything else is rejected
 * when the routes are built, not at request time.
 */
export type Segment = { literal: string } | { variable: string; rest: boolean };

export interface PathTemplate {
  source: string;
  segments: Segment[];
}

export function parsePathTemplate(source: string): PathTemplate {
  if (!source.startsWith("/")) throw new Error(`path template ${source}: must start with /`);
  const segments = source
    .slice(1)
    .split("/")
    .map((part, i, all): Segment => {
      const m = /^\{([a-z_][a-z0-9_.]*)(?:=(\*\*?))?\}$/.exec(part);
      if (!m) {
        if (/[{}*:]/.test(part) || part === "") throw new Error(`path template ${source}: unsupported segment "${part}"`);
        return { literal: part };
      }
      const rest = m[2] === "**";
      if (rest && i !== all.length - 1) throw new Error(`path template ${source}: ** only as the last segment`);
      return { variable: m[1]!, rest };
    });
  return { source, segments };
}

/** A request path (still percent-encoded) as matchPath takes it: split once per request, not once per route. */
export const pathParts = (path: string): string[] => path.slice(1).split("/");

/**
 * Matches a request path's parts (see pathParts) against a template and
 * returns the decoded variables, or undefined when it does not match.
 * Throws URIError for malformed percent-encoding.
 */
export function matchPath(template: PathTemplate, parts: readonly string[]): Map<string, string> | undefined {
  const { segments } = template;
  if (parts.length < segments.length) return undefined;
  // Literals first: most routes fail on one, before any variable is decoded.
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if ("literal" in seg && parts[i] !== seg.literal) return undefined;
  }
  const vars = new Map<string, string>();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if ("literal" in seg) continue;
    const value = seg.rest ? parts.slice(i).join("/") : parts[i];
    if (value === undefined || value === "") return undefined;
    vars.set(seg.variable, seg.rest ? value.split("/").map(decodeURIComponent).join("/") : decodeURIComponent(value));
    if (seg.rest) return vars;
  }
  return parts.length === segments.length ? vars : undefined;
}

/** Fills a template's variables (percent-encoding each value) from `valueOf`. */
export function expandPath(template: PathTemplate, valueOf: (variable: string) => string): string {
  return (
    "/" +
    template.segments
      .map((seg) => ("literal" in seg ? seg.literal : valueOf(seg.variable).split("/").map(encodeURIComponent).join(seg.rest ? "/" : "%2F")))
      .join("/")
  );
}
