import { test, expect, register, uniqueName, waitForHydration } from "../tests/fixtures";

const A = process.env.BASE_URL_A ?? "";
const B = process.env.BASE_URL_B ?? "";

test("two instances on one database serve the same rooms, live", async ({ browser }) => {
  expect(A && B, "BASE_URL_A and BASE_URL_B name the two instances").toBeTruthy();
  const onA = await browser.newContext({ baseURL: A });
  const onB = await browser.newContext({ baseURL: B });
  const ana = await onA.newPage();
  const ben = await onB.newPage();
  const benName = uniqueName("ben");
  await register(ben, benName, "Ben");
  await register(ana, uniqueName("ana"), "Ana");

  // Ana, on A, creates a private room and invites Ben, who is on B: it appears in his sidebar live.
  await ana.goto("/rooms");
  await waitForHydration(ana);
  const roomName = `Across ${Math.floor(Math.random() * 1e6)}`;
  await ana.getByLabel("Room name").fill(roomName);
  await ana.getByText("Private (members join by invitation)").click();
  await ana.getByRole("button", { name: "Create room" }).click();
  await expect(ana.getByTestId("link-status")).toHaveAttribute("data-link", "online");
  await ana.getByLabel("Invite by username").fill(benName);
  await ana.getByRole("button", { name: "Invite" }).click();
  await ben.getByRole("navigation", { name: "Rooms" }).getByRole("link", { name: roomName }).click();
  await expect(ben.getByTestId("link-status")).toHaveAttribute("data-link", "online");

  // Presence crosses: Ben sees Ana online although she is connected to the other instance.
  const members = ben.getByRole("complementary", { name: "Members" });
  await expect(members.locator("li", { hasText: "Ana" })).toHaveAttribute("data-presence", "online");

  // Messages and typing cross both ways.
  const composer = (page: typeof ana) => page.getByLabel("Message", { exact: true });
  await composer(ana).fill("hello from A");
  await composer(ana).press("Enter");
  await expect(ben.getByLabel("Messages", { exact: true }).locator("article").last()).toContainText("hello from A");
  await composer(ben).pressSequentially("typing on B", { delay: 50 });
  await expect(ana.getByTestId("typing")).toHaveText("Ben is typing…");
  await composer(ben).press("Enter");
  await expect(ana.getByLabel("Messages", { exact: true }).locator("article").last()).toContainText("typing on B");

  // Ana leaves: Ben's instance hears it.
  await ana.close();
  await expect(members.locator("li", { hasText: "Ana" })).toHaveAttribute("data-presence", "offline");
  await onA.close();
  await onB.close();
});
