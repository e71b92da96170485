// The baselines bench/http.ts compares the daemon with, each in its own process:
//   static   node:http answering the mapping as JSON (serialised per request): the ceiling.
//   same-io  node:http doing the I/O a GET must do (one SELECT by domain, one Redis HGET)
//            with no framework, routing, auth, validation or logging: what our own code adds shows
//            as the distance to it.
// Both parse a request body when there is one. Env: MODE, PORT, MAPPING (JSON), MYSQL_URL, REDIS_URL, ROUTE_PREFIX.
import http from "node:http";
import { Redis } from "ioredis";
import { createPool, type RowDataPacket } from "mysql2/promise";

const mapping = JSON.parse(process.env.MAPPING!) as { domain: string };
const port = Number(process.env.PORT);

if (process.env.MODE === "static") {
  serve(async () => mapping);
} else {
  const pool = createPool({ uri: process.env.MYSQL_URL!, connectionLimit: 10, trace: false });
  const redis = new Redis(process.env.REDIS_URL!);
  serve(async () => {
    const [rows] = await pool.query<RowDataPacket[]>("SELECT * FROM mappings WHERE domain = ?", [mapping.domain]);
    const rev = await redis.hget(`${process.env.ROUTE_PREFIX ?? ""}route:${mapping.domain}`, "rev");
    return { ...rows[0], backends: JSON.parse(rows[0]!.backends), live: rev !== null };
  });
}

function serve(answer: () => Promise<unknown>) {
  http
    .createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (chunks.length > 0) JSON.parse(Buffer.concat(chunks).toString());
        answer().then((value) => {
          const body = JSON.stringify(value);
          res.writeHead(req.method === "PUT" ? 201 : 200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
          res.end(body);
        });
      });
    })
    .listen(port, "127.0.0.1");
}
