import AxeBuilder from "@axe-core/playwright";
import { test, expect, waitForHydration, register, signInAsAdmin, uniqueName, PNG, PDF, type Page } from "./fixtures";

// Every page, signed out, signed in and as an admin, in light and dark: a debug build takes a while.
test.describe.configure({ timeout: 180_000 });

/** The serious and critical WCAG 2.1 A/AA findings on the page as it is now, one line each. */
async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}): ${n.target.join(" ")} - ${n.failureSummary ?? ""}`));
}

/** Opens `path`, waits for the app, and records what axe finds there under `name`. */
async function check(page: Page, found: Record<string, string[]>, name: string, path: string, ready?: () => Promise<void>) {
  await page.goto(path);
  await waitForHydration(page);
  if (ready) await ready();
  const violations = await seriousViolations(page);
  if (violations.length > 0) found[name] = violations;
}

for (const colorScheme of ["light", "dark"] as const) {
  test(`no page has serious or critical accessibility violations (${colorScheme})`, async ({ page, browser }) => {
    await page.emulateMedia({ colorScheme });
    const found: Record<string, string[]> = {};

    await check(page, found, "login", "/login");
    await check(page, found, "register", "/register");
    await check(page, found, "404", "/no-such-page");

    await register(page, uniqueName("axe"), "Axe Reader");
    // With a profile picture, so faces are pictures on the pages that follow.
    await page.goto("/profile");
    await waitForHydration(page);
    await page.getByLabel("Choose a picture").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: PNG });
    await expect(page.getByRole("status").filter({ hasText: "Profile picture saved." })).toBeVisible();
    await check(page, found, "home", "/");
    await check(page, found, "rooms", "/rooms");
    await page.getByLabel("Room name").fill(`Axe ${colorScheme} ${Math.floor(Math.random() * 1e6)}`);
    await page.getByRole("button", { name: "Create room" }).click();
    await expect(page).toHaveURL(/\/rooms\/[0-9a-f-]+$/);
    const room = new URL(page.url()).pathname;
    await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");
    for (const text of ["Hello **there**", "A second line from the same person", "and a [link](https://example.com/)"]) {
      await page.getByLabel("Message", { exact: true }).fill(text);
      await page.getByLabel("Message", { exact: true }).press("Enter");
    }
    await expect(page.getByLabel("Messages", { exact: true }).locator("article")).toHaveCount(3);
    // A reaction and an edited message, so their controls are checked too.
    const first = page.getByLabel("Messages", { exact: true }).locator("article").first();
    await first.hover();
    await first.getByRole("button", { name: "Add reaction" }).click();
    await page.getByRole("searchbox", { name: "Search emoji" }).fill("thumbs up");
    await page.getByRole("searchbox", { name: "Search emoji" }).press("Enter");
    await page.getByLabel("Message", { exact: true }).press("ArrowUp");
    await page.getByRole("textbox", { name: "Edit message" }).fill("and a [link](https://example.com/), edited");
    await page.getByRole("textbox", { name: "Edit message" }).press("Enter");
    // A picture and a document: first in the tray, with the picture's alt text field, then sent.
    const chooser = page.waitForEvent("filechooser");
    await page.getByRole("button", { name: "Attach file" }).click();
    await (await chooser).setFiles([
      { name: "cat.png", mimeType: "image/png", buffer: PNG },
      { name: "plan.pdf", mimeType: "application/pdf", buffer: PDF },
    ]);
    const tray = page.getByRole("list", { name: "Files to send" });
    await expect(tray.getByLabel("Alt text for cat.png")).toBeVisible();
    await expect(tray.getByRole("button", { name: "Remove plan.pdf" })).toBeVisible();
    found["composer with files to send"] = await seriousViolations(page);
    await page.getByLabel("Message", { exact: true }).fill("the cat and the plan");
    await page.getByLabel("Message", { exact: true }).press("Enter");
    await expect(tray).toHaveCount(0);
    await check(page, found, "room with messages", room, async () => {
      await expect(page.getByLabel("Messages", { exact: true }).locator("article")).toHaveCount(4);
      await expect(page.getByTestId("file-card")).toHaveCount(1);
      await expect(page.getByRole("img", { name: "cat.png" })).toBeVisible();
      await expect(page.getByTestId("reaction")).toHaveCount(1);
      await expect(page.getByRole("button", { name: "(edited)" })).toHaveCount(1);
    });
    // With the emoji picker and the delete confirmation open.
    await first.hover();
    await first.getByRole("button", { name: "Add reaction" }).click();
    found["room with the emoji picker"] = await seriousViolations(page);
    await page.getByRole("searchbox", { name: "Search emoji" }).press("Escape");
    await first.hover();
    await first.getByRole("button", { name: "Delete", exact: true }).click();
    await expect(page.getByRole("dialog", { name: "Delete this message?" })).toBeVisible();
    found["room with the delete confirmation"] = await seriousViolations(page);
    await page.keyboard.press("Escape");
    // With a thread open beside the room, and the Threads view.
    await first.hover();
    await first.getByRole("button", { name: "Reply in thread" }).click();
    const thread = page.getByRole("complementary", { name: "Thread" });
    await thread.getByRole("textbox", { name: "Reply" }).fill("a reply in the thread");
    await thread.getByRole("textbox", { name: "Reply" }).press("Enter");
    await expect(thread.getByLabel("Replies").locator("article")).toHaveCount(1);
    await expect(first.getByTestId("thread-summary")).toContainText("1 reply");
    found["room with a thread open"] = await seriousViolations(page);
    await check(page, found, "threads", "/threads", async () => {
      await expect(page.getByTestId("followed-thread")).toHaveCount(1);
    });
    await check(page, found, "search results", "/search?q=hello", async () => {
      await expect(page.getByTestId("search-result")).toHaveCount(1);
    });
    await check(page, found, "search without results", "/search?q=zebra", async () => {
      await expect(page.getByTestId("no-results")).toBeVisible();
    });
    for (const [name, list] of Object.entries(found)) if (list.length === 0) delete found[name];
    // The room list again, now with a public room of the reader's in it.
    await check(page, found, "rooms with a room", "/rooms");
    await check(page, found, "profile", "/profile");
    await check(page, found, "sessions", "/sessions");

    const admin = await browser.newContext({ colorScheme });
    const adminPage = await admin.newPage();
    await signInAsAdmin(adminPage);
    await check(adminPage, found, "admin dashboard", "/admin");
    await check(adminPage, found, "admin users", "/admin/users");
    await check(adminPage, found, "admin rooms", "/admin/rooms");
    await check(adminPage, found, "admin audit", "/admin/audit");
    await check(adminPage, found, "admin search", "/admin/search?q=hello", async () => {
      await expect(adminPage.getByTestId("search-result").first()).toBeVisible();
    });
    await admin.close();

    expect(found, "serious or critical axe violations per page").toEqual({});
  });
}

test("the keyboard reaches the main content first, focus is visible, and Escape closes the room list", async ({ page }) => {
  await register(page, uniqueName("keys"), "Keys");
  await page.goto("/rooms");
  await waitForHydration(page);
  await page.keyboard.press("Tab");
  const skip = page.getByRole("link", { name: "Skip to main content" });
  await expect(skip).toBeFocused();
  await expect(skip).toBeVisible();
  const outline = await skip.evaluate((el) => getComputedStyle(el).outlineStyle);
  expect(outline).not.toBe("none");
  await page.keyboard.press("Enter");
  await expect(page.locator("main")).toBeFocused();

  await page.setViewportSize({ width: 375, height: 740 });
  const toggle = page.getByRole("button", { name: "Toggle the room list" });
  await toggle.click();
  await expect(page.getByRole("navigation", { name: "Rooms" })).toBeVisible();
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  await page.keyboard.press("Escape");
  await expect(page.getByRole("navigation", { name: "Rooms" })).toBeHidden();
  await expect(toggle).toHaveAttribute("aria-expanded", "false");
});
