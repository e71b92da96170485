import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { sendJson } from "../server/json-response.js";
import type { PlainRoute } from "../server/listener.js";

/**
 * What the console's pages may load: only this origin's own scripts, styles
 * and API; no inline script, no framing, no plugins.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
].join("; ");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

// Vite names every built asset after a hash of its content: such a file never changes under its name.
const HASHED_ASSET = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

interface StaticFile {
  body: Buffer;
  headers: Record<string, string> & { etag: string; "cache-control": string };
}

/** The built console of this checkout (`dist/console`), whether the daemon runs from dist/ or, in tests, from src/. */
export function defaultConsoleDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, "dist", "console");
}

/**
 * Serves the web console's built files (read once, at startup) for GET and
 * HEAD: `/` is its index.html, every other file under its own path. Other
 * paths are left to the routes after it. Without a build, `/` says how to make one.
 */
export function createConsoleRoute(dir: string): PlainRoute {
  const files = loadFiles(dir);
  return async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "/").split("?")[0]!;
    const file = files.get(path === "/" ? "/index.html" : path);
    if (!file) {
      if (path !== "/") return false;
      sendJson(req, res, 404, { code: "not_found", message: "the web console is not built: run npm run build", details: [] });
      return true;
    }
    if (req.headers["if-none-match"] === file.headers.etag) {
      res.writeHead(304, { etag: file.headers.etag, "cache-control": file.headers["cache-control"] });
      res.end();
      return true;
    }
    res.writeHead(200, file.headers);
    if (req.method === "HEAD") res.end();
    else res.end(file.body);
    return true;
  };
}

function loadFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  if (!existsSync(join(dir, "index.html"))) return files;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    const urlPath = `/${relative(dir, full).split(sep).join("/")}`;
    const body = readFileSync(full);
    files.set(urlPath, {
      body,
      headers: {
        "content-type": CONTENT_TYPES[extname(full)] ?? "application/octet-stream",
        "content-length": String(body.length),
        "cache-control": HASHED_ASSET.test(urlPath) ? "public, max-age=31536000, immutable" : "no-cache",
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
        "content-security-policy": CONSOLE_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cross-origin-opener-policy": "same-origin",
      },
    });
  }
  return files;
}
