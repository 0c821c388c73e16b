import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, expect, waitForHydration, watchForErrors, uniqueName, PASSWORD, type Page } from "./fixtures";

// This test stops and starts a server of its own (scripts/test.sh says which binary, site and store):
// the shared one must stay up for the other tests.
test.describe.configure({ timeout: 180_000 });

const SERVER_BIN = process.env.E2E_SERVER_BIN;
const SITE_ROOT = process.env.E2E_SITE_ROOT;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the server on `port` with `dataDir`, and resolves once it answers `/healthz`. */
async function startServer(port: number, dataDir: string): Promise<ChildProcess> {
  const origin = `http://127.0.0.1:${port}`;
  const uri = process.env.E2E_MONGODB_URI ?? "";
  const child = spawn(SERVER_BIN!, [], {
    env: {
      ...process.env,
      LEPTOS_OUTPUT_NAME: "mlchat",
      LEPTOS_SITE_ROOT: SITE_ROOT!,
      LEPTOS_SITE_PKG_DIR: "pkg",
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      PUBLIC_ORIGIN: origin,
      DATA_DIR: dataDir,
      MONGODB_URI: uri,
      MONGODB_DB: process.env.E2E_RESTART_DB ?? "mlchat_e2e_restart",
      REGISTRATIONS_PER_IP_PER_HOUR: "100000",
      RUST_LOG: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; i < 600; i++) {
    try {
      const answer = await fetch(`${origin}/healthz`);
      if (answer.ok) return child;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server did not start within 60 s");
}

async function stopServer(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function say(page: Page, text: string) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByLabel("Message", { exact: true }).press("Enter");
}

function articles(page: Page, text: string) {
  return page.getByLabel("Messages", { exact: true }).locator("article", { hasText: text });
}

test("after a server restart both people reconnect by themselves and see every message once", async ({ browser }) => {
  if (!SERVER_BIN || !SITE_ROOT) throw new Error("set E2E_SERVER_BIN and E2E_SITE_ROOT (scripts/test.sh does)");
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "mlchat-restart-"));
  let server = await startServer(port, dataDir);
  const baseURL = `http://127.0.0.1:${port}`;
  try {
    const people = [];
    for (const name of ["Ana", "Ben"]) {
      const context = await browser.newContext({ baseURL });
      const page = await context.newPage();
      const check = await watchForErrors(page);
      await page.goto("/register");
      await waitForHydration(page);
      await page.getByLabel("Username").fill(uniqueName(name.toLowerCase()));
      await page.getByLabel("Display name").fill(name);
      await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
      await page.getByLabel("Confirm password").fill(PASSWORD);
      await page.getByRole("button", { name: "Create account" }).click();
      await expect(page.getByTestId("greeting")).toHaveText(`Hello, ${name}!`);
      people.push({ context, page, check });
    }
    const [ana, ben] = people.map((p) => p.page);
    await ana.goto("/rooms");
    await waitForHydration(ana);
    await ana.getByLabel("Room name").fill(`Restart ${Math.floor(Math.random() * 1e6)}`);
    await ana.getByRole("button", { name: "Create room" }).click();
    await expect(ana).toHaveURL(/\/rooms\/[0-9a-f-]+$/);
    await ben.goto(new URL(ana.url()).pathname);
    await waitForHydration(ben);
    await ben.getByRole("button", { name: "Join room" }).click();
    for (const page of [ana, ben]) {
      await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");
    }
    await say(ana, "said before the restart");
    await expect(articles(ben, "said before the restart")).toHaveCount(1);

    await stopServer(server);
    // Both pages say they are reconnecting; what Ana types meanwhile waits, shown as pending.
    for (const page of [ana, ben]) {
      await expect(page.getByTestId("link-status")).not.toHaveAttribute("data-link", "online", { timeout: 60_000 });
    }
    await say(ana, "typed while the server was down");
    await expect(ana.getByTestId("pending-message")).toHaveCount(1);

    server = await startServer(port, dataDir);
    for (const page of [ana, ben]) {
      await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online", { timeout: 90_000 });
    }
    await expect(ana.getByTestId("pending-message")).toHaveCount(0, { timeout: 60_000 });
    await say(ben, "said after the restart");
    for (const page of [ana, ben]) {
      for (const text of ["said before the restart", "typed while the server was down", "said after the restart"]) {
        await expect(articles(page, text)).toHaveCount(1, { timeout: 60_000 });
      }
    }
    for (const p of people) {
      p.check();
      await p.context.close();
    }
  } finally {
    await stopServer(server);
  }
});
