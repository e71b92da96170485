import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const SEALED = "aes256gcm:";

/**
 * Encrypts private keys at rest (AES-256-GCM) with a key derived from the
 * operator's DYNROUTE_SECRET_KEY; without one, values are kept as they are
 * (marked, so a key configured later still reads them). Whoever can read
 * the database sees only ciphertext; the daemon (and Redis, which routers
 * read) see the plain key.
 */
export class SecretBox {
  private readonly key: Buffer | undefined;

  constructor(secret: string | undefined) {
    this.key = secret ? Buffer.from(hkdfSync("sha256", secret, "dynroute", "dynroute private keys v1", 32)) : undefined;
  }

  seal(plain: string): string {
    if (!this.key) return `plain:${plain}`;
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
    return SEALED + Buffer.concat([iv, cipher.getAuthTag(), data]).toString("base64");
  }

  /** Throws when the value was sealed with another key, or with a key and none is configured now. */
  open(sealed: string): string {
    if (sealed.startsWith("plain:")) return sealed.slice("plain:".length);
    if (!sealed.startsWith(SEALED)) throw new Error("not a sealed value");
    if (!this.key) throw new Error("a private key is encrypted at rest but DYNROUTE_SECRET_KEY is not set");
    const raw = Buffer.from(sealed.slice(SEALED.length), "base64");
    const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
  }
}
