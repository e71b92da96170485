// `npm start`: runs the daemon, building it first only when a source is newer
// than the last build, so a start after install takes no compile (DESIGN §8:
// npm start may build).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const mtime = (path) => {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
};
const newest = (dir) =>
  readdirSync(dir, { withFileTypes: true }).reduce((max, e) => Math.max(max, e.isDirectory() ? newest(join(dir, e.name)) : mtime(join(dir, e.name))), 0);

const run = (...args) => {
  const build = spawnSync(process.execPath, args, { stdio: "inherit" });
  if (build.status !== 0) process.exit(build.status ?? 1);
};
const sources = Math.max(newest("src"), newest("gen"), mtime("tsconfig.json"), mtime("tsconfig.build.json"), mtime("package-lock.json"));
if (sources > mtime("dist/.tsbuildinfo")) run("node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json");
// The web console (console/ and the generated code it uses), built by Vite into dist/console;
// a copy without the console's sources serves the console it was built with.
if (existsSync("console") && Math.max(newest("console"), newest("gen"), mtime("package-lock.json")) > mtime("dist/console/index.html")) {
  run("node_modules/vite/bin/vite.js", "build", "--config", "console/vite.config.ts", "--logLevel", "warn");
}
await import("../dist/src/main.js");
