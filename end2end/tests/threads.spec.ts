import { test, expect, type Page } from "./fixtures";
import { roomForTwo, say, messages } from "./two_people";

// Two people, a room and a live connection each take a while to set up in a debug build.
test.describe.configure({ timeout: 150_000 });

function message(page: Page, text: string) {
  return messages(page).filter({ hasText: text });
}

function threadPanel(page: Page) {
  return page.getByRole("complementary", { name: "Thread" });
}

function replies(page: Page, text?: string) {
  const all = threadPanel(page).getByLabel("Replies").locator("article");
  return text ? all.filter({ hasText: text }) : all;
}

async function openThread(page: Page, text: string) {
  const row = message(page, text);
  await row.hover();
  await row.getByRole("button", { name: "Reply in thread" }).click();
  await expect(threadPanel(page)).toBeVisible();
  await expect(page).toHaveURL(/\?thread=[0-9a-f-]+$/);
}

async function reply(page: Page, text: string, alsoInRoom = false) {
  const box = threadPanel(page).getByRole("textbox", { name: "Reply" });
  await box.fill(text);
  if (alsoInRoom) await threadPanel(page).getByLabel("Also send to the room").check();
  await box.press("Enter");
}

test("a thread beside the room: replies live both ways, the root's summary, also sent to the room, followed with unread marks", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  await say(page, "where shall we eat?");
  await expect(message(benPage, "where shall we eat?")).toHaveCount(1);

  // Ana starts a thread; the reply stays out of the room's timeline.
  await openThread(page, "where shall we eat?");
  await expect(threadPanel(page).getByRole("textbox", { name: "Reply" })).toBeFocused();
  await reply(page, "the usual place");
  await expect(replies(page, "the usual place")).toHaveCount(1);
  await expect(message(page, "the usual place")).toHaveCount(0);
  // Ben sees the root's summary grow live: the count and who replied.
  const benSummary = message(benPage, "where shall we eat?").getByTestId("thread-summary");
  await expect(benSummary).toContainText("1 reply");
  await expect(benSummary.getByTestId("thread-repliers")).toHaveText("Ana");
  await expect(message(benPage, "the usual place")).toHaveCount(0);

  // Ana closes the thread (Escape); Ben opens it from the summary and answers, also to the room.
  await threadPanel(page).getByRole("textbox", { name: "Reply" }).press("Escape");
  await expect(threadPanel(page)).toHaveCount(0);
  await benSummary.click();
  await expect(replies(benPage, "the usual place")).toHaveCount(1);
  await reply(benPage, "see you there at noon!", true);
  await expect(replies(benPage, "see you there at noon!")).toHaveCount(1);
  // Also in the room, with a way to its thread, for both.
  for (const p of [page, benPage]) {
    const shared = message(p, "see you there at noon!");
    await expect(shared).toHaveCount(1);
    await expect(shared.getByRole("button", { name: "View thread" })).toBeVisible();
  }
  const anaSummary = message(page, "where shall we eat?").getByTestId("thread-summary");
  await expect(anaSummary).toContainText("2 replies");
  await expect(anaSummary.getByTestId("thread-repliers")).toHaveText("Ben, you");

  // Ana follows the thread (she started it): the reply she has not read is counted and listed.
  const nav = page.getByRole("navigation", { name: "Rooms" });
  await expect(nav.getByTestId("threads-unread")).toHaveText(/^\s*,?\s*1\s*unread\s*$/);
  await nav.getByRole("link", { name: /^Threads/ }).click();
  const item = page.getByTestId("followed-thread");
  await expect(item).toHaveCount(1);
  await expect(item).toHaveAttribute("data-unread", "1");
  await expect(item.getByTestId("thread-unread")).toHaveText("1 unread");
  await item.getByRole("link", { name: "2 replies" }).click();
  await expect(replies(page)).toHaveCount(2);
  // Opened, it is read.
  await expect(nav.getByTestId("threads-unread")).toHaveCount(0);
  await nav.getByRole("link", { name: /^Threads/ }).click();
  await expect(page.getByTestId("followed-thread")).toHaveAttribute("data-unread", "0");
  await page.goBack();
  await expect(replies(page)).toHaveCount(2);

  // A reply made while Ben is offline reaches his open thread when he is back, without a reload.
  await expect(replies(benPage)).toHaveCount(2);
  await benContext.setOffline(true);
  await expect(benPage.getByTestId("link-status")).not.toHaveAttribute("data-link", "online");
  await reply(page, "running late, sorry!");
  await expect(replies(page, "running late, sorry!")).toHaveCount(1);
  await benContext.setOffline(false);
  await expect(benPage.getByTestId("link-status")).toHaveAttribute("data-link", "online", { timeout: 60_000 });
  await expect(replies(benPage, "running late, sorry!")).toHaveCount(1);
  await expect(replies(benPage)).toHaveCount(3);
  await expect(message(benPage, "where shall we eat?").getByTestId("thread-summary")).toContainText("3 replies");
  checkBen();
  await benContext.close();
});

test("on a phone the thread is its own view, and closing it returns to the room", async ({ page, browser }) => {
  const { benContext } = await roomForTwo(page, browser);
  await benContext.close();
  await page.setViewportSize({ width: 375, height: 740 });
  await say(page, "a question for a small screen");
  await openThread(page, "a question for a small screen");
  const box = await threadPanel(page).boundingBox();
  expect(box?.width).toBe(375);
  await reply(page, "answered on the phone");
  await expect(replies(page, "answered on the phone")).toHaveCount(1);
  await threadPanel(page).getByRole("button", { name: "Close thread" }).click();
  await expect(threadPanel(page)).toHaveCount(0);
  await expect(message(page, "a question for a small screen").getByTestId("thread-summary")).toContainText("1 reply");
  await expect(page.getByLabel("Message", { exact: true })).toBeVisible();
});
