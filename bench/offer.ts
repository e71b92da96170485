// Runs bench/open-loop.ts in a process of its own and reads what it reports: the one place that
// knows the generator's command line and output, for every benchmark that offers load with it.
import { spawn } from "node:child_process";
import { once } from "node:events";

/** One create: its domain, scheduled send and answer (epoch ms, comparable with this process's), HTTP status. */
export type OfferedWrite = [domain: string, due: number, acked: number, status: number];

export interface Offered {
  writes: OfferedWrite[];
  /** The writes answered 201. */
  ok: OfferedWrite[];
  /** The others, counted by status (0: no answer, the connection failed), e.g. ", 1 answered 503"; "" when none. */
  others: string;
  /** 201s per second, from the first scheduled send to the last answer. */
  doneRate: number;
  /** Of the 201s: scheduled send → answer, ms, ascending. */
  answerMs: number[];
  /** How far the generator's sends fell behind its schedule at worst. */
  lateMaxMs: number;
}

/** Offers `rate` REST creates/s for `seconds` to the daemon at `base`; resolves once every one was answered. */
export async function offerCreates(base: string, token: string, rate: number, seconds: number, connections: number, prefix: string): Promise<Offered> {
  const gen = spawn(process.execPath, ["dist/bench/open-loop.js", base, token, String(rate), String(seconds), String(connections), prefix], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  gen.stdout!.on("data", (d) => (out += d));
  // "close", not "exit": only then has all of its stdout been read.
  const [code] = (await once(gen, "close")) as [number | null];
  if (code !== 0) throw new Error(`bench/open-loop.js exited with ${code}`);
  const { lateMaxMs, writes } = JSON.parse(out) as { lateMaxMs: number; writes: OfferedWrite[] };
  const ok = writes.filter(([, , , status]) => status === 201);
  const lastAnswer = writes.reduce((m, [, , acked]) => Math.max(m, acked), 0);
  const counts = new Map<number, number>();
  for (const [, , , status] of writes) if (status !== 201) counts.set(status, (counts.get(status) ?? 0) + 1);
  return {
    writes,
    ok,
    others: [...counts].map(([status, n]) => `, ${n} answered ${status === 0 ? "nothing (connection failed)" : status}`).join(""),
    doneRate: ok.length / ((lastAnswer - writes[0]![1]) / 1000),
    answerMs: ok.map(([, due, acked]) => acked - due).sort((a, b) => a - b),
    lateMaxMs,
  };
}
