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

test("deleting a room asks in the page and waits for its name; a moderator's message deletion asks too", async ({ page, browser }) => {
  // Ben makes a room and says something in it.
  const benContext = await browser.newContext();
  const benPage = await benContext.newPage();
  const checkBen = await watchForErrors(benPage);
  await register(benPage, uniqueName("ben"), "Ben");
  await benPage.goto("/rooms");
  await waitForHydration(benPage);
  const roomName = `Doomed ${Math.floor(Math.random() * 1e6)}`;
  await benPage.getByLabel("Room name").fill(roomName);
  await benPage.getByRole("button", { name: "Create room" }).click();
  await expect(benPage).toHaveURL(/\/rooms\/[0-9a-f-]+$/);
  await benPage.getByLabel("Message", { exact: true }).fill("spam spam spam");
  await benPage.getByLabel("Message", { exact: true }).press("Enter");
  await expect(benPage.getByTestId("pending-message")).toHaveCount(0);

  // The admin removes the message from the room page: an in-page dialog asks first.
  await signInAsAdmin(page);
  await page.goto(new URL(benPage.url()).pathname);
  await waitForHydration(page);
  const spam = page.getByLabel("Messages", { exact: true }).locator("article", { hasText: "spam spam spam" });
  await spam.hover();
  await spam.getByRole("button", { name: "Delete (admin)" }).click();
  const ask = page.getByRole("dialog", { name: /Delete this message by Ben for everyone/ });
  await expect(ask).toBeVisible();
  await ask.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(benPage.getByLabel("Messages", { exact: true }).locator("article").first()).toContainText("This message was deleted.");

  // Deleting the room waits until its name is typed.
  await page.goto("/admin/rooms");
  await waitForHydration(page);
  await page.getByLabel("Search rooms").fill(roomName);
  const row = page.locator(`tr[data-room="${roomName}"]`);
  await expect(row).toHaveCount(1);
  await row.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: `Delete “${roomName}” for everyone?` });
  await expect(dialog).toBeVisible();
  const confirm = dialog.getByRole("button", { name: "Delete room" });
  await expect(confirm).toBeDisabled();
  await dialog.getByLabel(`Type “${roomName}” to confirm`).fill(roomName.slice(0, -1));
  await expect(confirm).toBeDisabled();
  await dialog.getByLabel(`Type “${roomName}” to confirm`).fill(roomName);
  await confirm.click();
  await expect(page.getByRole("status").filter({ hasText: `Deleted ${roomName}.` })).toBeVisible();
  await expect(row).toHaveCount(0);
  checkBen();
  await benContext.close();
});
