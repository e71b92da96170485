// dynroute's admin CLI: moves mappings between stores and makes backups.
//   node dist/src/cli.js export [--tenant T]             > mappings.jsonl
//   node dist/src/cli.js import [--tenant T] [--dry-run] < mappings.jsonl
// The store is the daemon's (MYSQL_URL, else the embedded file in DYNROUTE_DATA_DIR).
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createValidator } from "@bufbuild/protovalidate";
import { ConfigError, loadConfig, type Config } from "./config/config.js";
import { createLogger } from "./log/logger.js";
import { openStore, type Store } from "./store/open-store.js";
import { StoreOwnedError } from "./store/sqlite/sqlite-store.js";
import { exportMappings, importMappings, parseImport } from "./transfer/mapping-lines.js";

const USAGE = `usage: node dist/src/cli.js export [--tenant T]             > mappings.jsonl
       node dist/src/cli.js import [--tenant T] [--dry-run] < mappings.jsonl
The store is the daemon's: MYSQL_URL, else the embedded file in DYNROUTE_DATA_DIR (stop that daemon first: it owns the file).
`;

const fail = (code: number, message: string): never => {
  process.stderr.write(message.endsWith("\n") ? message : `${message}\n`);
  process.exit(code);
};

const args = parseCommand();
const [command, ...extra] = args.positionals;
if (args.values.help) fail(0, USAGE);
if ((command !== "export" && command !== "import") || extra.length > 0) fail(2, USAGE);
if (command === "export" && args.values["dry-run"]) fail(2, `--dry-run goes with import\n${USAGE}`);
const config = loadConfiguration();
const store = await openConfiguredStore();

const tenant = args.values.tenant;
let exitCode = 0;
if (command === "export") {
  const write = (line: string) => new Promise<void>((resolve) => (process.stdout.write(line) ? resolve() : process.stdout.once("drain", resolve)));
  const count = await exportMappings(store, write, tenant);
  process.stderr.write(`exported ${count} mapping(s)${tenant ? ` of tenant ${tenant}` : ""}\n`);
} else {
  const dryRun = args.values["dry-run"] ?? false;
  const parsed = await parseImport(createInterface({ input: process.stdin, crlfDelay: Infinity }), createValidator(), { pathless: config.redis.compatFrontend }, tenant);
  for (const p of parsed.problems) process.stderr.write(`line ${p.line}${p.tenant ? ` (tenant ${p.tenant}, not imported)` : ""}: ${p.message}\n`);
  const outcomes = await importMappings(store, parsed.tenants, dryRun);
  for (const o of outcomes) {
    process.stderr.write(o.error ? `tenant ${o.tenant}: not imported: ${o.error}\n` : `tenant ${o.tenant}: ${dryRun ? "would import" : "imported"} ${o.created} mapping(s)\n`);
  }
  if (parsed.problems.length > 0 || outcomes.some((o) => o.error)) exitCode = 1;
  if (dryRun) process.stderr.write("dry run: nothing was written\n");
}
await store.close();
process.exit(exitCode);

function parseCommand() {
  try {
    return parseArgs({ allowPositionals: true, options: { tenant: { type: "string" }, "dry-run": { type: "boolean", default: false }, help: { type: "boolean", default: false } } });
  } catch (err) {
    return fail(2, `${(err as Error).message}\n${USAGE}`);
  }
}

function loadConfiguration(): Config {
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
