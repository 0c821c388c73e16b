import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

// Two instances of the app on one MongoDB (scripts/scale-check.sh starts them as containers and passes
// BASE_URL_A and BASE_URL_B). Each test opens one browser context per instance.
export default defineConfig({
  ...base,
  testDir: "./scale",
  globalSetup: undefined,
  workers: 1,
  timeout: 120_000,
});
