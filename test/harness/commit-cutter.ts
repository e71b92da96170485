import { connect, createServer, type Server, type Socket } from "node:net";

/** A COM_QUERY (0x03) that commits: COMMIT alone, or last in a batch of statements (as the store sends writes). */
const commits = (payload: Buffer) => payload[0] === 0x03 && /(^|;\s*)COMMIT$/.test(payload.subarray(1).toString("latin1"));

/**
 * A TCP proxy in front of MariaDB that loses the answer to chosen COMMITs:
 * it passes the COMMIT on, and when the server's answer comes back it cuts
 * the connection instead of delivering it. The transaction is committed, but
 * the client only sees its connection die: the fault that makes a blind retry
 * apply a write twice.
 */
export class CommitCutter {
  /** COMMITs whose answer was cut. */
  cut = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** `shouldCut` is asked for every COMMIT, in order. */
  static async start(target: { host: string; port: number }, shouldCut: () => boolean): Promise<CommitCutter> {
    let cutter: CommitCutter | undefined;
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      for (const s of [client, upstream]) {
        cutter!.sockets.add(s);
        s.on("close", () => cutter!.sockets.delete(s));
        s.on("error", () => undefined);
      }
      let pending = Buffer.alloc(0);
      let cutNextAnswer = false;
      client.on("data", (chunk) => {
        // MySQL packets: 3-byte little-endian length, sequence byte, payload.
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 4 && pending.length >= 4 + pending.readUIntLE(0, 3)) {
          const size = pending.readUIntLE(0, 3);
          if (commits(pending.subarray(4, 4 + size)) && shouldCut()) cutNextAnswer = true;
          pending = pending.subarray(4 + size);
        }
        upstream.write(chunk);
      });
      upstream.on("data", (chunk) => {
        if (!cutNextAnswer) return void client.write(chunk);
        cutter!.cut++;
        client.destroy();
        upstream.destroy();
      });
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cutter = new CommitCutter(server, (server.address() as { port: number }).port);
    return cutter;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
