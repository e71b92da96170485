import type { Redis } from "ioredis";

/** Which tenant takes a domain: the longest matching suffix of the map, else the fallback tenant. */
export interface TenantChoice {
  /** Domain suffix (a domain and every name under it) → tenant. */
  suffixes: Array<{ suffix: string; tenant: string }>;
  fallback: string | undefined;
}

/**
 * A tenant map file: one `<domain suffix> <tenant>` per line, `#` comments;
 * `example.org tools` gives example.org and every name under it (wildcards
 * included) to the tenant "tools". Returns the entries, or throws naming the line.
 */
export function parseTenantMap(text: string): TenantChoice["suffixes"] {
  const suffixes: TenantChoice["suffixes"] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") return;
    const parts = line.split(/\s+/);
    if (parts.length !== 2) throw new Error(`map line ${i + 1}: expected "<domain suffix> <tenant>", got "${raw}"`);
    suffixes.push({ suffix: parts[0]!.toLowerCase().replace(/^\*\./, "").replace(/\.$/, ""), tenant: parts[1]! });
  });
  return suffixes;
}

export function tenantFor(domain: string, choice: TenantChoice): string | undefined {
  const name = domain.toLowerCase().replace(/^\*\./, "").replace(/\.$/, "");
  let best: { suffix: string; tenant: string } | undefined;
  for (const s of choice.suffixes) {
    if ((name === s.suffix || name.endsWith(`.${s.suffix}`)) && (!best || s.suffix.length > best.suffix.length)) best = s;
  }
  return best?.tenant ?? choice.fallback;
}

export interface FrontendSet {
  domain: string;
  /** The set's members, sorted (a set has no order; the import's is stable). */
  backends: string[];
}

/**
 * The `frontend:<domain>` SETs of a dynamicproxy (invisible-unicorn) Redis,
 * read with SCAN and SMEMBERS in batches, in domain order.
 */
export async function readFrontendSets(redis: Redis): Promise<FrontendSet[]> {
  const sets: FrontendSet[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", "frontend:*", "COUNT", 1000);
    cursor = next;
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.smembers(key);
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const [err, members] = replies[i] ?? [];
      // Another type under the name (not a set) is reported like any invalid mapping: with no backends.
      sets.push({ domain: key.slice("frontend:".length), backends: err ? [] : [...(members as string[])].sort() });
    });
  } while (cursor !== "0");
  return sets.sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
}

/**
 * The sets as JSON lines in the export format (what `import` reads), each
 * with the tenant chosen for it; domains no tenant takes are returned apart.
 */
export function asMappingLines(sets: readonly FrontendSet[], choice: TenantChoice): { lines: string[]; domains: string[]; unassigned: string[] } {
  const lines: string[] = [];
  const domains: string[] = [];
  const unassigned: string[] = [];
  for (const s of sets) {
    const tenant = tenantFor(s.domain, choice);
    if (tenant === undefined) {
      unassigned.push(s.domain);
      continue;
    }
    lines.push(JSON.stringify({ tenant_id: tenant, domain: s.domain, backends: s.backends }));
    domains.push(s.domain);
  }
  return { lines, domains, unassigned };
}
