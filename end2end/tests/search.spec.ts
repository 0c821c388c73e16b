import { test, expect, register, uniqueName, watchForErrors, type Page } from "./fixtures";
import { roomForTwo, say, messages } from "./two_people";

// Three people and a room in a debug build take a while.
test.describe.configure({ timeout: 150_000 });

function searchBox(page: Page) {
  return page.getByRole("searchbox", { name: "Search messages" });
}

async function search(page: Page, text: string) {
  await searchBox(page).fill(text);
  await searchBox(page).press("Enter");
  await expect(page).toHaveURL(/\/search\?q=/);
}

test("the top bar finds messages by a word and by a prefix and opens them in context; a private room's messages stay private", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  for (let i = 1; i <= 6; i++) {
    await say(page, i === 3 ? "the quarterly budget draft is ready!" : `filler message ${i}!`);
  }
  await expect(messages(benPage)).toHaveCount(6);

  // By a whole word, from the keyboard: `/` focuses the box.
  await benPage.getByRole("heading", { level: 1 }).click();
  await benPage.keyboard.press("/");
  await expect(searchBox(benPage)).toBeFocused();
  await search(benPage, "BUDGET ");
  const results = benPage.getByTestId("search-result");
  await expect(results).toHaveCount(1);
  await expect(results.first().locator("mark")).toHaveText("budget");
  // By the start of a word, as typed.
  await search(benPage, "quarter");
  await expect(results).toHaveCount(1);
  await expect(results.first().locator("mark")).toHaveText("quarterly");
  // Enter on the result opens the room at the message, highlighted, with its neighbours.
  await results.first().getByRole("link").focus();
  await benPage.keyboard.press("Enter");
  await expect(benPage).toHaveURL(/\/rooms\/[0-9a-f-]+\?at=3$/);
  const found = messages(benPage).filter({ hasText: "the quarterly budget draft is ready!" });
  await expect(found).toHaveAttribute("data-highlighted", "true");
  await expect(found).toBeInViewport();
  await expect(messages(benPage).filter({ hasText: "filler message 2!" })).toHaveCount(1);
  await expect(messages(benPage).filter({ hasText: "filler message 4!" })).toHaveCount(1);
  // From the room's header: that room only.
  await benPage.getByRole("searchbox", { name: "Search this room" }).fill("filler");
  await benPage.getByRole("searchbox", { name: "Search this room" }).press("Enter");
  await expect(benPage).toHaveURL(/\/search\?q=filler&room=[0-9a-f-]+$/);
  await expect(results).toHaveCount(5);
  await expect(benPage.getByText("In one room only.")).toBeVisible();
  // Nothing for words nobody wrote.
  await search(benPage, "zebra ");
  await expect(benPage.getByTestId("no-results")).toBeVisible();
  // This browser keeps its recent searches.
  await expect(benPage.getByRole("navigation", { name: "Recent searches" }).getByRole("link", { name: "quarter" })).toBeVisible();

  // Someone outside the private room never finds its messages.
  const carlContext = await browser.newContext();
  const carl = await carlContext.newPage();
  const checkCarl = await watchForErrors(carl);
  await register(carl, uniqueName("carl"), "Carl");
  await search(carl, "budget ");
  await expect(carl.getByTestId("no-results")).toBeVisible();
  await expect(carl.getByTestId("search-result")).toHaveCount(0);
  checkCarl();
  checkBen();
  await carlContext.close();
  await benContext.close();
});

test("search works at 375px", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await register(page, uniqueName("tiny"), "Tiny");
  await page.goto("/");
  await expect(searchBox(page)).toBeVisible();
  const box = await searchBox(page).boundingBox();
  expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(375);
  await search(page, "nothing here ");
  await expect(page.getByTestId("no-results")).toBeVisible();
  // Nothing is wider than the screen.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
});
