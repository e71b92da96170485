import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The admin token of a daemon configured with none: read from
 * `<dir>/admin-token`, or made on first start and written there readable by
 * the owner only. `created` says whether this start made it.
 */
export function loadOrCreateToken(dir: string): { token: string; file: string; created: boolean } {
  const file = join(dir, "admin-token");
  try {
    const token = readFileSync(file, "utf8").trim();
    if (token.length >= 16) return { token, file, created: false };
    throw new Error(`${file} holds no usable token (16 characters at least); delete it to get a new one`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dir, { recursive: true });
  const token = randomBytes(24).toString("base64url");
  // wx: never overwrite a token another start wrote meanwhile.
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  return { token, file, created: true };
}
