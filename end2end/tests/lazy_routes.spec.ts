import { test, expect, register, signInAsAdmin, uniqueName, waitForHydration } from "./fixtures";

// The pages of app/src/routes.rs are lazy routes: with `cargo leptos build --split` (scripts/run.sh,
// the Dockerfile) each is a WebAssembly file of its own, fetched when the page is first shown. These
// tests pass with either build; against a split build they also check that the files were fetched
// (the fixture's `page` fails the test on any script error or CSP violation, such as a blocked file).

/** Whether the site was built with `--split` (it then has a manifest of its lazily loaded files). */
async function isSplit(page: import("@playwright/test").Page): Promise<boolean> {
  const response = await page.request.get("/pkg/__wasm_split_manifest.json");
  return response.ok();
}

test("a lazily loaded page works when opened directly and when reached through a link", async ({ page }) => {
  const split = await isSplit(page);
  const lazyFiles: string[] = [];
  page.on("requestfinished", (request) => {
    const path = new URL(request.url()).pathname;
    if (/^\/pkg\/(split_|chunk_).*\.wasm$/.test(path)) lazyFiles.push(path);
  });

  // Opened directly: rendered by the server, hydrated once its file has arrived.
  await signInAsAdmin(page);
  await page.goto("/admin");
  await waitForHydration(page);
  await expect(page.getByTestId("stat-driver")).toHaveText(/embedded|mongodb/);
  if (split) expect(lazyFiles.some((f) => f.includes("admin_dashboard"))).toBe(true);

  // Reached from an everyday page through a link: fetched then, and the page works.
  await page.goto("/");
  await waitForHydration(page);
  await page.getByRole("link", { name: "Profile" }).click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByRole("heading", { name: "Profile", exact: true })).toBeVisible();
  if (split) expect(lazyFiles.some((f) => f.includes("profile"))).toBe(true);
});

test("the everyday pages need no lazily loaded file to hydrate", async ({ page }) => {
  const split = await isSplit(page);
  const lazyRoutes: string[] = [];
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (/^\/pkg\/split___.*_route_view_.*\.wasm$/.test(path)) lazyRoutes.push(path);
  });
  await register(page, uniqueName("everyday"), "Everyday");
  if (split) expect(lazyRoutes, "route files fetched by /register and /").toEqual([]);
});
