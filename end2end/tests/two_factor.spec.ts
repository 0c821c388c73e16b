import { createHmac } from "node:crypto";
import { test, expect, waitForHydration, register, signIn, signInAsAdmin, uniqueName, PASSWORD } from "./fixtures";
import type { Page } from "@playwright/test";

test.describe.configure({ timeout: 90_000 });

/** RFC 4648 base32 (no padding), as authenticator apps read the key. */
function base32Decode(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/[\s=]/g, "").toUpperCase()) {
    const value = alphabet.indexOf(c);
    if (value < 0) throw new Error(`not base32: ${c}`);
    bits += value.toString(2).padStart(5, "0");
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code (SHA-1, 6 digits, 30 s) of `step`, computed the way an authenticator app does. */
function totp(key: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32Decode(key)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return value.toString().padStart(6, "0");
}

const nowStep = () => Math.floor(Date.now() / 30_000);

/** Turns two-factor sign-in on from the profile page; answers the key and the recovery codes shown. */
async function enrol(page: Page): Promise<{ key: string; step: number; recovery: string[] }> {
  await page.goto("/profile");
  await waitForHydration(page);
  const card = page.getByRole("region", { name: "Two-factor sign-in" });
  await expect(card).toContainText("Two-factor sign-in is off.");
  await card.getByRole("button", { name: "Set up two-factor sign-in" }).click();
  await expect(card.getByRole("img", { name: "QR code for your authenticator app" }).locator("svg")).toBeVisible();
  const key = (await card.getByTestId("two-factor-key").textContent()) ?? "";
  expect(key.replace(/\s/g, "")).toMatch(/^[A-Z2-7]{32}$/);

  // A wrong code is refused in words, and nothing is turned on.
  const step = nowStep();
  const wrong = totp(key, step + 5);
  await card.getByLabel("Code from your app").fill(wrong);
  await card.getByRole("button", { name: "Turn on" }).click();
  await expect(card.getByText("That code does not match.", { exact: false })).toBeVisible();

  await card.getByLabel("Code from your app").fill(totp(key, step));
  await card.getByRole("button", { name: "Turn on" }).click();
  await expect(card.getByRole("status")).toHaveText("Two-factor sign-in is on.");
  const codes = card.getByTestId("recovery-codes").getByRole("listitem");
  await expect(codes).toHaveCount(10);
  const recovery = (await codes.allTextContents()).map((c) => c.trim());
  for (const code of recovery) expect(code).toMatch(/^[A-Z2-9]{5}-[A-Z2-9]{5}$/);
  await card.getByRole("button", { name: "I have saved them" }).click();
  await expect(card.getByTestId("recovery-codes")).toHaveCount(0);
  return { key, step, recovery };
}

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
}

test("two-factor sign-in: set up from the profile, then signing in asks for the app's code", async ({ page }) => {
  const username = uniqueName("tfa");
  await register(page, username);
  const { key, step } = await enrol(page);
  // The recovery codes are shown once: a reload shows the "on" state only.
  await page.reload();
  await waitForHydration(page);
  const card = page.getByRole("region", { name: "Two-factor sign-in" });
  await expect(card).toContainText("Two-factor sign-in is on");
  await expect(card.getByTestId("recovery-codes")).toHaveCount(0);
  await signOut(page);

  await page.goto("/login?next=/profile");
  await signIn(page, username);
  const code = page.getByLabel("Authentication code");
  await expect(code).toBeFocused();
  // The code that confirmed the set-up is spent: it is never accepted twice.
  await code.fill(totp(key, step));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByText("That code is not right.", { exact: false })).toBeVisible();
  await expect(page).toHaveURL(/\/login/);
  // The app's next code (a ±1 step window) signs in and goes where the person was headed.
  await code.fill(totp(key, Math.max(nowStep(), step + 1)));
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
});

test("two-factor sign-in: a recovery code works once, and turning it off needs the password and a code", async ({
  page,
}) => {
  const username = uniqueName("rec");
  await register(page, username);
  const { recovery } = await enrol(page);
  await signOut(page);

  await page.goto("/login");
  await signIn(page, username);
  await page.getByRole("button", { name: "Use a recovery code instead" }).click();
  await page.getByLabel("Recovery code").fill(recovery[0].toLowerCase());
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId("current-user")).toBeVisible();
  await expect(page).toHaveURL(/\/$/);
  await signOut(page);

  // The same recovery code again: refused.
  await page.goto("/login");
  await signIn(page, username);
  await page.getByRole("button", { name: "Use a recovery code instead" }).click();
  await page.getByLabel("Recovery code").fill(recovery[0]);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByText("That code is not right.", { exact: false })).toBeVisible();
  await page.getByLabel("Recovery code").fill(recovery[1]);
  await page.getByRole("button", { name: "Verify" }).click();
  await expect(page.getByTestId("current-user")).toBeVisible();

  // Turning it off: a wrong password is refused; the password with another recovery code works.
  await page.goto("/profile");
  await waitForHydration(page);
  const card = page.getByRole("region", { name: "Two-factor sign-in" });
  await card.getByLabel("Current password").fill("not-my-password");
  await card.getByLabel("Code from your app or a recovery code").fill(recovery[2]);
  await card.getByRole("button", { name: "Turn off two-factor sign-in" }).click();
  await expect(card.getByText("Your password is not correct.")).toBeVisible();
  await card.getByLabel("Current password").fill(PASSWORD);
  await card.getByRole("button", { name: "Turn off two-factor sign-in" }).click();
  await expect(card.getByRole("status")).toHaveText("Two-factor sign-in is off.");
  await signOut(page);

  // Off again: the password alone signs in.
  await signIn(page, username);
  await expect(page.getByTestId("current-user")).toBeVisible();
});

test("an admin sees who has two-factor sign-in and can reset it, audited", async ({ page, browser }) => {
  const username = uniqueName("lost");
  const userContext = await browser.newContext();
  const userPage = await userContext.newPage();
  await register(userPage, username);
  await enrol(userPage);
  await userPage.goto("/rooms");
  await waitForHydration(userPage);
  await expect(userPage.getByTestId("link-status")).toHaveAttribute("data-link", "online");

  await signInAsAdmin(page);
  await page.goto("/admin/users");
  await waitForHydration(page);
  await page.getByLabel("Search users").fill(username);
  const row = page.locator(`tr[data-username="${username}"]`);
  await expect(row.getByTestId("two-factor")).toHaveText("On");
  await row.getByRole("button", { name: "Reset two-factor" }).click();
  await expect(page.getByRole("status").filter({ hasText: `Two-factor sign-in is off for ${username}` })).toBeVisible();
  await expect(row.getByTestId("two-factor")).toHaveText("Off");

  // The reset signed the user out at once; the password alone signs in now.
  await expect(userPage).toHaveURL(/\/login/);
  await signIn(userPage, username);
  await expect(userPage.getByTestId("current-user")).toBeVisible();
  await userContext.close();

  await page.getByRole("navigation", { name: "Admin" }).getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Action").selectOption("user.reset_two_factor");
  await expect(page.locator('tr[data-action="user.reset_two_factor"]', { hasText: `user:${username}` })).toHaveCount(1);
});
