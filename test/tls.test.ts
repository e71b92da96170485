import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MappingService } from "../gen/dynroute/v1/mapping_pb.js";
import { freshStore, startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";

const run = promisify(execFile);
let dir: string;
let daemon: TestDaemon;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dynroute-tls-"));
  await run("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ]);
  daemon = await startTestDaemon(await freshStore("mysql"), {
    DYNROUTE_TLS_CERT: join(dir, "cert.pem"),
    DYNROUTE_TLS_KEY: join(dir, "key.pem"),
  });
  await daemon.store.ready;
});
afterAll(async () => {
  await daemon.close();
  rmSync(dir, { recursive: true, force: true });
});

const auth: Interceptor = (next) => (req) => {
  req.header.set("authorization", `Bearer ${TOKEN}`);
  return next(req);
};

it("serves gRPC over h2 and Connect and gRPC-Web over HTTP/1.1 on the TLS port", async () => {
  const baseUrl = `https://127.0.0.1:${daemon.app.listener.address.port}`;
  const nodeOptions = { ca: readFileSync(join(dir, "cert.pem")) };
  const grpc = createClient(MappingService, createGrpcTransport({ baseUrl, nodeOptions, interceptors: [auth] }));
  const connect = createClient(MappingService, createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions, interceptors: [auth] }));
  const grpcWeb = createClient(MappingService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1", nodeOptions, interceptors: [auth] }));
  await grpc.createMapping({ tenantId: "tls", mapping: { domain: "secure.example.org", backends: ["https://a:443"] } });
  expect((await connect.getMapping({ tenantId: "tls", domain: "secure.example.org" })).mapping!.backends).toEqual(["https://a:443"]);
  expect((await grpcWeb.listMappings({ tenantId: "tls" })).mappings).toHaveLength(1);
});

it("works with buf curl verifying the certificate", async () => {
  const { stdout } = await run("node_modules/.bin/buf", [
    "curl", "--schema", "proto", "--protocol", "grpc", "--cacert", join(dir, "cert.pem"),
    "-H", `Authorization: Bearer ${TOKEN}`, "-d", '{"tenant_id":"tls"}',
    `https://127.0.0.1:${daemon.app.listener.address.port}/dynroute.v1.MappingService/ListMappings`,
  ]);
  expect(JSON.parse(stdout).mappings[0].domain).toBe("secure.example.org");
});

it("answers HTTP/1.1 parser errors on the TLS port in the JSON error shape", async () => {
  for (const [request, status, code] of [
    ["GARBAGE\r\n\r\n", 400, "invalid_argument"],
    [`GET / HTTP/1.1\r\nhost: a\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`, 431, "resource_exhausted"],
  ] as const) {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: daemon.app.listener.address.port, ca: readFileSync(join(dir, "cert.pem")), ALPNProtocols: ["http/1.1"] }, () => socket.end(request));
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    const [head, body] = answer.split("\r\n\r\n");
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(JSON.parse(body!)).toMatchObject({ code, details: [] });
  }
});
