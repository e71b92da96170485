import { inputError } from "../domain/errors.js";

/** One entity tag of a conditional header (RFC 9110 §8.8.3): `"17"` or `W/"17"`. */
export interface EntityTag {
  weak: boolean;
  opaque: string;
}

// entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text. A comma may sit inside a tag.
const TAG = /[ \t]*(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"[ \t]*(?:,|$)/y;
const EMPTY_ELEMENT = /[ \t]*,/y;

/**
 * Parses If-Match or If-None-Match: `*` or a list of entity tags (empty list
 * elements allowed, as in every HTTP list). Throws an InputError naming the
 * header when the value is not that.
 */
export function parseEntityTags(value: string, header: string): "*" | EntityTag[] {
  if (value.trim() === "*") return "*";
  const tags: EntityTag[] = [];
  let at = 0;
  while (at < value.length) {
    EMPTY_ELEMENT.lastIndex = at;
    if (EMPTY_ELEMENT.test(value)) {
      at = EMPTY_ELEMENT.lastIndex;
      continue;
    }
    TAG.lastIndex = at;
    const m = TAG.exec(value);
    if (!m || m[0] === "") {
      if (value.slice(at).trim() === "") break;
      throw inputError(header, "entity_tag.syntax", 'must be * or a list of entity tags, e.g. "17" or W/"17"');
    }
    tags.push({ weak: m[1] !== undefined, opaque: m[2]! });
    at = TAG.lastIndex;
  }
  if (tags.length === 0) throw inputError(header, "entity_tag.syntax", 'must be * or a list of entity tags, e.g. "17" or W/"17"');
  return tags;
}

const MAX_REVISION = 2n ** 64n - 1n;

/**
 * The revisions an If-Match list can match. If-Match compares strongly, so
 * weak tags never match; a well-formed tag this API never issues (not a
 * revision) never matches either.
 */
export function strongRevisions(tags: readonly EntityTag[]): string[] {
  return tags.filter((t) => !t.weak && /^(0|[1-9]\d{0,19})$/.test(t.opaque) && BigInt(t.opaque) <= MAX_REVISION).map((t) => t.opaque);
}

/** If-None-Match: weak comparison, so `W/"17"` names the same as `"17"`. */
export function noneMatch(tags: "*" | readonly EntityTag[], etag: string): boolean {
  return tags !== "*" && !tags.some((t) => `"${t.opaque}"` === etag);
}
