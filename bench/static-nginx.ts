import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "../test/harness/ports.js";
import { request } from "../test/harness/router.js";

/**
 * A plain nginx (no Lua) in `<dir>/plain` for benchmark baselines: the same
 * worker count and keepalive settings as the router under test, a static
 * backend answering "x" on `backendPort`, and the caller's `servers` (more
 * backends, the baseline proxy). Resolves once the backend answers.
 */
export async function startStaticNginx(dir: string, backendPort: number, servers: string): Promise<ChildProcess> {
  const prefix = join(dir, "plain");
  for (const d of ["logs", "tmp"]) mkdirSync(join(prefix, d), { recursive: true });
  writeFileSync(
    join(prefix, "nginx.conf"),
    `${process.getuid?.() === 0 ? "user root;" : ""}
worker_processes 2; # as the router under test (ROUTER_WORKERS in the harness)
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp; proxy_temp_path ${prefix}/tmp; fastcgi_temp_path ${prefix}/tmp; uwsgi_temp_path ${prefix}/tmp; scgi_temp_path ${prefix}/tmp;
  keepalive_requests 100000;
  server { listen 127.0.0.1:${backendPort}; location / { return 200 "x"; } }
  upstream x { server 127.0.0.1:${backendPort}; keepalive 64; }
${servers}
}
`,
  );
  const proc = spawn("nginx", ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", join(prefix, "logs", "error.log"), "-g", "daemon off;"], { stdio: ["ignore", "ignore", "inherit"] });
  await waitFor("the backend", async () => {
    if ((await request(backendPort, "x")).body !== "x") throw new Error("not up");
  });
  return proc;
}
