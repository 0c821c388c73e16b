import { test as base, expect, type Page } from "@playwright/test";

/**
 * A page that fails the test on any uncaught error or Content-Security-Policy violation: a blocked
 * hydration script would otherwise go unnoticed until someone clicks.
 */
export const test = base.extend<{ page: Page }>({
  page: async ({ page }, use) => {
    const check = await watchForErrors(page);
    await use(page);
    check();
  },
});

export { expect };

/** Waits for the WASM app to take over the server-rendered page. */
export async function waitForHydration(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/**
 * Collects the page's uncaught errors and Content-Security-Policy violations (a blocked hydration
 * script would otherwise go unnoticed until someone clicks); the returned check fails the test if
 * there were any. Call it before the page's first navigation. The `page` fixture does this itself;
 * pages of other contexts (a second person) need it explicitly.
 */
export async function watchForErrors(page: Page): Promise<() => void> {
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // A Rust panic in the app is logged (with its message and place) just before the "unreachable"
    // page error it becomes: keep the message, it is what says what broke.
    if (message.type() === "error" && /Content Security Policy|Refused to|panicked at/i.test(message.text())) {
      problems.push(`console: ${message.text()}`);
    }
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(`Refused to load: CSP violation of ${event.violatedDirective} by ${event.blockedURI}`);
    });
  });
  return () => expect(problems, "no script errors or CSP violations").toEqual([]);
}

export const PASSWORD = "velvet-orbit-cactus-91";

/** A fresh username (letters, digits and `_`, at most 32 characters). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Registers through the form and waits for the signed-in home page. */
export async function register(page: Page, username: string, displayName?: string) {
  await page.goto("/register");
  await waitForHydration(page);
  await page.getByLabel("Username").fill(username);
  if (displayName) await page.getByLabel("Display name").fill(displayName);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("greeting")).toHaveText(`Hello, ${displayName ?? username}!`);
  await waitForHydration(page);
}

/** Signs in through the form on the current login page. */
export async function signIn(page: Page, username: string, password = PASSWORD) {
  await waitForHydration(page);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** The first admin of the store the browser tests run against (scripts/test.sh creates it). */
export const ADMIN = "e2e_admin";

/** Signs in as the admin through the login form. */
export async function signInAsAdmin(page: Page) {
  await page.goto("/login");
  await signIn(page, ADMIN);
  await expect(page.getByRole("link", { name: "Admin" })).toBeVisible();
}

// Files to upload: a real picture and a document.
// A 16 × 12 PNG.
export const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAABAAAAAMCAIAAADkharWAAABVUlEQVR4nA3LIQHFIBRAUSJMEACJXADEIrwICAIgkTcAgggvwgQBkEgCIBaBCP8ff4wxXAZnuA2PQQzRkA0YmkENr2EYluEzHIMxlsviLLflsYglWrIFS7Oo5bUMy7J8lmP/wXN5nOf2PB7xRE/24Gke9bye4Vmez3P8PwSugAvcgScggRjIAQItoIE3MAIr8AVO+AfhEpxwC48gQhSygNAEFV5hCEv4hCP/kLgSLnEnnoQkYiInSLSEJt7ESKzElzjpHwpXwRXuwlOQQizkAoVW0MJbGIVV+Aqn/EPlqrjKXXkqUomVXKHSKlp5K6OyKl/l1H9QLsUpt/IookQlKyhNUeVVhrKUTzn6D52r4zp35+lIJ3Zyh07raOftjM7qfJ3T/2FyTdzknjwTmcRJnjBpE528kzFZk29y5j9sro3b3JtnI5u4yRs2baObdzM2a/NtzuYHM20MkJBAK/YAAAAASUVORK5CYII=",
  "base64",
);
export const PDF = Buffer.from("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n");
