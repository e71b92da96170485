// wrk (apt-get install wrk) as the load generator for the HTTP benchmarks: C, so it leaves
// the 2 cores to the servers under test better than a Node client would.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface WrkResult {
  rps: number;
  /** Milliseconds. */
  p50: number;
  p99: number;
  /** Non-2xx/3xx answers and socket errors. */
  errors: number;
  /** Requests completed. */
  requests: number;
}

export async function assertWrk(): Promise<void> {
  await run("wrk", ["--version"]).catch((err: { code?: string }) => {
    if (err.code === "ENOENT") throw new Error("wrk is not installed: apt-get install wrk");
  });
}

/**
 * Runs wrk against `url` with a Lua `script` body (may be empty) written into `dir`. Requests slower than
 * `timeoutSeconds` (default: wrk's 2 s) count as errors and leave the latency figures, so give slow
 * scenarios a longer one or their p99 is cut off.
 */
export async function wrk(
  url: string,
  opts: { dir: string; name: string; script?: string; seconds: number; connections: number; headers?: Record<string, string>; timeoutSeconds?: number },
): Promise<WrkResult> {
  const file = join(opts.dir, `${opts.name.replace(/\W+/g, "_")}.lua`);
  writeFileSync(
    file,
    `${opts.script ?? ""}
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %d %d %d %d\\n", summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.requests))
end
`,
  );
  const headers = Object.entries(opts.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const timeout = opts.timeoutSeconds === undefined ? [] : ["--timeout", `${opts.timeoutSeconds}s`];
  const { stdout } = await run("wrk", ["-t2", `-c${opts.connections}`, `-d${opts.seconds}s`, ...timeout, ...headers, "-s", file, url], { maxBuffer: 1 << 20 });
  const m = /RESULT (\S+) (\d+) (\d+) (\d+) (\d+)/.exec(stdout);
  if (!m) throw new Error(`unexpected wrk output:\n${stdout}`);
  return { rps: Number(m[1]), p50: Number(m[2]) / 1000, p99: Number(m[3]) / 1000, errors: Number(m[4]), requests: Number(m[5]) };
}
