import { expect } from "vitest";
import type { Redis } from "ioredis";
import { pino } from "pino";
import { createMysqlStore } from "../../src/store/mysql/mysql-store.js";
import type { OutboxStore, RouteChange } from "../../src/store/store.js";
import { waitFor } from "./ports.js";

export interface Layout {
  prefix: string;
  compatFrontend?: boolean;
}

/** What the source of truth holds, read through the store interface (any store). */
type Truth = Pick<OutboxStore, "scanRoutes" | "outboxStats">;

/**
 * Asserts that Redis routes are exactly what the store holds: every mapping
 * is a live route at its revision with its backends, and every other route
 * key is a tombstone; the wildcard index holds the wildcard mappings. With the
 * compatibility layout, frontend sets match too.
 */
export async function assertRedisMatchesStore(truth: Truth, redis: Redis, layout: Layout): Promise<void> {
  expect((await truth.outboxStats()).depth, "outbox rows still waiting").toBe(0);
  const mapped = new Map<string, { rev: string; backends: string[] }>();
  for (let after = 0n; ; ) {
    const rows = await truth.scanRoutes(after, 1000);
    if (rows.length === 0) break;
    for (const r of rows) mapped.set(r.domain, { rev: String(r.revision), backends: r.backends });
    after = rows[rows.length - 1]!.id;
  }

  const routeKeys = await scanAll(redis, `${layout.prefix}route:*`);
  const pipeline = redis.pipeline();
  for (const key of routeKeys) pipeline.hgetall(key);
  const hashes = ((await pipeline.exec()) ?? []).map(([, v]) => v as Record<string, string>);
  const live = new Map<string, { rev: string; backends: string[] }>();
  routeKeys.forEach((key, i) => {
    const h = hashes[i]!;
    const domain = key.slice(`${layout.prefix}route:`.length);
    if (h.deleted === "1") {
      expect(mapped.has(domain), `${domain} is mapped in the store but tombstoned in Redis`).toBe(false);
      expect(h.backends).toBeUndefined();
    } else {
      live.set(domain, { rev: h.rev!, backends: JSON.parse(h.backends!) });
    }
  });
  expect(Object.fromEntries(live)).toEqual(Object.fromEntries(mapped));
  // The wildcard index routers match names against: exactly the live wildcard routes.
  const index = await redis.hgetall(`${layout.prefix}wildcards`);
  const wildcards = [...mapped].filter(([domain]) => domain.startsWith("*."));
  expect(Object.fromEntries(Object.entries(index).map(([d, b]) => [d, JSON.parse(b)]))).toEqual(Object.fromEntries(wildcards.map(([d, { backends }]) => [d, backends])));

  if (layout.compatFrontend) {
    const sets = await scanAll(redis, `${layout.prefix}frontend:*`);
    expect(sets.map((k) => k.slice(`${layout.prefix}frontend:`.length)).sort()).toEqual([...mapped.keys()].sort());
    for (const [domain, { backends }] of mapped) expect((await redis.smembers(`${layout.prefix}frontend:${domain}`)).sort()).toEqual([...backends].sort());
  }
}

/**
 * A route's hash as routers read it: without the stamp a reconciliation adds
 * ("seen"), which any periodic or startup run may write between two reads.
 */
export async function routeHash(redis: Redis, key: string): Promise<Record<string, string>> {
  const { seen: _seen, ...route } = await redis.hgetall(key);
  return route;
}

/** Retries the assertion until the relay has caught up (or the timeout). */
export function eventuallyRedisMatchesStore(truth: Truth, redis: Redis, layout: Layout, timeoutMs = 20_000): Promise<void> {
  return waitFor("Redis to match the store", () => assertRedisMatchesStore(truth, redis, layout), timeoutMs);
}

/** The same, for a MySQL database that daemons in other processes use. */
export async function eventuallyRedisMatchesMySQL(mysqlUrl: string, redis: Redis, layout: Layout, timeoutMs = 20_000): Promise<void> {
  const store = createMysqlStore({ url: mysqlUrl, logger: pino({ level: "silent" }) });
  try {
    await store.ready;
    await eventuallyRedisMatchesStore(store, redis, layout, timeoutMs);
  } finally {
    await store.close();
  }
}

/** The changes waiting in the outbox, oldest first, left in place (the apply fails, so nothing is deleted). */
export async function peekOutbox(store: OutboxStore): Promise<RouteChange[]> {
  let seen: RouteChange[] = [];
  const peeked = new Error("peeked");
  await store
    .drainOutbox(100_000, async (changes) => {
      seen = changes;
      throw peeked;
    })
    .catch((err: unknown) => {
      if (err !== peeked) throw err;
    });
  return seen;
}

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}
