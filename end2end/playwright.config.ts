import { defineConfig, devices } from "@playwright/test";
import chromium from "./chromium.json";

// scripts/test.sh starts the server on a free port with a fresh data directory and passes BASE_URL.
const baseURL = process.env.BASE_URL ?? "http://127.0.0.1:3000";

export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  forbidOnly: true,
  retries: 0,
  reporter: [["list"]],
  outputDir: "test-results",
  use: {
    baseURL,
    // The service worker is pwa.spec.ts's subject, which allows it; elsewhere it would only add
    // work (each new context fetching the app's files for it) and stand between tests and routes.
    serviceWorkers: "block",
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          // Debian's Chromium: Playwright's own browser download is not reachable here.
          executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
          // Shared with perf/page-load.mjs, which launches the same browser outside the tests.
          args: chromium.args,
        },
      },
    },
  ],
});
