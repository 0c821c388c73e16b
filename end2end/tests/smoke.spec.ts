import { test, expect, waitForHydration, register, uniqueName } from "./fixtures";

test("the home page is server-rendered, styled and hydrates", async ({ page }) => {
  const response = await page.goto("/");
  expect(response?.status()).toBe(200);
  await expect(page).toHaveTitle("ML-CHAT");
  await expect(page.getByRole("heading", { name: "Welcome to ML-CHAT" })).toBeVisible();
  await waitForHydration(page);

  // Tailwind is applied: the top bar is a 56px flex row.
  const header = page.locator("header");
  await expect(header).toHaveCSS("display", "flex");
  await expect(header).toHaveCSS("height", "56px");
});

test("the sidebar is beside the main pane on a wide screen", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto("/");
  await waitForHydration(page);
  await expect(page.getByRole("navigation", { name: "Rooms" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Toggle the room list" })).toBeHidden();
});

test("at 375px the sidebar folds behind a menu button that works after hydration", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await page.goto("/");
  await waitForHydration(page);
  const sidebar = page.getByRole("navigation", { name: "Rooms" });
  const menu = page.getByRole("button", { name: "Toggle the room list" });
  await expect(sidebar).toBeHidden();
  await menu.click();
  await expect(sidebar).toBeVisible();
  await expect(menu).toHaveAttribute("aria-expanded", "true");
  await menu.click();
  await expect(sidebar).toBeHidden();
  // Nothing overflows sideways on a small phone.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test("the page follows the system colour scheme", async ({ page }) => {
  await page.emulateMedia({ colorScheme: "dark" });
  await page.goto("/");
  await expect(page.locator("body")).not.toHaveCSS("background-color", "rgb(255, 255, 255)");
  const dark = await page.locator("body").evaluate((b) => getComputedStyle(b).backgroundColor);
  await page.emulateMedia({ colorScheme: "light" });
  await expect(page.locator("body")).toHaveCSS("background-color", "rgb(255, 255, 255)");
  expect(dark).not.toBe("rgb(255, 255, 255)");
});

test("unknown addresses show the 404 page, and its link leads home", async ({ page }) => {
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page).toHaveTitle("Page not found · ML-CHAT");
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
  await waitForHydration(page);
  await page.getByRole("link", { name: "Back to ML-CHAT" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole("heading", { name: "Welcome to ML-CHAT" })).toBeVisible();
});

test("the favicon is served", async ({ request }) => {
  const response = await request.get("/favicon.svg");
  expect(response.status()).toBe(200);
  expect(response.headers()["content-type"]).toContain("image/svg+xml");
});

test("a new account lands in the default room's company, with clear ways forward", async ({ page }) => {
  await register(page, uniqueName("first"), "First Timer");
  // The fresh install's default public room, joined on registration.
  await expect(page.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: /general/ })).toBeVisible();
  const start = page.getByRole("navigation", { name: "Get started" });
  await expect(start.getByRole("link", { name: "Browse rooms" })).toBeVisible();
  await expect(start.getByRole("link", { name: "Start a direct message" })).toBeVisible();
  await start.getByRole("link", { name: "Create a room" }).click();
  await expect(page).toHaveURL(/\/rooms#new-room$/);
  await expect(page.getByLabel("Room name")).toBeVisible();
});
