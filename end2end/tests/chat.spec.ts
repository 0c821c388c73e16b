import { test, expect, waitForHydration, watchForErrors, register, uniqueName, type Page } from "./fixtures";
import type { Browser, BrowserContext } from "@playwright/test";
import { roomForTwo, say, messages } from "./two_people";

// Two people, a room and a live connection each take a while to set up in a debug build.
test.describe.configure({ timeout: 90_000 });

test("messages, typing and presence travel live between two people", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);

  await say(page, "Hello **Ben**!");
  await expect(messages(benPage).last()).toContainText("Hello Ben!");
  await expect(messages(benPage).last().locator("strong")).toHaveText("Ben");
  await say(benPage, "Hi Ana");
  await expect(messages(page).last()).toContainText("Hi Ana");
  await expect(page.getByTestId("pending-message")).toHaveCount(0);

  // Typing shows up for the other person, and expires.
  await page.getByLabel("Message", { exact: true }).pressSequentially("thinking", { delay: 50 });
  await expect(benPage.getByTestId("typing")).toHaveText("Ana is typing…");
  await expect(benPage.getByTestId("typing")).toHaveText("", { timeout: 9_000 });

  // Presence: Ana is online for Ben, and offline once she closes the page.
  const anaInBen = benPage.getByRole("complementary", { name: "Members" }).locator("li", { hasText: "Ana" });
  await expect(anaInBen).toHaveAttribute("data-presence", "online");
  await page.close();
  await expect(anaInBen).toHaveAttribute("data-presence", "offline");
  checkBen();
  await benContext.close();
});

test("user HTML is shown as text and runs nothing", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  let alerted = false;
  benPage.on("dialog", (dialog) => {
    alerted = true;
    void dialog.dismiss();
  });
  const payload = `<img src=x onerror=alert(1)> <script>alert(2)</script>`;
  await say(page, payload);
  const last = messages(benPage).last();
  await expect(last).toContainText("<img src=x onerror=alert(1)>");
  await expect(last).toContainText("<script>alert(2)</script>");
  await expect(last.locator("img, script")).toHaveCount(0);
  // A later message rendered after it: whatever the payload could have run has had its chance.
  await say(page, "after the payload");
  await expect(messages(benPage).last()).toContainText("after the payload");
  expect(alerted).toBe(false);
  checkBen();
  await benContext.close();
});

test("a person who goes offline gets every missed message once on return", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  await say(page, "before");
  await expect(messages(benPage)).toHaveCount(1);

  await benContext.setOffline(true);
  await expect(benPage.getByTestId("link-status")).not.toHaveAttribute("data-link", "online", { timeout: 30_000 });
  for (let i = 1; i <= 5; i++) await say(page, `while away ${i}`);
  await expect(messages(page)).toHaveCount(6);
  // Ben types while offline: it waits and is sent on reconnect.
  await say(benPage, "typed offline");
  await expect(benPage.getByTestId("pending-message")).toHaveCount(1);

  await benContext.setOffline(false);
  await expect(benPage.getByTestId("link-status")).toHaveAttribute("data-link", "online", { timeout: 40_000 });
  await expect(messages(benPage)).toHaveCount(7);
  const texts = await messages(benPage).locator(".message-body").allInnerTexts();
  expect(texts.map((t) => t.trim())).toEqual([
    "before",
    "while away 1",
    "while away 2",
    "while away 3",
    "while away 4",
    "while away 5",
    "typed offline",
  ]);
  await expect(messages(page).last()).toContainText("typed offline");
  await expect(messages(page)).toHaveCount(7);
  checkBen();
  await benContext.close();
});

test("scrolling up loads older history; the layout works at 375px", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  // 60 messages: more than one page (50).
  for (let i = 1; i <= 60; i++) {
    await say(page, `line ${i}`);
    if (i % 10 === 0) await expect(messages(page).last()).toContainText(`line ${i}`);
  }
  await benPage.reload();
  await waitForHydration(benPage);
  await expect(messages(benPage)).toHaveCount(50);
  await benPage.getByLabel("Messages", { exact: true }).evaluate((pane) => (pane.scrollTop = 0));
  await expect(messages(benPage)).toHaveCount(60);
  await expect(benPage.getByText("This is the beginning of the room.")).toBeVisible();

  await benPage.setViewportSize({ width: 375, height: 740 });
  await expect(benPage.getByLabel("Message", { exact: true })).toBeVisible();
  const overflow = await benPage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  checkBen();
  await benContext.close();
});

test("unread counts grow live and the room opens at the first unread message", async ({ page, browser }) => {
  const { benContext, benPage, checkBen, roomName } = await roomForTwo(page, browser);
  await say(page, "already read");
  await expect(messages(benPage)).toHaveCount(1);
  // Ben's read marker reaches the server before he leaves the room.
  await expect
    .poll(async () => {
      const answer = await benPage.request.get("/api/rooms/mine");
      if (!answer.ok()) return -1;
      const rooms: { name: string; read_seq: number }[] = await answer.json();
      return rooms.find((r) => r.name === roomName)?.read_seq ?? -1;
    })
    .toBe(1);

  // Ben looks elsewhere while Ana writes more than one page.
  await benPage.goto("/rooms");
  await waitForHydration(benPage);
  for (let i = 1; i <= 70; i++) {
    await say(page, `news ${i}`);
    if (i % 10 === 0) await expect(messages(page).last()).toContainText(`news ${i}`);
  }
  const link = benPage.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: roomName });
  await expect(link.getByTestId("unread")).toHaveText("70");

  await link.click();
  await expect(benPage.getByTestId("unread-divider")).toBeVisible();
  await expect(benPage.locator("#msg-2")).toBeInViewport();
  await expect(benPage.locator("#msg-2")).toContainText("news 1");
  await expect(benPage.locator("#msg-71")).not.toBeInViewport();
  // Viewing marks the room read: the badge goes away.
  await expect(link.getByTestId("unread")).toHaveCount(0);
  await expect(messages(benPage)).toHaveCount(71);
  checkBen();
  await benContext.close();
});

test("sending too fast shows a clear error on the message, which can be retried", async ({ page }) => {
  await register(page, uniqueName("ana"), "Ana");
  await page.goto("/rooms");
  await waitForHydration(page);
  await page.getByLabel("Room name").fill(`Busy ${Math.floor(Math.random() * 1e6)}`);
  await page.getByRole("button", { name: "Create room" }).click();
  await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");

  // Other connections of the same account (as a script would open) use up the per-user budget and keep
  // it used up; every send attempt counts, even one the server then refuses. Twelve of them, because each
  // handles its commands one at a time: a send that won a token then waits for the store (a slow one on
  // the MongoDB-wire test server: the CI run that had three of them saw all three waiting at once, and the
  // refill went to the page), while the others take the next refills. Resolves once the server has said
  // "rate limited" to each, i.e. the budget is empty. Each keeps at most 200 sends waiting for an answer,
  // so a busy server never sees a connection run too far ahead.
  // Access tokens live 5 s in the test server and a script has no page to renew them: the upgrade of a
  // socket opened after expiry is refused (401, which a browser reports as close code 1006). So the
  // script renews the session first, as the page would, and again (one renewal at a time, which is
  // how the refresh token's rotation expects it) when a socket is refused before it opened.
  await page.evaluate(() => {
    let renewing: Promise<unknown> | null = null;
    const renew = () =>
      (renewing ??= fetch("/api/auth/refresh", { method: "POST" }).finally(() => {
        renewing = null;
      }));
    const blast = (attempt = 0): Promise<void> =>
      new Promise<void>((limited, failed) => {
        const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/ws");
        let opened = false;
        ws.binaryType = "arraybuffer";
        const frame = (msg: object) => {
          const json = new TextEncoder().encode(JSON.stringify(msg));
          const bytes = new Uint8Array(json.length + 1);
          bytes.set(json, 1);
          return bytes;
        };
        let sent = 0;
        let answered = 0;
        ws.onmessage = (event) => {
          const text = new TextDecoder().decode(event.data as ArrayBuffer);
          if (text.includes('"type":"error"')) answered++;
          if (text.includes('"rate_limited"')) limited();
        };
        ws.onclose = (event) => {
          if (!opened && attempt < 5) renew().then(() => blast(attempt + 1).then(limited, failed), failed);
          else failed(new Error(`the blasting socket closed: ${event.code} ${event.reason} (opened: ${opened})`));
        };
        ws.onopen = () => {
          opened = true;
          ws.send(frame({ type: "hello", cursors: [] }));
          const timer = setInterval(() => {
            while (sent - answered < 200) {
              ws.send(frame({ type: "send", room: "00000000-0000-0000-0000-000000000000", nonce: `b${sent++}`, body: "x" }));
            }
          }, 4);
          // Kept up until the test has seen its own message refused (on a slow store, exhausting the
          // budget takes seconds).
          const stop = () => {
            clearInterval(timer);
            ws.onclose = null;
            ws.close();
          };
          ((window as any).__stopBlasting ??= []).push(stop);
        };
      });
    return renew().then(() => Promise.all(Array.from({ length: 12 }, () => blast())).then(() => undefined));
  });
  // The test server allows 200 per 10 s: one new message every 50 ms, which a blaster usually takes
  // first. The page says a few things until one of them is refused.
  const refused = page.getByTestId("pending-message").getByRole("alert").first();
  let said = 0;
  await expect(async () => {
    said++;
    await say(page, `message ${said}`);
    await expect(refused).toContainText("You are sending messages too fast", { timeout: 5_000 });
  }).toPass({ timeout: 90_000 });
  await page.evaluate(() => (window as any).__stopBlasting.forEach((stop: () => void) => stop()));

  // Retry sends them once the budget has refilled (a retry too early is refused again and offers
  // Retry again).
  const retries = page.getByTestId("pending-message").getByRole("button", { name: "Retry" });
  await expect(async () => {
    while ((await retries.count()) > 0) await retries.first().click();
    await expect(page.getByTestId("pending-message")).toHaveCount(0, { timeout: 3_000 });
  }).toPass({ timeout: 60_000 });
  await expect(messages(page)).toHaveCount(said);
});

test("joining a public room lists the new member at once; times and days are the reader's own", async ({ page, browser }) => {
  await register(page, uniqueName("ana"), "Ana");
  await page.goto("/rooms");
  await waitForHydration(page);
  const roomName = `Open ${Math.floor(Math.random() * 1e6)}`;
  await page.getByLabel("Room name").fill(roomName);
  await page.getByRole("button", { name: "Create room" }).click();
  await expect(page.getByRole("heading", { name: `#${roomName}` })).toBeVisible();
  await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");
  await say(page, "first of two");
  await say(page, "second of two");
  await expect(messages(page)).toHaveCount(2);

  // Ben reads in a time zone 14 hours ahead of UTC.
  const zone = "Pacific/Kiritimati";
  const benContext = await browser.newContext({ timezoneId: zone });
  const benPage = await benContext.newPage();
  const checkBen = await watchForErrors(benPage);
  await register(benPage, uniqueName("ben"), "Ben");
  await benPage.goto(page.url());
  await waitForHydration(benPage);
  const members = benPage.getByRole("complementary", { name: "Members" });
  await expect(members.getByText("Ben", { exact: true })).toHaveCount(0);
  await benPage.getByRole("button", { name: "Join room" }).click();
  await expect(members.getByText("Ben", { exact: true })).toBeVisible();
  await expect(page.getByRole("complementary", { name: "Members" }).getByText("Ben", { exact: true })).toBeVisible();

  // The time shown is Ben's wall clock, with the whole date on hover; the day has a heading; Ana's two
  // messages share one name.
  const time = messages(benPage).first().locator("time");
  const at = new Date((await time.getAttribute("datetime")) ?? "");
  const local = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(at);
  await expect(time).toHaveText(local);
  await expect(time).toHaveAttribute("title", new RegExp(`${local}$`));
  await expect(benPage.getByTestId("day-heading")).toHaveText(["Today"]);
  await expect(messages(benPage).nth(1)).toHaveAttribute("data-continued", "true");
  await expect(messages(benPage).first()).not.toHaveAttribute("data-continued", "true");
  checkBen();
  await benContext.close();
});
