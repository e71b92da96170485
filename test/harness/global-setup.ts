import type { TestProject } from "vitest/node";
import { PrivateMariaDb } from "./mariadb.js";
import { PrivateRedis } from "./redis.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Server URL without a database; each test file creates its own. */
    mysqlAdminUrl: string;
    /** Shared by the run; every test daemon uses a key prefix of its own. */
    redisUrl: string;
  }
}

/**
 * One MariaDB and one Redis for the run: MYSQL_URL's and REDIS_URL's servers
 * when given, else private ones. Fault tests start their own.
 */
export default async function setup(project: TestProject) {
  const cleanup: Array<() => Promise<void>> = [];
  if (process.env.MYSQL_URL) {
    const url = new URL(process.env.MYSQL_URL);
    url.pathname = "/";
    project.provide("mysqlAdminUrl", url.toString());
  } else {
    const db = await PrivateMariaDb.start();
    cleanup.push(() => db.destroy());
    project.provide("mysqlAdminUrl", db.adminUrl);
  }
  if (process.env.REDIS_URL) {
    project.provide("redisUrl", process.env.REDIS_URL);
  } else {
    const redis = await PrivateRedis.start();
    cleanup.push(() => redis.destroy());
    project.provide("redisUrl", redis.url);
  }
  return async () => {
    for (const c of cleanup) await c();
  };
}
