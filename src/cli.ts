// dynroute's admin CLI: moves mappings between stores, makes backups, and migrates from dynamicproxy.
//   node dist/src/cli.js export [--tenant T]             > mappings.jsonl
//   node dist/src/cli.js import [--tenant T] [--dry-run] < mappings.jsonl
//   node dist/src/cli.js import-frontend --redis URL (--tenant T | --map FILE) [--dry-run]
// The store is the daemon's (MYSQL_URL, else the embedded file in DYNROUTE_DATA_DIR).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createValidator } from "@bufbuild/protovalidate";
import { ConfigError, loadConfig, parseRedisUrl, type Config, type RedisTarget } from "./config/config.js";
import { createLogger } from "./log/logger.js";
import { BackendPolicy } from "./policy/backend-policy.js";
import { openStore, type Store } from "./store/open-store.js";
import { StoreOwnedError } from "./store/sqlite/sqlite-store.js";
import { openRedis } from "./sync/redis-client.js";
import { asMappingLines, parseTenantMap, readFrontendSets, type TenantChoice } from "./transfer/frontend-import.js";
import { exportMappings, importMappings, parseImport, type ParsedImport } from "./transfer/mapping-lines.js";

const USAGE = `usage: node dist/src/cli.js export [--tenant T]             > mappings.jsonl
       node dist/src/cli.js import [--tenant T] [--dry-run] < mappings.jsonl
       node dist/src/cli.js import-frontend --redis redis://host:6379 (--tenant T | --map FILE) [--dry-run]
The store is the daemon's: MYSQL_URL, else the embedded file in DYNROUTE_DATA_DIR (stop that daemon first: it owns the file).
import-frontend copies the frontend:<domain> SETs of a dynamicproxy Redis into the store: each domain goes to the tenant of
the longest matching suffix in FILE (lines "<domain suffix> <tenant>"), else to --tenant; each tenant all or nothing.
--redis takes what REDIS_URL does, the Sentinel form too: redis+sentinel://host1:26379,host2:26379/mymaster[?db=N&…].
`;

const fail = (code: number, message: string): never => {
  process.stderr.write(message.endsWith("\n") ? message : `${message}\n`);
  process.exit(code);
};

const args = parseCommand();
const [command, ...extra] = args.positionals;
if (args.values.help) fail(0, USAGE);
if ((command !== "export" && command !== "import" && command !== "import-frontend") || extra.length > 0) fail(2, USAGE);
if (command === "export" && args.values["dry-run"]) fail(2, `--dry-run goes with import\n${USAGE}`);
if ((args.values.redis !== undefined || args.values.map !== undefined) !== (command === "import-frontend")) fail(2, `--redis and --map go with import-frontend\n${USAGE}`);
if (command === "import-frontend" && args.values.redis === undefined) fail(2, `import-frontend needs --redis\n${USAGE}`);
if (command === "import-frontend" && args.values.tenant === undefined && args.values.map === undefined) fail(2, `import-frontend needs --tenant or --map\n${USAGE}`);
const config = configured();
const choice = command === "import-frontend" ? tenantChoice() : undefined;
const redisSource = command === "import-frontend" ? redisTarget(args.values.redis!) : undefined;
const store = await openConfiguredStore();

const tenant = args.values.tenant;
const dryRun = args.values["dry-run"] ?? false;
const backendRules = { policy: new BackendPolicy(config.backendPolicy), pathless: config.redis.compatFrontend };
let exitCode = 0;
if (command === "export") {
  const write = (line: string) => new Promise<void>((resolve) => (process.stdout.write(line) ? resolve() : process.stdout.once("drain", resolve)));
  const count = await exportMappings(store, write, tenant);
  process.stderr.write(`exported ${count} mapping(s)${tenant ? ` of tenant ${tenant}` : ""}\n`);
} else if (command === "import") {
  const parsed = await parseImport(createInterface({ input: process.stdin, crlfDelay: Infinity }), createValidator(), backendRules, tenant);
  exitCode = await load(parsed, "cli:import", (line) => `line ${line}`);
} else {
  const redis = openRedis(redisSource!, { maxRetriesPerRequest: 1, retryStrategy: () => null, sentinelRetryStrategy: () => null, lazyConnect: true });
  let sets;
  try {
    await redis.connect();
    sets = await readFrontendSets(redis);
  } catch (err) {
    fail(1, `dynroute: cannot read ${args.values.redis}: ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }
  const { lines, domains, unassigned } = asMappingLines(sets!, choice!);
  for (const d of unassigned) process.stderr.write(`frontend:${d}: no tenant (not in the map, no --tenant): not imported\n`);
  process.stderr.write(`read ${sets!.length} frontend set(s) from ${args.values.redis}\n`);
  const parsed = await parseImport(toAsync(lines), createValidator(), backendRules);
  exitCode = Math.max(await load(parsed, "cli:import-frontend", (line) => `frontend:${domains[line - 1]}`), unassigned.length > 0 ? 1 : 0);
}
await store.close();
process.exit(exitCode);

/** Imports each tenant's mappings (or checks, in a dry run); reports; returns the exit code. */
async function load(parsed: ParsedImport, writer: string, where: (line: number) => string): Promise<number> {
  for (const p of parsed.problems) process.stderr.write(`${where(p.line)}${p.tenant ? ` (tenant ${p.tenant}, not imported)` : ""}: ${p.message}\n`);
  // The audit trail names the CLI command as the writer of every imported mapping.
  const outcomes = await importMappings(store, parsed.tenants, dryRun, { keyId: writer, requestId: randomUUID() });
  for (const o of outcomes) {
    process.stderr.write(o.error ? `tenant ${o.tenant}: not imported: ${o.error}\n` : `tenant ${o.tenant}: ${dryRun ? "would import" : "imported"} ${o.created} mapping(s)\n`);
  }
  if (dryRun) process.stderr.write("dry run: nothing was written\n");
  return parsed.problems.length > 0 || outcomes.some((o) => o.error) ? 1 : 0;
}

async function* toAsync(lines: readonly string[]): AsyncIterable<string> {
  yield* lines;
}

function tenantChoice(): TenantChoice {
  try {
    return { suffixes: args.values.map === undefined ? [] : parseTenantMap(readFileSync(args.values.map, "utf8")), fallback: args.values.tenant };
  } catch (err) {
    return fail(2, `dynroute: --map: ${(err as Error).message}`);
  }
}

function parseCommand() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        tenant: { type: "string" },
        "dry-run": { type: "boolean", default: false },
        redis: { type: "string" },
        map: { type: "string" },
        help: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    return fail(2, `${(err as Error).message}\n${USAGE}`);
  }
}

function redisTarget(url: string): RedisTarget {
  try {
    return parseRedisUrl(url, "--redis");
  } catch (err) {
    if (err instanceof ConfigError) fail(2, `dynroute: ${err.message}`);
    throw err;
  }
}

function configured(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(2, `dynroute: configuration error: ${err.message}`);
    throw err;
  }
}

async function openConfiguredStore(): Promise<Store> {
  try {
    const store = openStore(config.store, createLogger("warn", process.stderr));
    await store.ready;
    return store;
  } catch (err) {
    if (err instanceof StoreOwnedError) fail(1, `dynroute: ${err.message}`);
    throw err;
  }
}
