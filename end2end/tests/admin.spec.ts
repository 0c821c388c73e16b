import { test, expect, waitForHydration, register, signInAsAdmin, uniqueName, watchForErrors } from "./fixtures";

test.describe.configure({ timeout: 90_000 });

test("an admin disables a user who has the chat open; they are signed out and told why", async ({ page, browser }) => {
  const ben = uniqueName("ben");
  const benContext = await browser.newContext();
  const benPage = await benContext.newPage();
  const checkBen = await watchForErrors(benPage);
  await register(benPage, ben, "Ben");
  await benPage.goto("/rooms");
  await waitForHydration(benPage);
  await expect(benPage.getByTestId("link-status")).toHaveAttribute("data-link", "online");

  await signInAsAdmin(page);
  await page.goto("/admin/users");
  await waitForHydration(page);
  await page.getByLabel("Search users").fill(ben);
  const row = page.locator(`tr[data-username="${ben}"]`);
  await expect(row).toHaveCount(1);
  await row.getByRole("button", { name: "Disable" }).click();
  await expect(page.getByRole("status").filter({ hasText: `${ben} is now disabled.` })).toBeVisible();
  await expect(row.getByTestId("status")).toHaveText("Disabled");

  // Ben's open page loses its connection and lands on the login page, which says why.
  await expect(benPage).toHaveURL(/\/login/, { timeout: 10_000 });
  await expect(benPage.getByText("This account has been disabled.")).toBeVisible();
  checkBen();

  // The audit log shows the action.
  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Action").selectOption("user.disable");
  const entry = page.locator('tr[data-action="user.disable"]', { hasText: `user:${ben}` });
  await expect(entry).toHaveCount(1);
  await expect(entry).toContainText("e2e_admin");
  await benContext.close();
});

test("a normal user who opens /admin gets a 403 page", async ({ page }) => {
  await register(page, uniqueName("ana"), "Ana");
  await expect(page.getByRole("link", { name: "Admin" })).toHaveCount(0);
  const response = await page.goto("/admin");
  expect(response?.status()).toBe(403);
  await expect(page.getByRole("heading", { name: "Admins only" })).toBeVisible();
  await waitForHydration(page);
  await expect(page.getByRole("heading", { name: "Admins only" })).toBeVisible();
});

test("the admin pages work at 375px wide and the dashboard shows live numbers", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await signInAsAdmin(page);
  await page.goto("/admin");
  await waitForHydration(page);
  await expect(page.getByTestId("stat-driver")).toHaveText(/embedded|mongodb/);
  const users = Number(await page.getByTestId("stat-users").innerText());
  expect(users).toBeGreaterThanOrEqual(1);
  await expect(page.getByTestId("stat-sockets")).not.toHaveText("0");
  for (const path of ["/admin", "/admin/users", "/admin/rooms", "/admin/audit"]) {
    await page.goto(path);
    await waitForHydration(page);
    await expect(page.getByRole("navigation", { name: "Admin" })).toBeVisible();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${path} fits 375px`).toBeLessThanOrEqual(0);
  }
});
