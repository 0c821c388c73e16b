import { test, expect, waitForHydration, uniqueName, PASSWORD } from "./fixtures";

// A throttled link and a debug build's WebAssembly: hydration takes a while on purpose.
test.describe.configure({ timeout: 180_000 });

test("what a person types before the page hydrates is kept, on a slow link, and the form then works", async ({ page, context }) => {
  // 1.6 Mbit/s down, 750 kbit/s up, 150 ms round trip, as measured in the issue.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 150,
    downloadThroughput: 1_600_000 / 8,
    uploadThroughput: 750_000 / 8,
  });
  // The app's WebAssembly is held back until the typing is done, so the typing is surely before hydration.
  let typed!: () => void;
  const typingDone = new Promise<void>((resolve) => (typed = resolve));
  await page.route("**/*.wasm", async (route) => {
    await typingDone;
    await route.continue();
  });

  const name = uniqueName("early");
  await page.goto("/register", { waitUntil: "domcontentloaded" });
  await page.getByLabel("Username").pressSequentially(name);
  await page.getByLabel("Display name").pressSequentially("Early Bird");
  await page.getByLabel("Password", { exact: true }).pressSequentially(PASSWORD);
  expect(await page.locator("body").getAttribute("data-hydrated")).not.toBe("true");
  typed();

  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true", { timeout: 150_000 });
  await expect(page.getByLabel("Username")).toHaveValue(name);
  await expect(page.getByLabel("Display name")).toHaveValue("Early Bird");
  await expect(page.getByLabel("Password", { exact: true })).toHaveValue(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByTestId("greeting")).toHaveText("Hello, Early Bird!", { timeout: 60_000 });
});

test("registering and signing in work as plain form posts, without WebAssembly", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  const name = uniqueName("plain");

  await page.goto("/register");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Display name").fill("Plain Post");
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId("greeting")).toHaveText("Hello, Plain Post!");

  // Signing out (which lands on the sign-in page, as it does with scripts) and in again.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill("not-the-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  // Refused: back on the form, which says why.
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole("alert")).toContainText("Wrong username or password");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByTestId("greeting")).toHaveText("Hello, Plain Post!");

  // A taken username is refused with the reason, on the form.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto("/register");
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Confirm password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page).toHaveURL(/\/register/);
  await expect(page.getByText("That username is taken.", { exact: false })).toBeVisible();
  await context.close();
});
