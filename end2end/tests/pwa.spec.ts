import { test, expect, register, uniqueName, waitForHydration } from "./fixtures";

test.use({ serviceWorkers: "allow" });
test.describe.configure({ timeout: 120_000 });

test("the app is installable: a manifest with the icons browsers ask for, standalone, with its colours", async ({ page }) => {
  await page.goto("/login");
  const href = await page.locator('link[rel="manifest"]').getAttribute("href");
  expect(href).toBeTruthy();
  const answer = await page.request.get(href!);
  expect(answer.status()).toBe(200);
  const manifest = await answer.json();
  expect(manifest.name).toBe("ML-CHAT");
  expect(manifest.display).toBe("standalone");
  expect(manifest.start_url).toBe("/");
  expect(manifest.theme_color).toMatch(/^#[0-9a-f]{6}$/);
  expect(manifest.background_color).toMatch(/^#[0-9a-f]{6}$/);
  const sizes = manifest.icons.map((icon: { sizes: string }) => icon.sizes);
  expect(sizes).toEqual(expect.arrayContaining(["192x192", "512x512"]));
  expect(manifest.icons.some((icon: { purpose?: string }) => icon.purpose === "maskable")).toBe(true);
  for (const icon of manifest.icons) {
    const got = await page.request.get(icon.src);
    expect(got.status(), icon.src).toBe(200);
    expect(got.headers()["content-type"]).toContain(icon.type);
    if (icon.type === "image/png") {
      // The picture is as big as the manifest says.
      const size = await page.evaluate(async (src) => {
        const img = new Image();
        img.src = src;
        await img.decode();
        return `${img.naturalWidth}x${img.naturalHeight}`;
      }, icon.src);
      expect(size).toBe(icon.sizes);
    }
  }
});

test("offline, the app opens from what its service worker kept and shows that it is offline; online again, it comes back by itself", async ({ page, context }) => {
  await register(page, uniqueName("ana"), "Ana");
  await page.goto("/rooms");
  await waitForHydration(page);
  const script = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
  expect(script).toMatch(/\/sw\.js$/);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);

  // What it kept: the app's own files (its WebAssembly among them), never a page or an API answer.
  const kept: string[] = await page.evaluate(async () => {
    const paths: string[] = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const request of await cache.keys()) paths.push(new URL(request.url).pathname);
    }
    return paths;
  });
  expect(kept).toEqual(expect.arrayContaining(["/offline.html", "/pkg/mlchat.css"]));
  expect(kept.some((path) => path.endsWith(".wasm"))).toBe(true);
  for (const path of kept) expect(path).toMatch(/^\/(pkg\/|icons\/|offline\.|favicon\.svg|manifest\.webmanifest)/);

  await context.setOffline(true);
  await page.goto("/rooms");
  await expect(page.getByRole("heading", { name: "You're offline" })).toBeVisible();
  await expect(page.getByRole("status")).toContainText("back online");
  // Styled by the kept CSS.
  const button = page.getByRole("button", { name: "Try again" });
  expect(await button.evaluate((b) => getComputedStyle(b).backgroundColor)).not.toBe("rgba(0, 0, 0, 0)");

  await context.setOffline(false);
  await expect(page.getByRole("heading", { name: "You're offline" })).toBeHidden({ timeout: 30_000 });
  await expect(page).toHaveURL(/\/rooms$/);
  await waitForHydration(page);
});

test("a new version of the app is a new service worker: its script names the build it serves and is never cached", async ({ page }) => {
  const first = await page.request.get("/sw.js");
  expect(first.status()).toBe(200);
  expect(first.headers()["content-type"]).toContain("javascript");
  expect(first.headers()["cache-control"]).toBe("no-cache");
  const body = await first.text();
  const version = body.match(/const VERSION = "([0-9a-f]{16})"/)?.[1];
  expect(version).toBeTruthy();
  // The files it keeps are the ones this server serves.
  const files: string[] = JSON.parse(body.match(/const FILES = (\[.*\]);/)![1]);
  for (const file of files) expect((await page.request.get(file)).status(), file).toBe(200);
});
