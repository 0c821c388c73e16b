// Page weight and time to interactive on a slow link: a benchmark, not a test (it asserts nothing
// about time). scripts/page-weight.sh starts a release server and runs it:
//
//   BASE_URL=http://127.0.0.1:3000 PERF_USER=… PERF_PASSWORD=… node end2end/perf/page-load.mjs
//
// Set-up, on an unthrottled link: signs in, creates a room and sends PERF_MESSAGES (50) messages
// through the composer. Then, PERF_RUNS (3) times each, with a fresh browser context (nothing cached,
// no service worker) throttled over CDP to 1.6 Mbit/s down, 750 kbit/s up and 150 ms of latency:
//   - /register, signed out;
//   - /rooms/<that room>, signed in.
// For each load it records the time to DOMContentLoaded, the time until `body[data-hydrated="true"]`
// (set by the app once hydration has finished), and the bytes transferred per kind of resource as
// Chromium counted them on the wire (headers included, after any Content-Encoding). It prints every
// run, then the medians, and with PERF_JSON=<file> writes them as JSON too.
import { chromium } from "@playwright/test";
import { readFileSync, writeFileSync } from "node:fs";

const BASE_URL = process.env.BASE_URL ?? "http://127.0.0.1:3000";
const USER = process.env.PERF_USER ?? "perf_admin";
const PASSWORD = process.env.PERF_PASSWORD;
const RUNS = Number(process.env.PERF_RUNS ?? 3);
const MESSAGES = Number(process.env.PERF_MESSAGES ?? 50);
const LABEL = process.env.PERF_LABEL ?? "";
if (!PASSWORD) throw new Error("PERF_PASSWORD is required");

// The link of the issue: 1.6 Mbit/s down, 750 kbit/s up, 150 ms round trip.
const LINK = { offline: false, latency: 150, downloadThroughput: 1.6e6 / 8, uploadThroughput: 0.75e6 / 8 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  // The browser tests' flags (playwright.config.ts reads the same file).
  args: JSON.parse(readFileSync(new URL("../chromium.json", import.meta.url), "utf8")).args,
});

// Records when the app marks itself hydrated, on the page's own clock (the same origin as the
// navigation timing entries).
const HYDRATION_PROBE = () => {
  const seen = () => {
    if (window.__hydratedAt === undefined && document.body?.getAttribute("data-hydrated") === "true") {
      window.__hydratedAt = performance.now();
    }
  };
  new MutationObserver(seen).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-hydrated"] });
};

async function signIn(page) {
  await page.goto(`${BASE_URL}/login`);
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.getByLabel("Username").fill(USER);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Admin" }).waitFor();
}

/** Signs in, makes a room with MESSAGES messages, and returns its path and the signed-in cookies. */
async function prepare() {
  const context = await browser.newContext({ serviceWorkers: "block" });
  const page = await context.newPage();
  await signIn(page);
  await page.goto(`${BASE_URL}/rooms`);
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.getByLabel("Room name").fill(`Perf ${Date.now().toString(36)}`);
  await page.getByRole("button", { name: "Create room" }).click();
  await page.waitForURL(/\/rooms\/[0-9a-f-]+$/);
  const composer = page.getByLabel("Message", { exact: true });
  for (let i = 1; i <= MESSAGES; i++) {
    await composer.fill(`Message ${i} of the page-load benchmark: some words so that a row has a realistic length.`);
    await composer.press("Enter");
    // One at a time, each acknowledged (it then carries its sequence number).
    await page.locator(`article[data-seq="${i}"]`).waitFor();
  }
  const path = new URL(page.url()).pathname;
  const state = await context.storageState();
  await context.close();
  return { path, state };
}

function kindOf(url, type) {
  const path = new URL(url).pathname;
  if (path.endsWith(".wasm")) return "wasm";
  if (type === "Document") return "html";
  if (type === "Script" || path.endsWith(".js")) return "js";
  if (type === "Stylesheet" || path.endsWith(".css")) return "css";
  return "other";
}

async function load(path, state) {
  const context = await browser.newContext({ serviceWorkers: "block", storageState: state });
  const page = await context.newPage();
  await page.addInitScript(HYDRATION_PROBE);
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", LINK);
  const requests = new Map();
  cdp.on("Network.responseReceived", ({ requestId, type, response }) => {
    requests.set(requestId, {
      url: response.url,
      kind: kindOf(response.url, type),
      encoding: response.headers["content-encoding"] ?? response.headers["Content-Encoding"] ?? "identity",
      bytes: 0,
    });
  });
  cdp.on("Network.loadingFinished", ({ requestId, encodedDataLength }) => {
    const request = requests.get(requestId);
    if (request) request.bytes = encodedDataLength;
  });
  await page.goto(`${BASE_URL}${path}`, { waitUntil: "domcontentloaded" });
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 120_000 });
  // Whatever the page still fetches right after hydrating (a lazy route's file, say) counts too.
  await page.waitForLoadState("networkidle");
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    return { dcl: nav.domContentLoadedEventEnd, hydrated: window.__hydratedAt };
  });
  await context.close();
  const bytes = { html: 0, js: 0, css: 0, wasm: 0, other: 0 };
  for (const r of requests.values()) bytes[r.kind] += r.bytes;
  const files = [...requests.values()]
    .filter((r) => r.kind === "wasm" || r.kind === "js")
    .map((r) => ({ path: new URL(r.url).pathname, bytes: r.bytes, encoding: r.encoding }));
  return { dcl: timing.dcl, hydrated: timing.hydrated, bytes, total: Object.values(bytes).reduce((a, b) => a + b, 0), files };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const kb = (n) => (n / 1024).toFixed(1);
const ms = (n) => Math.round(n);

const { path: roomPath, state } = await prepare();
const pages = [
  { name: "register (signed out)", path: "/register", state: undefined },
  { name: `room, ${MESSAGES} messages (signed in)`, path: roomPath, state },
];
const results = [];
for (const p of pages) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await load(p.path, p.state);
    runs.push(run);
    console.log(
      `${LABEL}${p.name} run ${i + 1}: DOMContentLoaded ${ms(run.dcl)} ms, hydrated ${ms(run.hydrated)} ms; ` +
        `KiB on the wire: wasm ${kb(run.bytes.wasm)}, js ${kb(run.bytes.js)}, css ${kb(run.bytes.css)}, html ${kb(run.bytes.html)}, other ${kb(run.bytes.other)}`,
    );
    for (const f of run.files) console.log(`    ${f.path}: ${kb(f.bytes)} KiB (${f.encoding})`);
  }
  const summary = {
    page: p.name,
    path: p.path,
    runs: RUNS,
    dcl_ms: ms(median(runs.map((r) => r.dcl))),
    hydrated_ms: ms(median(runs.map((r) => r.hydrated))),
    bytes: Object.fromEntries(Object.keys(runs[0].bytes).map((k) => [k, median(runs.map((r) => r.bytes[k]))])),
    total_bytes: median(runs.map((r) => r.total)),
    files: runs[0].files,
  };
  results.push(summary);
}
await browser.close();

console.log(`\n${LABEL}medians of ${RUNS} cold loads at 1.6 Mbit/s, 150 ms:`);
console.log("| page | DOMContentLoaded | hydrated | wasm KiB | js KiB | css KiB | html KiB | all KiB |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.page} | ${r.dcl_ms} ms | ${r.hydrated_ms} ms | ${kb(r.bytes.wasm)} | ${kb(r.bytes.js)} | ${kb(r.bytes.css)} | ${kb(r.bytes.html)} | ${kb(r.total_bytes)} |`,
  );
}
if (process.env.PERF_JSON) writeFileSync(process.env.PERF_JSON, JSON.stringify(results, null, 2));
