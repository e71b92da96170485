/**
 * Collects what is added during one turn of the event loop and hands it over
 * as one batch in that turn's check phase (setImmediate): after the poll phase
 * has read every request that was ready, so calls made by requests that
 * arrived together are run together.
 */
export class TurnBatch<T> {
  private items: T[] | undefined;

  constructor(private readonly run: (items: T[]) => void) {}

  add(item: T): void {
    if (this.items) {
      this.items.push(item);
      return;
    }
    const items = (this.items = [item]);
    setImmediate(() => {
      this.items = undefined;
      this.run(items);
    });
  }
}
