/** Runs a task once fewer than the gate's limit run, in the order the tasks came. */
export type Gate = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * libuv accepts one connection per event-loop turn, and a turn runs every callback that is ready. With
 * many costly calls in flight, each turn runs all of their ready parts, so a new connection waits one
 * whole round of them per connection queued ahead of it: at 50 connections asking for 500-mapping pages,
 * some waited 7 s in the listen queue while others were answered every 0.5 s. A gate bounds how many
 * run at once and starts a waiting task a turn later (setImmediate), so the poll phase (accepting,
 * reading) runs between them and turns stay short.
 */
export function fifoGate(limit: number): Gate {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) setImmediate(next);
    else running--;
  };
  return async (task) => {
    if (running < limit) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      release();
    }
  };
}
