// The web console, end to end: Debian's chromium driven by playwright-core
// against the real daemon (serving the built console), its store and a private
// Redis this file may stop. All traffic stays on 127.0.0.1.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import axe from "axe-core";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateService } from "../gen/dynroute/v1/certificate_pb.js";
import { KeyService } from "../gen/dynroute/v1/key_pb.js";
import { TlsMode } from "../gen/dynroute/v1/mapping_pb.js";
import { TenantService } from "../gen/dynroute/v1/tenant_pb.js";
import { defaultConsoleDir } from "../src/console/console-route.js";
import { TestCa } from "./harness/certs.js";
import { freshStore, startTestDaemon, TOKEN, type TestDaemon } from "./harness/daemon.js";
import { PrivateRedis } from "./harness/redis.js";

const SHOTS = join(import.meta.dirname, "..", "test-results", "console");
const TENANT = "tools";

let daemon: TestDaemon;
let redis: PrivateRedis;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(join(defaultConsoleDir(), "index.html"))) throw new Error("the console is not built: run npm run build (npm test does)");
  mkdirSync(SHOTS, { recursive: true });
  redis = await PrivateRedis.start();
  daemon = await startTestDaemon(await freshStore("sqlite"), { REDIS_URL: redis.url, DYNROUTE_RELAY_MAX_BACKOFF_MS: "200" });
  await daemon.store.ready;
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      // Nothing but the daemon on loopback resolves.
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ],
  });
});

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  await daemon?.close();
  await redis?.destroy();
});

/** A new tab in a fresh browser profile (its own sessionStorage); page errors fail the test. */
async function newPage(viewport = { width: 1200, height: 800 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  pageProblems.set(page, problems);
  page.on("pageerror", (err) => problems.push(err.message));
  // The browser reports every answer >= 400 as a failed resource; the tests provoke some on purpose.
  page.on("console", (msg) => msg.type() === "error" && !/Failed to load resource/.test(msg.text()) && problems.push(msg.text()));
  return page;
}

const pageProblems = new WeakMap<Page, string[]>();

/** Closes a tab that must not have thrown or logged an error. */
async function finish(page: Page): Promise<void> {
  expect(pageProblems.get(page)).toEqual([]);
  await page.close();
}

async function signIn(page: Page, key: string, tenant = TENANT): Promise<void> {
  await page.goto(daemon.baseUrl);
  await page.getByLabel("API key", { exact: true }).fill(key);
  await page.getByLabel("Tenant", { exact: true }).fill(tenant);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: `Mappings of ${tenant}` }).waitFor();
}

const row = (page: Page, domain: string) => page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: domain, exact: true }) });
/**
 * Waits until an expression holds in the page. (Playwright's waitForFunction polls with eval,
 * which the console's CSP forbids; evaluate runs through the DevTools protocol.)
 */
async function until(page: Page, expression: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await page.evaluate(expression)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${expression}`);
}

/** axe-core's WCAG 2.1 A/AA rules (labels, names, contrast, landmarks…) on the page as it is now. */
async function expectAccessible(page: Page): Promise<void> {
  await page.evaluate(axe.source); // through the DevTools protocol: the page's CSP does not apply
  const problems = await page.evaluate(`axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } })
    .then((r) => r.violations.map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", ")))`);
  expect(problems).toEqual([]);
}

/** A screenshot of one of the main pages (under test-results/console), which must pass the accessibility rules. */
async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  await expectAccessible(page);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}
const api = () => daemon.client("connect");
const keysApi = () => createClient(KeyService, daemon.transport("connect"));
const certificatesApi = () => daemon.clientOf(CertificateService, "connect");
const tenantsApi = () => daemon.clientOf(TenantService, "connect");
const DAY_MS = 86_400_000;
/** The mappings page filtered to one domain (the tenant has more than a page of them by then). */
async function showOnly(page: Page, domain: string): Promise<void> {
  await page.getByLabel("Domain", { exact: true }).fill(domain);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByText("Showing 1–1 of 1").waitFor();
}
/** The element a field's aria-describedby names (its server error, when it is marked invalid). */
const describedBy = async (page: Page, field: ReturnType<Page["getByLabel"]>) => page.locator(`#${await field.getAttribute("aria-describedby")}`).textContent();

describe("console", () => {
  it("is served at / with a strict CSP and cacheable hashed assets; API paths keep answering", async () => {
    const index = await fetch(`${daemon.baseUrl}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const csp = index.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).not.toContain("unsafe-");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/https?:\/\//); // nothing from elsewhere
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const js = await fetch(daemon.baseUrl + asset);
    expect(js.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(js.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    const again = await fetch(`${daemon.baseUrl}/`, { headers: { "if-none-match": index.headers.get("etag")! } });
    expect(again.status).toBe(304);

    const unknown = await fetch(`${daemon.baseUrl}/v1/no/such/thing`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: "not_found" });
    expect((await fetch(`${daemon.baseUrl}/assets/nope.js`)).headers.get("content-type")).toContain("application/json");
    expect((await fetch(`${daemon.baseUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${daemon.baseUrl}/v1/${TENANT}/mapping`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it("signs in with a key kept in the tab, refuses a wrong key, signs out", async () => {
    const page = await newPage();
    await page.goto(daemon.baseUrl);
    await shot(page, "sign-in");
    await page.getByLabel("API key", { exact: true }).fill("not-a-valid-key-at-all");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("This key was refused").waitFor();
    await signIn(page, TOKEN);
    expect(page.url()).not.toContain(TOKEN);
    await page.reload();
    await page.getByRole("heading", { name: `Mappings of ${TENANT}` }).waitFor();
    const cookies = await page.context().cookies();
    expect(cookies).toEqual([]);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to dynroute" }).waitFor();
    await finish(page);
  });

  it("creates a mapping with the editors, which turns from pending to live by itself", async () => {
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "New mapping" }).click();
    await page.getByRole("heading", { name: "New mapping" }).waitFor();
    await page.getByLabel("Domain", { exact: true }).fill("web.example.org");
    await page.getByLabel("Backend 1", { exact: true }).fill("http://instance-02:4000");
    await page.getByRole("button", { name: "Add backend" }).click();
    await page.getByLabel("Backend 2", { exact: true }).fill("http://instance-01:3000");
    await page.getByRole("button", { name: "Add backend" }).click();
    await page.getByLabel("Backend 3", { exact: true }).fill("http://spare:1");
    await page.getByRole("button", { name: "Move backend 2 up" }).click();
    await page.getByRole("button", { name: "Remove backend 3" }).click();
    await page.getByRole("button", { name: "Add label" }).click();
    await page.getByLabel("Key 1", { exact: true }).fill("env");
    await page.getByLabel("Value 1", { exact: true }).fill("prod");
    // Redis is down: the write commits, routers do not have it yet.
    await redis.stop();
    await page.getByRole("button", { name: "Create mapping" }).click();
    await row(page, "web.example.org").getByText("Pending").waitFor();
    const stored = (await api().getMapping({ tenantId: TENANT, domain: "web.example.org" })).mapping!;
    expect(stored.backends).toEqual(["http://instance-01:3000", "http://instance-02:4000"]);
    expect(stored.labels).toEqual({ env: "prod" });
    await shot(page, "mappings-pending");
    await redis.resume();
    await row(page, "web.example.org").getByText("Live").waitFor({ timeout: 20_000 });
    await finish(page);
  });

  it("works from the keyboard: focus goes to each page's heading, new rows and back after a cancel", async () => {
    const page = await newPage();
    // The page's heading, not a link or button of the page before it with the same text ("New mapping").
    const headingFocused = (title: string) => until(page, `document.activeElement.tagName === "H1" && document.activeElement.textContent === ${JSON.stringify(title)}`);
    const focused = () => page.evaluate(`(document.activeElement.getAttribute("aria-label") || document.activeElement.textContent || document.activeElement.id).trim()`);
    const tabTo = async (name: string) => {
      for (let i = 0; i < 40 && (await focused()) !== name; i++) await page.keyboard.press("Tab");
      expect(await focused()).toBe(name);
    };
    await page.goto(daemon.baseUrl);
    await headingFocused("Sign in to dynroute");
    await page.keyboard.press("Tab");
    expect(await focused()).toBe("api-key");
    await page.keyboard.type(TOKEN);
    await page.keyboard.press("Tab");
    await page.keyboard.type(TENANT);
    await page.keyboard.press("Enter");
    await headingFocused(`Mappings of ${TENANT}`);

    await tabTo("New mapping");
    await page.keyboard.press("Enter");
    await headingFocused("New mapping");
    await page.keyboard.press("Tab");
    await page.keyboard.type("keyboard.example.org");
    await page.keyboard.press("Tab");
    await page.keyboard.type("http://kb-1:80");
    await tabTo("Add backend");
    await page.keyboard.press("Enter");
    const added = await page.getByLabel("Backend 2", { exact: true }).getAttribute("id");
    await until(page, `document.activeElement.id === ${JSON.stringify(added)}`); // the new row's input
    await page.keyboard.type("http://kb-2:80");
    await page.keyboard.press("Enter"); // submits the form
    await row(page, "keyboard.example.org").waitFor();
    expect((await api().getMapping({ tenantId: TENANT, domain: "keyboard.example.org" })).mapping!.backends).toEqual(["http://kb-1:80", "http://kb-2:80"]);

    await page.getByRole("link", { name: "keyboard.example.org", exact: true }).focus();
    await page.keyboard.press("Enter");
    await tabTo("Delete mapping");
    await page.keyboard.press("Enter");
    expect(await focused()).toBe("Delete"); // the confirmation takes focus
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter"); // Cancel
    await until(page, `document.activeElement.textContent === "Delete mapping"`);
    await finish(page);
  });

  it("shows the server's validation errors at the fields they name", async () => {
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "New mapping" }).click();
    await page.getByLabel("Domain", { exact: true }).fill("bad-backend.example.org");
    await page.getByLabel("Backend 1", { exact: true }).fill("http://fine:80");
    await page.getByRole("button", { name: "Add backend" }).click();
    await page.getByLabel("Backend 2", { exact: true }).fill("ftp://files.example.org");
    await page.getByRole("button", { name: "Add label" }).click();
    await page.getByLabel("Key 1", { exact: true }).fill("bad key");
    await page.getByLabel("Value 1", { exact: true }).fill("x");
    await page.getByRole("button", { name: "Create mapping" }).click();
    await page.getByText("Not saved: correct the marked fields.").waitFor();
    const backend2 = page.getByLabel("Backend 2", { exact: true });
    expect(await backend2.getAttribute("aria-invalid")).toBe("true");
    const described = page.locator(`#${await backend2.getAttribute("aria-describedby")}`);
    expect(await described.textContent()).toContain("http:// or https://");
    expect(await page.getByLabel("Backend 1", { exact: true }).getAttribute("aria-invalid")).toBeNull();
    expect(await page.getByLabel("Key 1", { exact: true }).getAttribute("aria-invalid")).toBe("true");
    await shot(page, "mapping-validation");

    // Fixed, it saves; a bad domain is named at the domain.
    await backend2.fill("https://files.example.org");
    await page.getByLabel("Key 1", { exact: true }).fill("kind");
    await page.getByLabel("Domain", { exact: true }).fill("-bad-.example.org");
    await page.getByRole("button", { name: "Create mapping" }).click();
    await page.locator("#mapping-domain-error").waitFor();
    expect(await page.getByLabel("Domain", { exact: true }).getAttribute("aria-invalid")).toBe("true");
    expect(await page.getByLabel("Backend 2", { exact: true }).getAttribute("aria-invalid")).toBeNull();
    await finish(page);
  });

  it("shows a concurrent change as a conflict, and reloads or overwrites", async () => {
    await api().createMapping({ tenantId: TENANT, mapping: { domain: "shared.example.org", backends: ["http://a:1"] } });
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "shared.example.org", exact: true }).click();
    await page.getByRole("heading", { name: "shared.example.org" }).waitFor();

    await api().updateMapping({ tenantId: TENANT, domain: "shared.example.org", mapping: { backends: ["http://theirs:1"] } });
    await page.getByLabel("Backend 1", { exact: true }).fill("http://mine:1");
    await page.getByRole("button", { name: "Save changes" }).click();
    const conflict = page.getByRole("alert").filter({ hasText: "Changed by someone else" });
    await conflict.waitFor();
    expect(await conflict.locator("ins").allTextContents()).toContain("added: http://theirs:1");
    await shot(page, "mapping-conflict");
    await page.getByRole("button", { name: "Reload theirs (discard my edits)" }).click();
    expect(await page.getByLabel("Backend 1", { exact: true }).inputValue()).toBe("http://theirs:1");

    await api().updateMapping({ tenantId: TENANT, domain: "shared.example.org", mapping: { backends: ["http://third:1"] } });
    await page.getByLabel("Backend 1", { exact: true }).fill("http://mine:2");
    await page.getByRole("button", { name: "Save changes" }).click();
    await conflict.waitFor();
    await page.getByRole("button", { name: "Overwrite with mine" }).click();
    await row(page, "shared.example.org").waitFor();
    expect((await api().getMapping({ tenantId: TENANT, domain: "shared.example.org" })).mapping!.backends).toEqual(["http://mine:2"]);
    await finish(page);
  });

  it("renames and deletes a mapping, deleting only after a confirmation", async () => {
    await api().createMapping({ tenantId: TENANT, mapping: { domain: "old-name.example.org", backends: ["http://a:1"] } });
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "old-name.example.org", exact: true }).click();
    await page.getByLabel("Domain", { exact: true }).fill("new-name.example.org");
    await page.getByRole("button", { name: "Save changes" }).click();
    await row(page, "new-name.example.org").waitFor();
    expect(await row(page, "old-name.example.org").count()).toBe(0);

    await page.getByRole("link", { name: "new-name.example.org", exact: true }).click();
    await page.getByRole("button", { name: "Delete mapping" }).click();
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.getByRole("button", { name: "Delete mapping" }).click();
    await page.getByRole("group", { name: /Delete new-name.example.org\?/ }).getByRole("button", { name: "Delete" }).click();
    await page.getByRole("heading", { name: `Mappings of ${TENANT}` }).waitFor();
    await page.getByText(/Showing/).waitFor();
    expect(await row(page, "new-name.example.org").count()).toBe(0);
    await expect(api().getMapping({ tenantId: TENANT, domain: "new-name.example.org" })).rejects.toThrow(/not found/i);

    // The history tells the story, newest first, with what changed.
    await page.getByRole("link", { name: "History", exact: true }).first().click();
    // Filled once the history page is up, or the list page's own field would take the text.
    await page.getByRole("heading", { name: `History of tenant ${TENANT}` }).waitFor();
    await page.getByLabel("Domain", { exact: true }).fill("new-name.example.org");
    await page.getByRole("button", { name: "Show" }).click();
    await page.getByRole("heading", { name: "History of new-name.example.org" }).waitFor();
    const events = page.getByRole("article");
    await events.nth(1).waitFor();
    expect(await events.count()).toBe(2);
    expect(await events.nth(0).getByRole("heading").textContent()).toBe("delete new-name.example.org");
    expect(await events.nth(1).getByRole("heading").textContent()).toBe("rename new-name.example.org (was old-name.example.org)");
    expect(await events.nth(1).locator("del").allTextContents()).toEqual(["removed: old-name.example.org"]);
    expect(await events.nth(1).locator("ins").allTextContents()).toEqual(["added: new-name.example.org"]);
    await page.getByLabel("Domain", { exact: true }).fill("");
    await page.getByRole("button", { name: "Show" }).click();
    await page.getByRole("heading", { name: `History of tenant ${TENANT}` }).waitFor();
    await page.getByRole("heading", { name: "create web.example.org" }).waitFor();
    await shot(page, "history");
    await finish(page);
  });

  it("switches a mapping off and on, and filters by status", async () => {
    await api().createMapping({ tenantId: TENANT, mapping: { domain: "switch.example.org", backends: ["http://a:1"] } });
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "switch.example.org", exact: true }).click();
    await page.getByLabel("Enabled", { exact: true }).uncheck();
    await page.getByRole("button", { name: "Save changes" }).click();
    await row(page, "switch.example.org").getByText("Disabled", { exact: true }).waitFor();
    expect((await api().getMapping({ tenantId: TENANT, domain: "switch.example.org" })).mapping?.status).toBe("disabled");

    await page.getByLabel("Status", { exact: true }).selectOption("disabled");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByText("Showing 1–1 of 1").waitFor();
    await row(page, "switch.example.org").waitFor();

    await page.getByRole("link", { name: "switch.example.org", exact: true }).click();
    await page.getByLabel("Enabled", { exact: true }).check();
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { name: `Mappings of ${TENANT}` }).waitFor();
    await expect.poll(async () => (await api().getMapping({ tenantId: TENANT, domain: "switch.example.org" })).mapping?.status).toBe("enabled");
    await finish(page);
  });

  it("filters by domain and label and pages with the cursor, showing the total", async () => {
    for (let i = 0; i < 30; i++) {
      await api().createMapping({ tenantId: TENANT, mapping: { domain: `n${String(i).padStart(2, "0")}.pages.example.net`, backends: ["http://a:1"], labels: { batch: i % 2 ? "odd" : "even" } } });
    }
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByLabel("Domain", { exact: true }).fill("pages.example.net");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByText("Showing 1–25 of 30").waitFor();
    await shot(page, "mappings");
    await page.getByRole("button", { name: "Next page" }).click();
    await page.getByText("Showing 26–30 of 30").waitFor();
    await row(page, "n29.pages.example.net").waitFor();
    await page.getByRole("button", { name: "Previous page" }).click();
    await page.getByText("Showing 1–25 of 30").waitFor();
    await page.getByLabel("Labels", { exact: true }).fill("batch=odd");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByText("Showing 1–15 of 15").waitFor();
    await page.getByLabel("Labels", { exact: true }).fill("bad key=x");
    await page.getByRole("button", { name: "Search" }).click();
    await page.locator("#filter-labels-error").waitFor();
    expect(await page.getByLabel("Labels", { exact: true }).getAttribute("aria-invalid")).toBe("true");
    await finish(page);

    const narrow = await newPage({ width: 390, height: 844 });
    await signIn(narrow, TOKEN);
    await row(narrow, "web.example.org").waitFor();
    await shot(narrow, "mappings-narrow", false);
    await finish(narrow);
  });

  it("lets an admin create a key whose secret is shown once, list it with its last use, and revoke it", async () => {
    const admin = await newPage();
    await admin.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: daemon.baseUrl });
    await signIn(admin, TOKEN);
    await admin.getByRole("link", { name: "Keys" }).click();
    await admin.getByRole("heading", { name: "API keys" }).waitFor();
    await admin.getByLabel("Role", { exact: true }).selectOption("viewer");
    await admin.getByLabel("Description", { exact: true }).fill("dashboard screen");
    await admin.getByRole("button", { name: "Create key" }).click();
    const secret = (await admin.getByLabel("Secret", { exact: true }).textContent())!;
    expect(secret.length).toBeGreaterThan(16);
    await admin.getByRole("button", { name: "Copy secret" }).click();
    await admin.getByText("Copied.").waitFor();
    expect(await admin.evaluate("navigator.clipboard.readText()")).toBe(secret);
    await admin.getByRole("button", { name: "Done" }).click();
    await admin.getByRole("heading", { name: "New key" }).waitFor();
    expect(await admin.getByText(secret).count()).toBe(0); // shown once
    const keyRow = admin.getByRole("row").filter({ hasText: "dashboard screen" });
    await keyRow.waitFor();
    expect(await keyRow.getByRole("cell").nth(0).textContent()).toBe(TENANT);
    expect(await keyRow.getByRole("cell").nth(1).textContent()).toBe("viewer");
    expect(await keyRow.getByRole("cell").nth(4).textContent()).toBe("never");

    // The viewer reads, and cannot edit.
    const viewer = await newPage();
    await signIn(viewer, secret);
    await viewer.getByText("viewer key · tenant tools").waitFor();
    expect(await viewer.getByRole("link", { name: "New mapping" }).count()).toBe(0);
    expect(await viewer.getByRole("link", { name: "Keys" }).count()).toBe(0);
    await viewer.getByRole("link", { name: "web.example.org", exact: true }).click();
    await viewer.getByText("This key can read mappings but not change them.").waitFor();
    expect(await viewer.getByLabel("Domain", { exact: true }).isDisabled()).toBe(true);
    expect(await viewer.getByLabel("Backend 1", { exact: true }).isDisabled()).toBe(true);
    expect(await viewer.getByRole("button", { name: "Save changes" }).count()).toBe(0);
    expect(await viewer.getByRole("button", { name: "Delete mapping" }).count()).toBe(0);

    await admin.reload();
    await keyRow.getByRole("cell").nth(4).filter({ hasNotText: "never" }).waitFor();
    await shot(admin, "keys");
    await keyRow.getByRole("button", { name: "Revoke" }).click();
    await keyRow.getByRole("button", { name: "Revoke" }).click(); // the confirmation
    await keyRow.waitFor({ state: "detached" }); // revoked keys are listed on demand
    await admin.getByLabel("Show revoked keys").check();
    await keyRow.getByText(/^revoked/).waitFor();

    // Within a second every call with it is refused, and the viewer is signed out.
    await new Promise((r) => setTimeout(r, 1100));
    await viewer.getByRole("link", { name: "← All mappings" }).click();
    await viewer.getByText("The key was refused (revoked or expired). Sign in again.").waitFor();
    await finish(viewer);
    await finish(admin);
  });

  it("keeps a tenant key inside its tenant", async () => {
    const { secret } = await keysApi().createKey({ tenantId: "other", role: "editor", description: "other's editor" });
    await api().createMapping({ tenantId: "other", mapping: { domain: "other-tenant.example.com", backends: ["http://o:1"] } });
    const page = await newPage();
    await page.goto(daemon.baseUrl);
    await page.getByLabel("API key", { exact: true }).fill(secret);
    await page.getByLabel("Tenant", { exact: true }).fill(TENANT);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText(`This key belongs to another tenant than "${TENANT}".`).waitFor();
    // Without a tenant the key opens its own.
    await page.getByLabel("Tenant", { exact: true }).fill("");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Mappings of other" }).waitFor();
    await page.getByText("editor key · tenant other").waitFor();
    await row(page, "other-tenant.example.com").waitFor();
    expect(await page.getByRole("row").count()).toBe(2); // the header and its one mapping
    expect(await page.getByLabel("Tenant", { exact: true }).count()).toBe(0); // no tenant picker
    expect(await page.getByRole("link", { name: "Operations" }).count()).toBe(0);
    await page.getByRole("link", { name: "History", exact: true }).first().click();
    await page.getByRole("heading", { name: "create other-tenant.example.com" }).waitFor();
    expect(await page.getByRole("article").count()).toBe(1);
    await finish(page);
  });

  it("uploads a certificate (the key write-only), shows how soon it expires, replaces it and deletes it after a confirmation", async () => {
    const ca = new TestCa();
    await api().createMapping({ tenantId: TENANT, mapping: { domain: "secure.example.org", backends: ["http://a:1"] } });
    const soon = ca.issue(["secure.example.org"], { to: new Date(Date.now() + 10 * DAY_MS) });
    const unrelated = ca.issue(["secure.example.org"]);
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "Certificates" }).click();
    await page.getByRole("heading", { name: `Certificates of ${TENANT}` }).waitFor();
    await page.getByText("No certificates.").waitFor();
    await page.getByLabel("Name", { exact: true }).fill("secure.example.org");
    await page.getByLabel("Certificate chain", { exact: true }).fill(soon.chain + ca.pem);
    // The key from a file, as an operator picks it: first one that does not match.
    const key = page.getByLabel("Private key", { exact: true });
    await page.getByLabel("Or read private key from a file").setInputFiles({ name: "wrong.key", mimeType: "text/plain", buffer: Buffer.from(unrelated.key) });
    await expect.poll(() => key.inputValue()).toBe(unrelated.key);
    await page.getByRole("button", { name: "Upload certificate" }).click();
    await page.getByText("Not stored: correct the marked fields.").waitFor();
    expect(await key.getAttribute("aria-invalid")).toBe("true");
    expect(await describedBy(page, key)).toContain("does not match the first certificate of the chain");
    expect(await page.getByLabel("Certificate chain", { exact: true }).getAttribute("aria-invalid")).toBeNull();
    expect((await certificatesApi().listCertificates({ tenantId: TENANT })).certificates).toEqual([]);

    await key.fill(soon.key);
    await page.getByRole("button", { name: "Upload certificate" }).click();
    await page.getByRole("status").filter({ hasText: "Stored the certificate of secure.example.org" }).waitFor();
    expect(await key.inputValue()).toBe(""); // not kept in the page once stored
    const stored = (await certificatesApi().getCertificate({ tenantId: TENANT, name: "secure.example.org" })).certificate!;
    expect(stored.dnsNames).toEqual(["secure.example.org"]);
    const certRow = row(page, "secure.example.org");
    const expiry = certRow.locator(".expiry");
    await expect.poll(() => expiry.textContent()).toBe("⚠ expires in 9 days");
    expect(await expiry.getAttribute("class")).toContain("expiry-soon");
    await certRow.getByText("Uploaded", { exact: true }).waitFor();
    expect(await certRow.textContent()).toContain(stored.fingerprintSha256);
    expect(await page.content()).not.toContain("PRIVATE KEY");
    await shot(page, "certificates");

    const later = ca.issue(["secure.example.org"], { to: new Date(Date.now() + 60 * DAY_MS) });
    await certRow.getByRole("button", { name: "Replace secure.example.org" }).click();
    await page.getByRole("heading", { name: "Replace the certificate of secure.example.org" }).waitFor();
    expect(await page.getByLabel("Name", { exact: true }).inputValue()).toBe("secure.example.org");
    await page.getByLabel("Certificate chain", { exact: true }).fill(later.chain);
    await key.fill(later.key);
    await page.getByRole("button", { name: "Replace certificate" }).click();
    await expect.poll(() => expiry.textContent()).toBe("expires in 59 days");
    expect(await expiry.getAttribute("class")).toContain("expiry-ok");
    const replaced = (await certificatesApi().getCertificate({ tenantId: TENANT, name: "secure.example.org" })).certificate!;
    expect(replaced.revision).toBeGreaterThan(stored.revision);
    expect(replaced.fingerprintSha256).not.toBe(stored.fingerprintSha256);

    await certRow.getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByRole("group", { name: /Delete the certificate of secure.example.org\?/ }).getByRole("button", { name: "Delete" }).click();
    await certRow.waitFor({ state: "detached" });
    await expect(certificatesApi().getCertificate({ tenantId: TENANT, name: "secure.example.org" })).rejects.toThrow(/not found/i);
    await finish(page);
  });

  it("refuses, at the name, a certificate that does not cover it, and says which names are not the tenant's", async () => {
    const ca = new TestCa();
    const elsewhere = ca.issue(["elsewhere.example.org"]);
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "Certificates" }).click();
    const name = page.getByLabel("Name", { exact: true });
    await name.fill("web.example.org");
    await page.getByLabel("Certificate chain", { exact: true }).fill(elsewhere.chain);
    await page.getByLabel("Private key", { exact: true }).fill(elsewhere.key);
    await page.getByRole("button", { name: "Upload certificate" }).click();
    await page.getByText("Not stored: correct the marked fields.").waitFor();
    expect(await name.getAttribute("aria-invalid")).toBe("true");
    expect(await describedBy(page, name)).toContain("is not valid for web.example.org");
    // A name no mapping of the tenant owns: the daemon's reason, not just "denied".
    await name.fill("elsewhere.example.org");
    await page.getByRole("button", { name: "Upload certificate" }).click();
    await page.getByRole("alert").filter({ hasText: "Not stored: This key may not do that: tenant tools may only hold certificates for names it maps" }).waitFor();
    expect(await name.getAttribute("aria-invalid")).toBeNull();
    expect((await certificatesApi().listCertificates({ tenantId: TENANT })).certificates).toEqual([]);
    await finish(page);
  });

  it("shows a viewer the certificates and TLS modes without any way to change them", async () => {
    const ca = new TestCa();
    await api().createMapping({ tenantId: TENANT, mapping: { domain: "viewed.example.org", backends: ["http://a:1"], tls: TlsMode.MANUAL } });
    const leaf = ca.issue(["viewed.example.org"]);
    await certificatesApi().putCertificate({ tenantId: TENANT, name: "viewed.example.org", certificateChain: leaf.chain, privateKey: leaf.key });
    const { secret } = await keysApi().createKey({ tenantId: TENANT, role: "viewer", description: "certificate viewer" });
    const viewer = await newPage();
    await signIn(viewer, secret);
    await showOnly(viewer, "viewed.example.org");
    await row(viewer, "viewed.example.org").getByText("Manual (uploaded)").waitFor();
    await viewer.getByRole("link", { name: "Certificates" }).click();
    const certRow = row(viewer, "viewed.example.org");
    await certRow.getByText("expires in 29 days").waitFor();
    await viewer.getByText("This key can read certificates but not change them.").waitFor();
    expect(await viewer.getByRole("button").filter({ hasText: /Replace|Delete|Upload/ }).count()).toBe(0);
    expect(await viewer.getByLabel("Private key", { exact: true }).count()).toBe(0);
    expect(await viewer.getByRole("heading", { name: "Upload a certificate" }).count()).toBe(0);
    await finish(viewer);
  });

  it("sets a mapping's TLS mode, and keeps it when other fields change", async () => {
    await api().createMapping({ tenantId: TENANT, mapping: { domain: "tls-mode.example.org", backends: ["http://a:1"], tls: TlsMode.AUTOMATIC } });
    const page = await newPage();
    await signIn(page, TOKEN);
    await showOnly(page, "tls-mode.example.org");
    await row(page, "tls-mode.example.org").getByText("Automatic (ACME)").waitFor();
    await page.getByRole("link", { name: "tls-mode.example.org", exact: true }).click();
    await page.getByText("TLS: Automatic (ACME)").waitFor();
    await page.getByLabel("Backend 1", { exact: true }).fill("http://b:1");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { name: `Mappings of ${TENANT}` }).waitFor();
    const saved = (await api().getMapping({ tenantId: TENANT, domain: "tls-mode.example.org" })).mapping!;
    expect(saved.backends).toEqual(["http://b:1"]);
    expect(saved.tls).toBe(TlsMode.AUTOMATIC);

    await showOnly(page, "tls-mode.example.org");
    await page.getByRole("link", { name: "tls-mode.example.org", exact: true }).click();
    await page.getByLabel("TLS certificate", { exact: true }).selectOption({ label: "Manual (uploaded)" });
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByRole("heading", { name: `Mappings of ${TENANT}` }).waitFor();
    expect((await api().getMapping({ tenantId: TENANT, domain: "tls-mode.example.org" })).mapping!.tls).toBe(TlsMode.MANUAL);
    await showOnly(page, "tls-mode.example.org");
    await row(page, "tls-mode.example.org").getByText("Manual (uploaded)").waitFor();
    await finish(page);
  });

  it("tells a certificate the daemon issued over ACME from an uploaded one, and shows an automatic certificate's state on its mapping", async () => {
    const ca = new TestCa();
    const domain = "auto.example.org";
    await api().createMapping({ tenantId: TENANT, mapping: { domain, backends: ["http://a:1"], tls: TlsMode.AUTOMATIC } });
    // The ACME manager's two writes (issuance itself, with pebble, is the HTTPS suite's): the certificate, then its state.
    const issued = ca.issue([domain], { to: new Date(Date.now() + 45 * DAY_MS) });
    const { certificate } = await certificatesApi().putCertificate({ tenantId: TENANT, name: domain, certificateChain: issued.chain, privateKey: issued.key });
    const acme = { name: domain, tenantId: TENANT, expireTime: timestampDate(certificate!.expireTime!), fingerprint: certificate!.fingerprintSha256, failures: 0 };
    await daemon.store.putAcmeState({ ...acme, state: "issued", reason: "", nextAttemptTime: new Date(Date.now() + 30 * DAY_MS) });
    const page = await newPage();
    await signIn(page, TOKEN);
    await showOnly(page, domain);
    await row(page, domain).getByText("Certificate issued").waitFor();
    await row(page, domain).getByText("expires in 44 days").waitFor();
    await page.getByRole("link", { name: "Certificates" }).click();
    await row(page, domain).getByText("Automatic (ACME)", { exact: true }).waitFor();

    // Someone uploads one over it: the daemon leaves that one alone, and so does the page.
    const uploaded = ca.issue([domain], { to: new Date(Date.now() + 20 * DAY_MS) });
    await certificatesApi().putCertificate({ tenantId: TENANT, name: domain, certificateChain: uploaded.chain, privateKey: uploaded.key });
    await page.reload();
    await row(page, domain).getByText("Uploaded", { exact: true }).waitFor();

    await daemon.store.putAcmeState({ ...acme, state: "failed", reason: "HTTP-01 challenge failed: connection refused", nextAttemptTime: new Date(Date.now() + 3_600_000), failures: 1 });
    await page.getByRole("link", { name: "Mappings" }).click();
    await showOnly(page, domain);
    await row(page, domain).getByText("Certificate failed").waitFor();
    await row(page, domain).getByText(/HTTP-01 challenge failed: connection refused · next try/).waitFor();
    await finish(page);
  });

  it("lets an admin set a tenant's zones and quota (errors at the field), which the tenant's keys then read and cannot change", async () => {
    const tenant = "quota-t";
    for (const domain of ["a.quota.example.com", "b.quota.example.com"]) await api().createMapping({ tenantId: tenant, mapping: { domain, backends: ["http://a:1"] } });
    const admin = await newPage();
    await signIn(admin, TOKEN);
    await admin.getByRole("link", { name: "Tenants" }).click();
    await admin.getByRole("heading", { name: "Tenants" }).waitFor();
    await row(admin, tenant).getByText("2 mappings (no limit)").waitFor();
    await admin.getByRole("link", { name: tenant, exact: true }).click();
    await admin.getByRole("heading", { name: `Settings of ${tenant}` }).waitFor();
    const zones = admin.getByLabel("Zones", { exact: true });
    const quota = admin.getByLabel("Mapping quota", { exact: true });
    await zones.fill("*.quota.example.com");
    await quota.fill("2");
    await admin.getByRole("button", { name: "Save settings" }).click();
    await admin.getByText("Not saved: correct the marked fields.").waitFor();
    expect(await zones.getAttribute("aria-invalid")).toBe("true");
    expect(await describedBy(admin, zones)).toContain("*.quota.example.com: a zone is a domain");
    expect(await quota.getAttribute("aria-invalid")).toBeNull();
    expect((await tenantsApi().getTenant({ tenantId: tenant })).tenant).toMatchObject({ zones: [], mappingQuota: 0 });

    // Names are stored normalised and once: the form shows them so.
    await zones.fill("Quota.Example.com\n\nquota.example.com");
    await admin.getByRole("button", { name: "Save settings" }).click();
    await admin.getByRole("status").filter({ hasText: "Saved." }).waitFor();
    expect(await zones.inputValue()).toBe("quota.example.com");
    expect((await tenantsApi().getTenant({ tenantId: tenant })).tenant).toMatchObject({ zones: ["quota.example.com"], mappingQuota: 2, mappingCount: 2 });
    await row(admin, tenant).getByText("2 of 2 mappings · full: creating more fails").waitFor();
    await shot(admin, "tenants");
    const refused = await api()
      .createMapping({ tenantId: tenant, mapping: { domain: "c.quota.example.com", backends: ["http://a:1"] } })
      .catch((err: unknown) => ConnectError.from(err));
    expect(refused).toMatchObject({ code: Code.ResourceExhausted });

    const { secret } = await keysApi().createKey({ tenantId: tenant, role: "editor", description: "quota-t editor" });
    const own = await newPage();
    await signIn(own, secret, tenant);
    expect(await own.getByRole("link", { name: "Tenants" }).count()).toBe(0);
    await own.getByRole("link", { name: "Tenant settings" }).click();
    await own.getByRole("heading", { name: `Settings of ${tenant}` }).waitFor();
    await own.getByText("quota.example.com", { exact: true }).waitFor();
    await own.getByText("2 of 2 mappings · full: creating more fails").waitFor();
    expect(await own.getByRole("main").getByRole("textbox").count()).toBe(0);
    expect(await own.getByRole("button", { name: "Save settings" }).count()).toBe(0);
    await shot(own, "tenant-settings");
    await own.goto(`${daemon.baseUrl}/#/tenants`);
    await own.getByRole("heading", { name: "No such page" }).waitFor();
    await finish(own);
    await finish(admin);
  });

  it("shows the operations view from /readyz", async () => {
    const page = await newPage();
    await signIn(page, TOKEN);
    await page.getByRole("link", { name: "Operations" }).click();
    await page.getByRole("heading", { name: "Operations" }).waitFor();
    await page.getByText("leader", { exact: true }).waitFor();
    await page.getByText("reachable", { exact: true }).waitFor();
    await page.getByRole("button", { name: "Reconcile now" }).click();
    await page.getByText(/^Done in \d+ ms: \d+ pushed/).waitFor();
    await shot(page, "operations");
    await finish(page);
  });
});
