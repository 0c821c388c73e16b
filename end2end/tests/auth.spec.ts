import {
  test,
  expect,
  waitForHydration,
  watchForErrors,
  register,
  signIn,
  uniqueName,
  PASSWORD,
} from "./fixtures";

test("a new user registers and lands in the app, signed in", async ({ page }) => {
  const username = uniqueName("ana");
  await register(page, username, "Ana Lima");
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("current-user")).toHaveText("Ana Lima");
  await expect(page.getByRole("link", { name: "Sessions" })).toBeVisible();
});

test("form errors are shown inline, in words", async ({ page }) => {
  const taken = uniqueName("ben");
  await register(page, taken);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);

  await page.goto("/register");
  await waitForHydration(page);
  await page.getByLabel("Username").fill(taken.toUpperCase());
  await page.getByLabel("Password", { exact: true }).fill("password1");
  await page.getByLabel("Confirm password").fill("password1");
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByText("This password is too easy to guess.", { exact: false })).toBeVisible();
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByText("That username is taken.", { exact: false })).toBeVisible();
  await expect(page.getByLabel("Username")).toHaveAttribute("aria-invalid", "true");

  await page.goto("/login");
  await signIn(page, taken, "not-the-password");
  await expect(page.getByRole("alert")).toHaveText("Wrong username or password.");
});

test("a user logs out, and logging in returns to the page they wanted", async ({ page }) => {
  const username = uniqueName("cai");
  await register(page, username);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);

  // Signed out, a protected page redirects to the login page during server rendering.
  const response = await page.goto("/profile");
  expect(response?.status()).toBe(200);
  await expect(page).toHaveURL(/\/login\?next=\/profile$/);
  await signIn(page, username);
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();

  // Signed in, the login page sends you on to the app.
  await page.goto("/login");
  await expect(page).toHaveURL(/\/$/);
});

test("the app keeps working past access-token expiry without a visible logout", async ({ page }) => {
  const username = uniqueName("dan");
  await register(page, username);
  const me = await page.request.get("/api/auth/me");
  expect((await me.json()).access_ttl_secs, "the test server runs with 5-second access tokens").toBe(5);

  // Three token lifetimes pass while the page is open: the page renews the token itself each time.
  let renewals = 0;
  page.on("response", (response) => {
    if (response.url().endsWith("/api/auth/refresh") && response.ok()) renewals++;
  });
  await page.goto("/profile");
  await waitForHydration(page);
  await expect.poll(() => renewals, { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
  await page.getByLabel("Display name").fill("Dan After Expiry");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("Display name saved.")).toBeVisible();
  await expect(page).toHaveURL(/\/profile$/);

  // With no page open, the access cookie runs out (the browser drops it); the next page load is
  // renewed on the server and renders signed in.
  const context = page.context();
  await page.goto("about:blank");
  await expect
    .poll(async () => (await context.cookies()).some((c) => c.name === "mlchat_access"), { timeout: 60_000 })
    .toBe(false);
  await page.goto("/profile");
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByTestId("current-user")).toHaveText("Dan After Expiry");
});

test("signing out all other sessions sends the second browser to the login page at once", async ({
  page,
  browser,
}) => {
  const username = uniqueName("eve");
  await register(page, username);

  const other = await browser.newContext();
  const second = await other.newPage();
  const checkSecond = await watchForErrors(second);
  await second.goto("/login");
  await signIn(second, username);
  await expect(second.getByTestId("greeting")).toBeVisible();
  await second.goto("/profile");
  await waitForHydration(second);

  await page.goto("/sessions");
  await waitForHydration(page);
  const sessions = page.getByRole("list", { name: "Active sessions" }).getByRole("listitem");
  await expect(sessions).toHaveCount(2);
  await expect(page.getByText("This device")).toHaveCount(1);
  await page.getByRole("button", { name: "Sign out all other sessions" }).click();
  await expect(page.getByText("Signed out 1 other session.")).toBeVisible();
  await expect(sessions).toHaveCount(1);

  // Its live connection is closed as signed out, and the page goes to the login page by itself.
  await expect(second).toHaveURL(/\/login\?next=\/profile&reason=signed_out$/);
  await expect(second.getByText("You were signed out. Please sign in again.")).toBeVisible();
  checkSecond();
  await other.close();

  // The first browser is unaffected.
  await page.reload();
  await expect(page.getByTestId("current-user")).toBeVisible();
});
