import { expect } from "vitest";
import type { Redis } from "ioredis";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { waitFor } from "./ports.js";

export interface Layout {
  prefix: string;
  compatFrontend?: boolean;
}

/**
 * Asserts that Redis routes are exactly what MySQL holds: every mapping is a
 * live route at its revision with its backends, and every other route key is
 * a tombstone. With the compatibility layout, frontend sets match too.
 */
export async function assertRedisMatchesMySQL(mysqlUrl: string, redis: Redis, layout: Layout): Promise<void> {
  const conn = await createConnection({ uri: mysqlUrl, supportBigNumbers: true, bigNumberStrings: true });
  const [rows] = await conn.query<RowDataPacket[]>("SELECT domain, backends, revision FROM mappings");
  const [[pending]] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM outbox");
  await conn.end();
  expect(Number(pending!.n), "outbox rows still waiting").toBe(0);

  const mapped = new Map(rows.map((r) => [r.domain as string, { rev: String(r.revision), backends: JSON.parse(r.backends) as string[] }]));
  const routeKeys = await scanAll(redis, `${layout.prefix}route:*`);
  const pipeline = redis.pipeline();
  for (const key of routeKeys) pipeline.hgetall(key);
  const hashes = ((await pipeline.exec()) ?? []).map(([, v]) => v as Record<string, string>);
  const live = new Map<string, { rev: string; backends: string[] }>();
  routeKeys.forEach((key, i) => {
    const h = hashes[i]!;
    const domain = key.slice(`${layout.prefix}route:`.length);
    if (h.deleted === "1") {
      expect(mapped.has(domain), `${domain} is mapped in MySQL but tombstoned in Redis`).toBe(false);
      expect(h.backends).toBeUndefined();
    } else {
      live.set(domain, { rev: h.rev!, backends: JSON.parse(h.backends!) });
    }
  });
  expect(Object.fromEntries(live)).toEqual(Object.fromEntries(mapped));

  if (layout.compatFrontend) {
    const sets = await scanAll(redis, `${layout.prefix}frontend:*`);
    expect(sets.map((k) => k.slice(`${layout.prefix}frontend:`.length)).sort()).toEqual([...mapped.keys()].sort());
    for (const [domain, { backends }] of mapped) expect((await redis.smembers(`${layout.prefix}frontend:${domain}`)).sort()).toEqual([...backends].sort());
  }
}

/** Retries the assertion until the relay has caught up (or the timeout). */
export function eventuallyRedisMatchesMySQL(mysqlUrl: string, redis: Redis, layout: Layout, timeoutMs = 20_000): Promise<void> {
  return waitFor("Redis to match MySQL", () => assertRedisMatchesMySQL(mysqlUrl, redis, layout), timeoutMs);
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
