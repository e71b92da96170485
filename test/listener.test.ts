import { expect, it } from "vitest";
import { listen } from "../src/server/listener.js";

it("claims the port before the daemon is wired: JSON 503 with Retry-After until serve, then the handler", async () => {
  const listener = await listen({ host: "127.0.0.1", port: 0 });
  try {
    const url = `http://127.0.0.1:${listener.address.port}/v1/x/mapping`;
    const early = await fetch(url);
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("1");
    expect(await early.json()).toEqual({ code: "unavailable", message: "the daemon is starting; retry shortly", details: [] });
    listener.serve((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("wired");
    });
    expect(await (await fetch(url)).text()).toBe("wired");
  } finally {
    await listener.close(100);
  }
});
