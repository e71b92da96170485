import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { LOOPBACK_ALLOWED } from "./daemon.js";

export interface DaemonProcess {
  proc: ChildProcess;
  baseUrl: string;
  lines: string[];
  exited: Promise<number | null>;
}

/** Runs the built daemon (dist/) as its own process and waits until it listens. */
export async function spawnDaemon(env: Record<string, string>): Promise<DaemonProcess> {
  const proc = spawn(process.execPath, ["dist/src/main.js"], {
    env: { PATH: process.env.PATH ?? "", DYNROUTE_ADDR: "127.0.0.1:0", ...LOOPBACK_ALLOWED, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const exited = once(proc, "exit").then(([code]) => code as number | null);
  createInterface({ input: proc.stderr! }).on("line", (l) => lines.push(l));
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on("line", (l) => {
      lines.push(l);
      const m = /listening on https?:\/\/[^ ]+:(\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    exited.then((code) => reject(new Error(`daemon exited with ${code} before listening:\n${lines.join("\n")}`)));
  });
  return { proc, baseUrl: `http://127.0.0.1:${port}`, lines, exited };
}

/** Runs the daemon to completion (for startup failures). */
export async function runDaemon(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, ["dist/src/main.js"], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(proc, "exit");
  return { code: code as number | null, stdout, stderr };
}
