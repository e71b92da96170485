import { once } from "node:events";
import net, { type AddressInfo } from "node:net";
import { expect, it } from "vitest";
import { fifoGate } from "../src/service/fifo-gate.js";

it("runs at most its limit of tasks at once, starting waiting ones in the order they came", async () => {
  const gate = fifoGate(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const task = (n: number) => async () => {
    started.push(n);
    most = Math.max(most, ++running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    running--;
    if (n === 3) throw new Error("three fails");
    return n;
  };
  const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((n) => gate(task(n))));
  expect(started).toEqual([1, 2, 3, 4, 5, 6]);
  expect(most).toBe(2);
  // A failed task gives its place back like any other.
  expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([1, 2, "three fails", 4, 5, 6]);
});

it("lets the event loop poll between a finished task and the next, so sockets are read (and connections accepted) in between", async () => {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const client = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
  const [accepted] = (await once(server, "connection")) as [net.Socket];
  try {
    const order: string[] = [];
    accepted.on("data", () => order.push("socket read"));
    const gate = fifoGate(1);
    // From a timer, so the poll phase comes next: the data the first task sends is ready when it ends.
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        void gate(async () => {
          client.write("x");
          order.push("first");
        });
        void gate(async () => {
          order.push("second");
          resolve();
        });
      }, 0),
    );
    expect(order).toEqual(["first", "socket read", "second"]);
  } finally {
    client.destroy();
    accepted.destroy();
    server.close();
  }
});
