import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Issued {
  chain: string;
  key: string;
}

/** openssl's time format for -startdate/-enddate. */
const stamp = (d: Date) => d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";

/**
 * A private CA made with openssl, as an operator would make one: issues leaf
 * certificates for any names and validity (backdated ones too, through
 * `openssl ca`, which can set both ends).
 */
export class TestCa {
  readonly dir = mkdtempSync(join(tmpdir(), "dynroute-ca-"));
  readonly certFile = join(this.dir, "ca.pem");
  private serial = 0;

  constructor() {
    writeFileSync(join(this.dir, "index.txt"), "");
    writeFileSync(join(this.dir, "serial"), "1000\n");
    writeFileSync(
      join(this.dir, "ca.cnf"),
      `[ca]\ndefault_ca = dr\n[dr]\ndatabase = ${this.dir}/index.txt\nnew_certs_dir = ${this.dir}\nserial = ${this.dir}/serial\ndefault_md = sha256\npolicy = pol\nunique_subject = no\n[pol]\ncommonName = supplied\n`,
    );
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(this.dir, "ca.key"), "-out", this.certFile, "-subj", "/CN=dynroute test CA", "-days", "30");
  }

  get pem(): string {
    return readFileSync(this.certFile, "utf8");
  }

  /**
   * A leaf for `names` (DNS names, or IPv4 addresses; the first is its CN) with its key, valid from `from` to `to`
   * (default: now - 1h to now + 30d); a new P-256 key unless `key` gives openssl req's key options (e.g. ["-newkey", "rsa:2048"]
   * or ["-key", file]).
   */
  issue(names: string[], validity: { from?: Date; to?: Date; key?: string[] } = {}): Issued {
    const base = join(this.dir, `leaf${++this.serial}`);
    openssl("req", "-new", ...(validity.key ?? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]), "-nodes", "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${names[0]}`);
    writeFileSync(`${base}.ext`, `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",")}\n`);
    const from = validity.from ?? new Date(Date.now() - 3_600_000);
    const to = validity.to ?? new Date(Date.now() + 30 * 86_400_000);
    openssl("ca", "-batch", "-notext", "-config", join(this.dir, "ca.cnf"), "-cert", this.certFile, "-keyfile", join(this.dir, "ca.key"), "-in", `${base}.csr`, "-out", `${base}.pem`, "-startdate", stamp(from), "-enddate", stamp(to), "-extfile", `${base}.ext`);
    return { chain: readFileSync(`${base}.pem`, "utf8"), key: readFileSync(`${base}.key`, "utf8") };
  }
}

function openssl(...args: string[]): void {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}
