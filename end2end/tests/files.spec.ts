import { test, expect, register, uniqueName, waitForHydration, PNG, PDF, type Page } from "./fixtures";
import { roomForTwo, messages, say } from "./two_people";

// Two people, a room and a live connection each take a while to set up in a debug build.
test.describe.configure({ timeout: 150_000 });


function filesToSend(page: Page) {
  return page.getByRole("list", { name: "Files to send" });
}

test("files go with a message: picked, dropped and pasted, shown as a thumbnail or a download card for both people", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);

  // "Attach file" opens the file chooser; the picture and the PDF upload, then wait for the message.
  const chooser = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Attach file" }).click();
  await (await chooser).setFiles([
    { name: "cat.png", mimeType: "image/png", buffer: PNG },
    { name: "plan.pdf", mimeType: "application/pdf", buffer: PDF },
  ]);
  await expect(filesToSend(page).getByRole("button", { name: "Remove cat.png" })).toBeVisible();
  await expect(filesToSend(page).getByRole("button", { name: "Remove plan.pdf" })).toBeVisible();
  // The picture gets a description; the PDF has nothing to describe.
  await filesToSend(page).getByLabel("Alt text for cat.png").fill("A cat asleep in the sun");
  await expect(filesToSend(page).getByLabel("Alt text for plan.pdf")).toHaveCount(0);
  await page.getByLabel("Message", { exact: true }).fill("the cat and the plan");
  await page.getByLabel("Message", { exact: true }).press("Enter");
  await expect(filesToSend(page)).toHaveCount(0);

  for (const p of [page, benPage]) {
    const sent = messages(p).filter({ hasText: "the cat and the plan" });
    await expect(sent).toHaveCount(1);
    const picture = sent.getByRole("img", { name: "A cat asleep in the sun" });
    await expect(picture).toBeVisible();
    // The thumbnail really loaded (a broken image has no natural width).
    await expect.poll(() => picture.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
    const card = sent.getByTestId("file-card");
    await expect(card).toContainText("plan.pdf");
    await expect(card).toContainText("PDF");
    await expect(card).toHaveAttribute("download", "plan.pdf");
  }

  // Ben opens the picture full size: it is served to him, a PNG.
  const link = messages(benPage).filter({ hasText: "the cat and the plan" }).getByRole("link", { name: "A cat asleep in the sun" });
  const href = await link.getAttribute("href");
  expect(href).toMatch(/^\/api\/files\/[0-9a-f-]+$/);
  const full = await benPage.request.get(href!);
  expect(full.status()).toBe(200);
  expect(full.headers()["content-type"]).toBe("image/png");

  // A file dropped on the composer, and a screenshot pasted into it, go with the next message; no
  // text is needed.
  const drop = await page.evaluateHandle(() => {
    const data = new DataTransfer();
    data.items.add(new File(["meeting notes"], "notes.txt", { type: "text/plain" }));
    return data;
  });
  await page.getByLabel("Message", { exact: true }).dispatchEvent("drop", { dataTransfer: drop });
  await expect(filesToSend(page).getByRole("button", { name: "Remove notes.txt" })).toBeVisible();
  await page.getByLabel("Message", { exact: true }).evaluate((box, png) => {
    const data = new DataTransfer();
    data.items.add(new File([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], "screenshot.png", { type: "image/png" }));
    box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, PNG.toString("base64"));
  await expect(filesToSend(page).getByRole("button", { name: "Remove screenshot.png" })).toBeVisible();
  await page.getByRole("button", { name: "Send" }).click();
  const filesOnly = messages(benPage).filter({ has: benPage.getByRole("img", { name: "screenshot.png" }) });
  await expect(filesOnly).toHaveCount(1);
  await expect(filesOnly.getByTestId("file-card")).toContainText("notes.txt");

  // An upload on its way can be cancelled: it never goes with a message.
  await page.route("**/api/files?*", async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await route.continue().catch(() => {});
  });
  const slow = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Attach file" }).click();
  await (await slow).setFiles([{ name: "slow.pdf", mimeType: "application/pdf", buffer: PDF }]);
  await expect(filesToSend(page).getByRole("progressbar", { name: "Uploading slow.pdf" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Send" })).toBeDisabled();
  await filesToSend(page).getByRole("button", { name: "Cancel upload of slow.pdf" }).click();
  await expect(filesToSend(page)).toHaveCount(0);
  await expect(page.getByRole("button", { name: "Send" })).toBeEnabled();
  await page.unroute("**/api/files?*");

  // A picture asked for in the moment Ben's access cookie ran out gets 401 (here: the first one asked
  // for now); his page renews the session and asks once more, so it still shows.
  let refused = 0;
  await benPage.route("**/api/files/*/thumbnail*", async (route) => {
    if (refused === 0) {
      refused += 1;
      await route.fulfill({ status: 401, body: "" });
    } else {
      await route.continue();
    }
  });
  const another = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Attach file" }).click();
  await (await another).setFiles([{ name: "dog.png", mimeType: "image/png", buffer: PNG }]);
  await expect(filesToSend(page).getByRole("button", { name: "Remove dog.png" })).toBeVisible();
  await page.getByLabel("Message", { exact: true }).fill("and the dog");
  await page.getByLabel("Message", { exact: true }).press("Enter");
  const dog = messages(benPage).filter({ hasText: "and the dog" }).getByRole("img", { name: "dog.png" });
  await expect(dog).toBeVisible();
  await expect.poll(() => dog.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
  expect(refused).toBe(1);
  await benPage.unroute("**/api/files/*/thumbnail*");

  // Deleting the message takes its files with it.
  const own = messages(page).filter({ hasText: "the cat and the plan" });
  await own.hover();
  await own.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("dialog", { name: "Delete this message?" }).getByRole("button", { name: "Delete", exact: true }).click();
  await expect(messages(benPage).filter({ hasText: "the cat and the plan" })).toHaveCount(0);
  expect((await benPage.request.get(href!)).status()).toBe(404);

  await checkBen();
  await benContext.close();
});

test("on a phone the composer offers the camera", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await register(page, uniqueName("ana"), "Ana");
  await page.goto("/rooms");
  await waitForHydration(page);
  await page.getByLabel("Room name").fill(`Photos ${Math.floor(Math.random() * 1e6)}`);
  await page.getByRole("button", { name: "Create room" }).click();
  await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");
  const photo = page.getByRole("button", { name: "Take photo" });
  await expect(photo).toBeVisible();
  const chooser = page.waitForEvent("filechooser");
  await photo.click();
  const camera = await chooser;
  expect(await camera.element().getAttribute("accept")).toBe("image/*");
  expect(await camera.element().getAttribute("capture")).toBe("environment");
  await camera.setFiles([{ name: "photo.png", mimeType: "image/png", buffer: PNG }]);
  await expect(filesToSend(page).getByRole("button", { name: "Remove photo.png" })).toBeVisible();
  // Nothing sticks out of the screen.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
});

test("a profile picture replaces the initials beside messages and in the member list, for everyone; removing it brings them back", async ({ page, browser }) => {
  const { benContext, benPage, checkBen } = await roomForTwo(page, browser);
  const room = page.url();
  await say(page, "a message with my face");
  await expect(messages(benPage).filter({ hasText: "a message with my face" })).toHaveCount(1);

  await page.goto("/profile");
  await waitForHydration(page);
  const card = page.getByRole("region", { name: "Profile picture" });
  await expect(card.getByRole("button", { name: "Remove picture" })).toHaveCount(0);
  await card.getByLabel("Choose a picture").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: PNG });
  await expect(card.getByRole("status")).toHaveText("Profile picture saved.");
  const shown = card.getByTestId("avatar");
  await expect.poll(() => shown.evaluate((img: HTMLImageElement) => img.naturalWidth ?? 0)).toBeGreaterThan(0);

  // Ben, reading the room again, sees Ana's picture beside her message and in the member list.
  await benPage.reload();
  await waitForHydration(benPage);
  const face = messages(benPage).filter({ hasText: "a message with my face" }).getByTestId("avatar");
  await expect(face).toHaveAttribute("src", /^\/api\/files\/[0-9a-f-]+\/thumbnail$/);
  await expect.poll(() => face.evaluate((img: HTMLImageElement) => img.naturalWidth ?? 0)).toBeGreaterThan(0);
  const members = benPage.getByRole("complementary", { name: "Members" });
  await expect(members.locator("img[data-testid=avatar]")).toHaveCount(1);

  // Ana takes it away: her initials again.
  await card.getByRole("button", { name: "Remove picture" }).click();
  await expect(card.getByRole("status")).toContainText("Profile picture removed");
  await expect(card.getByTestId("avatar")).toHaveText("A");
  await benPage.reload();
  await waitForHydration(benPage);
  await expect(messages(benPage).filter({ hasText: "a message with my face" }).getByTestId("avatar")).toHaveText("A");
  await expect(members.locator("img[data-testid=avatar]")).toHaveCount(0);

  await page.goto(room);
  await checkBen();
  await benContext.close();
});
