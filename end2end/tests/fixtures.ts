import { test as base, expect, type Page } from "@playwright/test";

/**
 * A page that fails the test on any uncaught error or Content-Security-Policy violation: a blocked
 * hydration script would otherwise go unnoticed until someone clicks.
 */
export const test = base.extend<{ page: Page }>({
  page: async ({ page }, use) => {
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) {
        problems.push(`console: ${message.text()}`);
      }
    });
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (event) => {
        console.error(`Refused to load: CSP violation of ${event.violatedDirective} by ${event.blockedURI}`);
      });
    });
    await use(page);
    expect(problems, "no script errors or CSP violations").toEqual([]);
  },
});

export { expect };

/** Waits for the WASM app to take over the server-rendered page. */
export async function waitForHydration(page: Page) {
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}
