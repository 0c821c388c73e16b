import { test, expect, type Page } from "./fixtures";
import { roomForTwo, say, messages } from "./two_people";

// Two people, a room and a live connection each take a while to set up in a debug build.
test.describe.configure({ timeout: 120_000 });

function message(page: Page, text: string) {
  return messages(page).filter({ hasText: text });
}

/** Opens the message's reaction picker and picks the emoji found by `search` with Enter. */
async function reactWith(page: Page, text: string, search: string) {
  const row = message(page, text);
  await row.hover();
  await row.getByRole("button", { name: "Add reaction" }).click();
  const picker = page.getByRole("dialog", { name: "Pick a reaction" });
  await expect(picker.getByRole("searchbox", { name: "Search emoji" })).toBeFocused();
  await picker.getByRole("searchbox", { name: "Search emoji" }).fill(search);
  await picker.getByRole("searchbox", { name: "Search emoji" }).press("Enter");
  await expect(picker).toHaveCount(0);
}

test("a reaction toggled by one person is seen live by the other, with its count and who reacted", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  await say(page, "who is in for lunch?");
  await expect(message(benPage, "who is in for lunch?")).toHaveCount(1);

  await reactWith(benPage, "who is in for lunch?", "party");
  const onAna = message(page, "who is in for lunch?").getByTestId("reaction");
  await expect(onAna).toHaveCount(1);
  await expect(onAna).toHaveAccessibleName("🎉 1: Ben");
  await expect(onAna).toHaveAttribute("aria-pressed", "false");
  await expect(onAna).toHaveAttribute("title", "Ben");

  // Ana adds hers by clicking the existing reaction; both see two, and who.
  await onAna.click();
  await expect(onAna).toHaveAccessibleName("🎉 2: Ben, you");
  await expect(onAna).toHaveAttribute("aria-pressed", "true");
  const onBen = message(benPage, "who is in for lunch?").getByTestId("reaction");
  await expect(onBen).toHaveAccessibleName("🎉 2: you, Ana");

  // And takes it back.
  await onAna.click();
  await expect(onBen).toHaveAccessibleName("🎉 1: you");
  await expect(onAna).toHaveAccessibleName("🎉 1: Ben");
  // Escape closes the picker without reacting.
  const row = message(page, "who is in for lunch?");
  await row.hover();
  await row.getByRole("button", { name: "Add reaction" }).click();
  await page.getByRole("searchbox", { name: "Search emoji" }).press("Escape");
  await expect(page.getByRole("dialog", { name: "Pick a reaction" })).toHaveCount(0);
  await expect(onAna).toHaveCount(1);
  checkBen();
  await benContext.close();
});

test("edits and deletions made while someone was offline are shown when they are back, without a reload", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  await say(page, "first words");
  await say(page, "second words");
  await expect(messages(benPage)).toHaveCount(2);
  const benNavigations: string[] = [];
  benPage.on("framenavigated", (frame) => {
    if (frame === benPage.mainFrame()) benNavigations.push(frame.url());
  });

  await benContext.setOffline(true);
  await expect(benPage.getByTestId("link-status")).not.toHaveAttribute("data-link", "online", { timeout: 30_000 });

  // Up in the empty composer edits Ana's last message in place; Enter saves.
  const composer = page.getByLabel("Message", { exact: true });
  await composer.focus();
  await composer.press("ArrowUp");
  const editor = page.getByRole("textbox", { name: "Edit message" });
  await expect(editor).toBeFocused();
  await expect(editor).toHaveValue("second words");
  await editor.fill("second words, better");
  await editor.press("Enter");
  await expect(editor).toHaveCount(0);
  await expect(composer).toBeFocused();
  await expect(message(page, "second words, better")).toContainText("(edited)");

  // Deleting asks first, in the page: Escape keeps the message, Delete removes it.
  const first = message(page, "first words");
  await first.hover();
  await first.getByRole("button", { name: "Delete", exact: true }).click();
  const dialog = page.getByRole("dialog", { name: "Delete this message?" });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(message(page, "first words")).toHaveCount(1);
  await first.hover();
  await first.getByRole("button", { name: "Delete", exact: true }).click();
  await dialog.getByRole("button", { name: "Delete", exact: true }).click();
  await expect(messages(page).first()).toContainText("This message was deleted.");

  // Ben comes back: his page shows both changes by itself.
  await benContext.setOffline(false);
  await expect(benPage.getByTestId("link-status")).toHaveAttribute("data-link", "online", { timeout: 40_000 });
  await expect(messages(benPage).first()).toContainText("This message was deleted.", { timeout: 30_000 });
  await expect(message(benPage, "second words, better")).toContainText("(edited)");
  await expect(messages(benPage)).toHaveCount(2);
  expect(benNavigations, "no reload").toEqual([]);

  // "(edited)" shows what it said before.
  await message(benPage, "second words, better").getByRole("button", { name: "(edited)" }).click();
  await expect(benPage.getByRole("region", { name: "Earlier versions" })).toContainText("second words");
  checkBen();
  await benContext.close();
});

test("every message has its author's face, and editing can be cancelled with Escape", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  await say(page, "keep these words");
  await say(benPage, "hello from Ben");
  await expect(messages(page)).toHaveCount(2);
  await expect(message(page, "keep these words").getByTestId("avatar")).toHaveText("A");
  await expect(message(page, "hello from Ben").getByTestId("avatar")).toHaveText("B");
  await expect(page.getByRole("complementary", { name: "Members" }).getByTestId("avatar")).toHaveCount(2);

  const composer = page.getByLabel("Message", { exact: true });
  await composer.focus();
  await composer.press("ArrowUp");
  const editor = page.getByRole("textbox", { name: "Edit message" });
  await editor.fill("something else");
  await editor.press("Escape");
  await expect(editor).toHaveCount(0);
  await expect(message(page, "keep these words")).not.toContainText("(edited)");
  await expect(message(benPage, "keep these words")).toHaveCount(1);
  checkBen();
  await benContext.close();
});

test("@ suggests members, picked by keyboard; the person mentioned sees the highlight, the badge and the Mentions view", async ({ page, browser }) => {
  const { ben, benContext, benPage, checkBen, roomName } = await roomForTwo(page, browser);
  // Ben is elsewhere, so the mention stays unread for him.
  await benPage.getByRole("link", { name: "Mentions" }).click();
  await expect(benPage.getByRole("heading", { name: "Mentions" })).toBeVisible();

  const composer = page.getByLabel("Message", { exact: true });
  await composer.pressSequentially("can you look, @Be");
  const list = page.getByRole("listbox", { name: "People to mention" });
  await expect(list.getByRole("option")).toHaveCount(1);
  await expect(list.getByRole("option").first()).toHaveText(`Ben @${ben}`);
  await expect(list.getByRole("option").first()).toHaveAttribute("aria-selected", "true");
  await composer.press("Tab");
  await expect(list).toBeHidden();
  await expect(composer).toHaveValue(`can you look, @${ben} `);
  // Escape closes the suggestions and keeps what was typed.
  await composer.pressSequentially("and @ro");
  await expect(list.getByRole("option")).toHaveText(["@room (everyone in this room)"]);
  await composer.press("Escape");
  await expect(list).toBeHidden();
  await composer.press("Enter");
  await expect(messages(page).last()).toContainText(`can you look, @${ben} and @ro`);
  await expect(messages(page).last().locator(".mention")).toHaveText([`@${ben}`]);

  // Ben: a mention badge on the room, the count on Mentions, and the message listed, unread.
  const link = benPage.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: new RegExp(roomName) });
  await expect(link.getByTestId("mention-badge")).toHaveText(/@1/);
  await expect(benPage.getByRole("link", { name: /^Mentions\W+1 unread$/ })).toBeVisible();
  const item = benPage.getByTestId("mention");
  await expect(item).toHaveCount(1);
  await expect(item).toHaveAttribute("data-unread", "true");
  await expect(item).toContainText("can you look");
  await expect(item).toContainText(roomName);

  // In the room, the message stands out for him, and the badge goes once it is read.
  await item.getByRole("link", { name: roomName }).click();
  const mentioned = messages(benPage).filter({ hasText: "can you look" });
  await expect(mentioned).toHaveAttribute("data-mentions-me", "true");
  await expect(mentioned).toContainText("Mentions you");
  await expect(link.getByTestId("mention-badge")).toHaveCount(0);
  await expect(messages(page).last()).not.toHaveAttribute("data-mentions-me", "true");
  checkBen();
  await benContext.close();
});

test("notification levels: desktop notifications in a background tab, a muted room without an unread badge, the count in the tab title", async ({ page, browser }) => {
  const { ben, benContext, benPage, checkBen, roomName } = await roomForTwo(page, browser);
  // Ben's tab is in the background; the browser's Notification API records what would be shown.
  await benPage.addInitScript(() => {
    const shown: { title: string; body: string }[] = [];
    const objects: { onclick: (() => void) | null }[] = [];
    (window as unknown as { shownNotifications: typeof shown }).shownNotifications = shown;
    (window as unknown as { notificationObjects: typeof objects }).notificationObjects = objects;
    class RecordingNotification {
      static permission = "default";
      static async requestPermission() {
        RecordingNotification.permission = "granted";
        return "granted";
      }
      onclick: (() => void) | null = null;
      constructor(title: string, options?: { body?: string }) {
        shown.push({ title, body: options?.body ?? "" });
        objects.push(this);
      }
    }
    Object.defineProperty(window, "Notification", { value: RecordingNotification, configurable: true });
    Object.defineProperty(document, "hidden", { get: () => true, configurable: true });
  });
  const shown = () => benPage.evaluate(() => (window as unknown as { shownNotifications: { title: string; body: string }[] }).shownNotifications);
  await benPage.goto("/");
  await expect(benPage.getByTestId("greeting")).toBeVisible();
  await benPage.getByRole("button", { name: "Enable desktop notifications" }).click();
  await expect(benPage.getByRole("button", { name: "Enable desktop notifications" })).toHaveCount(0);

  const link = benPage.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: new RegExp(roomName) });
  await say(page, "one");
  await expect(link.getByTestId("unread")).toHaveText("1");
  await expect.poll(shown).toEqual([{ title: `Ana in ${roomName}`, body: "one" }]);
  await expect(benPage).toHaveTitle(/^\(1\) /);

  // Muted: no unread badge, no notification, nothing in the title; mentions still show.
  await link.click();
  await benPage.getByLabel("Notifications").selectOption("nothing");
  await benPage.getByRole("link", { name: "ML-CHAT" }).click();
  await expect(benPage.getByTestId("greeting")).toBeVisible();
  await say(page, "two");
  await say(page, `three for @${ben}!`);
  await expect(link.getByTestId("mention-badge")).toHaveText(/@1/);
  await expect(link.getByTestId("unread")).toHaveCount(0);
  await expect(link.getByTestId("muted")).toHaveCount(1);
  expect(await shown()).toHaveLength(1);
  await expect(benPage).toHaveTitle(/^\(1\) /);

  // Mentions only: a plain message stays quiet, a mention notifies.
  await link.click();
  await benPage.getByLabel("Notifications").selectOption("mentions");
  await benPage.getByRole("link", { name: "ML-CHAT" }).click();
  await expect(benPage.getByTestId("greeting")).toBeVisible();
  await say(page, "four");
  await say(page, `five for @${ben}!`);
  await expect.poll(async () => (await shown()).length).toBe(2);
  expect((await shown())[1].body).toBe(`five for @${ben}!`);
  // Clicking a notification opens its room.
  await benPage.evaluate(() => (window as unknown as { notificationObjects: { onclick: () => void }[] }).notificationObjects.at(-1)?.onclick());
  await expect(benPage.getByRole("heading", { name: `🔒 ${roomName}` })).toBeVisible();
  // The choice is kept: a reload shows it.
  await link.click();
  await benPage.reload();
  await expect(benPage.getByLabel("Notifications")).toHaveValue("mentions");
  checkBen();
  await benContext.close();
});
