// An open-loop load generator, run as a process of its own so it shares no event loop with the
// measuring side: PUTs new mappings at a fixed rate on schedule, whether or not earlier ones were
// answered, over many keep-alive connections, with every request body made before the clock starts.
// Prints one JSON object to stdout: for each write its domain, scheduled send time, answer time
// (both epoch ms, comparable with another process's on this host) and HTTP status, and how late
// the sends were against the schedule.
//   node dist/bench/open-loop.js <base URL> <token> <writes/s> <seconds> <connections> <domain prefix>
import http from "node:http";

const [base, token, rateArg, secondsArg, connectionsArg, prefix] = process.argv.slice(2);
const rate = Number(rateArg);
const total = Math.round(rate * Number(secondsArg));
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(connectionsArg) });
const url = new URL("/v1/bench/mapping", base);
const epoch = () => performance.timeOrigin + performance.now();

const domains = Array.from({ length: total }, (_, i) => `${prefix}${i}.bench.example`);
const bodies = domains.map((domain) => Buffer.from(JSON.stringify({ domain, backends: ["http://a:1"] })));
const due = new Float64Array(total);
const acked = new Float64Array(total);
const status = new Uint16Array(total);
let lateMax = 0;
let answered = 0;

function send(i: number): void {
  const req = http.request(url, {
    method: "PUT",
    agent,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": bodies[i]!.length },
  });
  req.on("response", (res) => {
    res.resume();
    res.on("end", () => finish(i, res.statusCode ?? 0));
  });
  req.on("error", () => finish(i, 0));
  req.end(bodies[i]);
}

function finish(i: number, code: number): void {
  acked[i] = epoch();
  status[i] = code;
  if (++answered === total) report();
}

function report(): void {
  agent.destroy();
  const writes = domains.map((d, i) => [d, due[i], acked[i], status[i]]);
  process.stdout.write(JSON.stringify({ lateMaxMs: lateMax, writes }) + "\n");
}

// Sends everything due at each tick of a 1 ms timer; a send is timed from its schedule, not from the tick.
const start = epoch() + 200;
for (let i = 0; i < total; i++) due[i] = start + (i * 1000) / rate;
let next = 0;
const tick = setInterval(() => {
  const now = epoch();
  while (next < total && due[next]! <= now) {
    lateMax = Math.max(lateMax, now - due[next]!);
    send(next++);
  }
  if (next === total) clearInterval(tick);
}, 1);
