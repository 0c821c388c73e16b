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

  await page.goto("/profile");
  await waitForHydration(page);
  // Three token lifetimes pass while the page is open.
  await page.waitForTimeout(15_000);
  await page.getByLabel("Display name").fill("Dan After Expiry");
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByText("Display name saved.")).toBeVisible();
  await expect(page).toHaveURL(/\/profile$/);

  // A reload after another expiry renders signed in, too.
  await page.waitForTimeout(6_000);
  await page.reload();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByTestId("current-user")).toHaveText("Dan After Expiry");
});

test("signing out all other sessions logs the second browser out on its next action", async ({
  page,
  browser,
}) => {
  const username = uniqueName("eve");
  await register(page, username);

  const other = await browser.newContext();
  const second = await other.newPage();
  const checkSecond = watchForErrors(second);
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

  // Its next action is refused and it lands on the login page. (Its own renewal timer may get there
  // first: access tokens live 5 seconds in this run.)
  if (/\/profile$/.test(second.url())) {
    await second.getByRole("button", { name: "Save" }).click({ timeout: 2_000 }).catch(() => {});
  }
  await expect(second).toHaveURL(/\/login\?next=\/profile&reason=signed_out$/);
  await expect(second.getByText("You were signed out. Please sign in again.")).toBeVisible();
  checkSecond();
  await other.close();

  // The first browser is unaffected.
  await page.reload();
  await expect(page.getByTestId("current-user")).toBeVisible();
});
