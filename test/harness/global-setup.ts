import type { TestProject } from "vitest/node";
import { PrivateMariaDb } from "./mariadb.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Server URL without a database; each test file creates its own. */
    mysqlAdminUrl: string;
  }
}

/** One MariaDB for the run: MYSQL_URL's server when given, else a private one. */
export default async function setup(project: TestProject) {
  if (process.env.MYSQL_URL) {
    const url = new URL(process.env.MYSQL_URL);
    url.pathname = "/";
    project.provide("mysqlAdminUrl", url.toString());
    return;
  }
  const db = await PrivateMariaDb.start();
  project.provide("mysqlAdminUrl", db.adminUrl);
  return () => db.destroy();
}
