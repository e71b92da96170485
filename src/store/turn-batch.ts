/** One call in a batch: what it asked for, and how to answer it. */
export interface BatchedCall<T, R> {
  readonly input: T;
  resolve(value: R): void;
  reject(err: unknown): void;
}

/**
 * Collects the calls made during one turn of the event loop and hands them
 * over as one batch in that turn's check phase (setImmediate): after the poll
 * phase has read every request that was ready, so calls made by requests that
 * arrived together are run together. `run` answers each call.
 */
export class TurnBatch<T, R> {
  private calls: BatchedCall<T, R>[] | undefined;

  constructor(private readonly run: (calls: BatchedCall<T, R>[]) => void) {}

  /** The answer to `input`, once its batch has run. */
  call(input: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const call = { input, resolve, reject };
      if (this.calls) {
        this.calls.push(call);
        return;
      }
      const calls = (this.calls = [call]);
      setImmediate(() => {
        this.calls = undefined;
        this.run(calls);
      });
    });
  }
}
