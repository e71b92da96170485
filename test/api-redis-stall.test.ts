// A Redis that stops answering on an open connection (a stalled server, a network black hole): each API call that
// reads Redis must still answer within the API's command timeout, the mapping marked not live. The api client
// auto-pipelines, and ioredis sends its next pipeline only once the one in flight has settled: a call made while
// one is out waited for that one's timeout, then its own (up to 3.9 s measured).
import { afterAll, beforeAll, expect, it } from "vitest";
import { freshStore, startTestDaemon, type TestDaemon } from "./harness/daemon.js";
import { waitFor } from "./harness/ports.js";
import { PrivateRedis } from "./harness/redis.js";
import { rest } from "./harness/rest.js";

const BOUND_MS = 2000;
// Timers and a loaded machine; what this guards against was 3.9 s.
const SLACK_MS = 900;

let redis: PrivateRedis;
let daemon: TestDaemon;
beforeAll(async () => {
  redis = await PrivateRedis.start();
  daemon = await startTestDaemon(await freshStore("mysql"), { REDIS_URL: redis.url });
  await daemon.store.ready;
});
afterAll(async () => {
  redis.thaw();
  await daemon.close();
  await redis.destroy();
});

it("answers GETs within the command timeout, not live, while Redis does not answer", async () => {
  expect((await rest(daemon.baseUrl, "PUT", "/v1/t/mapping", { body: { domain: "stall.example.org", backends: ["http://a:1"] } })).status).toBe(201);
  await waitFor("the mapping live", async () => {
    if ((await rest(daemon.baseUrl, "GET", "/v1/t/mapping/stall.example.org")).json.live !== true) throw new Error("not live yet");
  });

  redis.freeze();
  try {
    const answers: Array<Promise<{ status: number; live: unknown; ms: number }>> = [];
    // One GET every 100 ms for a little longer than one timeout: most are asked while an earlier lookup is out.
    for (let i = 0; i < 25; i++) {
      const t0 = performance.now();
      answers.push(rest(daemon.baseUrl, "GET", "/v1/t/mapping/stall.example.org").then((a) => ({ status: a.status, live: a.json?.live, ms: Math.round(performance.now() - t0) })));
      await new Promise((r) => setTimeout(r, 100));
    }
    const got = await Promise.all(answers);
    expect(got.filter((a) => a.status !== 200 || a.live !== false)).toEqual([]);
    expect(Math.max(...got.map((a) => a.ms))).toBeLessThanOrEqual(BOUND_MS + SLACK_MS);
  } finally {
    redis.thaw();
  }
}, 30_000);
