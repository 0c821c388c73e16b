// Two people in one room, for the specs that need a second person watching.
import { expect, waitForHydration, watchForErrors, register, uniqueName, type Page } from "./fixtures";
import type { Browser } from "@playwright/test";

/** Ana creates a private room and invites Ben; both end up with the room open. */
export async function roomForTwo(page: Page, browser: Browser) {
  const ana = uniqueName("ana");
  const ben = uniqueName("ben");
  const benContext = await browser.newContext();
  const benPage = await benContext.newPage();
  const checkBen = await watchForErrors(benPage);
  await register(benPage, ben, "Ben");
  await register(page, ana, "Ana");

  await page.goto("/rooms");
  await waitForHydration(page);
  const roomName = `Plans ${Math.floor(Math.random() * 1e6)}`;
  await page.getByLabel("Room name").fill(roomName);
  await page.getByLabel("Topic").fill("Next steps");
  await page.getByText("Private (members join by invitation)").click();
  await page.getByRole("button", { name: "Create room" }).click();
  await expect(page.getByRole("heading", { name: `🔒 ${roomName}` })).toBeVisible();
  await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");
  await page.getByLabel("Invite by username").fill(ben);
  await page.getByRole("button", { name: "Invite", exact: true }).click();
  await expect(page.getByRole("status").filter({ hasText: "Invited Ben" })).toBeVisible();

  // The invitation appears in Ben's sidebar live; accepting it opens the room, and Ana sees him join.
  await benPage
    .getByRole("navigation", { name: "Rooms" })
    .getByRole("button", { name: `Accept the invitation to ${roomName}` })
    .click();
  await expect(page.getByRole("complementary", { name: "Members" }).getByText("Ben", { exact: true })).toBeVisible();
  await benPage.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: roomName }).click();
  await expect(benPage.getByRole("heading", { name: `🔒 ${roomName}` })).toBeVisible();
  await expect(benPage.getByTestId("link-status")).toHaveAttribute("data-link", "online");
  return { ana, ben, benContext, benPage, checkBen, roomName };
}

export async function say(page: Page, text: string) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

export function messages(page: Page) {
  return page.getByLabel("Messages", { exact: true }).locator("article");
}

