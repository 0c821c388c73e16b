import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, expect, waitForHydration, watchForErrors, uniqueName, PASSWORD, type Page } from "./fixtures";

// A MongoDB outage as the people in a room see it. The test runs a server of its own whose store is
// reached through a TCP proxy this test can cut (the database itself stays up, as in a network
// partition): while it is cut, `/readyz` says 503, what Ana sends is kept and shown as "Can't send
// right now", and once the proxy is restored it is sent by itself and both people see it once.
// scripts/test.sh gives the binary, the site and the MongoDB-wire server (E2E_OUTAGE_MONGODB_URI).
test.describe.configure({ timeout: 240_000 });

const SERVER_BIN = process.env.E2E_SERVER_BIN;
const SITE_ROOT = process.env.E2E_SITE_ROOT;
const DATABASE_URI = process.env.E2E_OUTAGE_MONGODB_URI;
/** How long the database is unreachable (the outage; not a limit on anything). */
const OUTAGE_MS = 10_000;

/** A TCP proxy to `target` that can be cut (every connection reset, new ones refused) and restored. */
class CuttableProxy {
  private sockets = new Set<Socket>();
  private cut = false;
  private constructor(private server: Server, readonly port: number) {}

  static async start(targetHost: string, targetPort: number): Promise<CuttableProxy> {
    let proxy!: CuttableProxy;
    const server = createServer((client) => {
      if (proxy.cut) {
        client.resetAndDestroy();
        return;
      }
      const upstream = connect(targetPort, targetHost);
      for (const socket of [client, upstream]) {
        proxy.sockets.add(socket);
        socket.on("close", () => proxy.sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    proxy = new CuttableProxy(server, typeof address === "object" && address ? address.port : 0);
    return proxy;
  }

  cutOff() {
    this.cut = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  restore() {
    this.cut = false;
  }

  close() {
    this.cutOff();
    this.server.close();
  }
}

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

async function startServer(port: number, mongodbUri: string): Promise<ChildProcess> {
  const origin = `http://127.0.0.1:${port}`;
  const child = spawn(SERVER_BIN!, [], {
    env: {
      ...process.env,
      LEPTOS_OUTPUT_NAME: "mlchat",
      LEPTOS_SITE_ROOT: SITE_ROOT!,
      LEPTOS_SITE_PKG_DIR: "pkg",
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      PUBLIC_ORIGIN: origin,
      DATA_DIR: mkdtempSync(join(tmpdir(), "mlchat-outage-")),
      MONGODB_URI: mongodbUri,
      MONGODB_DB: process.env.E2E_OUTAGE_DB ?? "mlchat_e2e_outage",
      REGISTRATIONS_PER_IP_PER_HOUR: "100000",
      RUST_LOG: "warn",
    },
    // Its warnings during the outage are expected; only a crash (stderr) is worth showing.
    stdio: ["ignore", "ignore", "inherit"],
  });
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(`${origin}/readyz`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`the server exited with ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server was not ready within 60 s");
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

async function readyStatus(origin: string): Promise<number> {
  return (await fetch(`${origin}/readyz`)).status;
}

test("during a MongoDB outage messages are kept, shown as not sent yet, and sent once it is back", async ({ browser }) => {
  if (!SERVER_BIN || !SITE_ROOT || !DATABASE_URI) {
    throw new Error("set E2E_SERVER_BIN, E2E_SITE_ROOT and E2E_OUTAGE_MONGODB_URI (scripts/test.sh does)");
  }
  const database = new URL(DATABASE_URI);
  const proxy = await CuttableProxy.start(database.hostname, Number(database.port || 27017));
  const port = await freePort();
  const throughProxy = `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`;
  const server = await startServer(port, throughProxy);
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
    await ana.getByLabel("Room name").fill(`Outage ${Math.floor(Math.random() * 1e6)}`);
    await ana.getByRole("button", { name: "Create room" }).click();
    await expect(ana).toHaveURL(/\/rooms\/[0-9a-f-]+$/);
    await ben.goto(new URL(ana.url()).pathname);
    await waitForHydration(ben);
    await ben.getByRole("button", { name: "Join room" }).click();
    for (const page of [ana, ben]) {
      await expect(page.getByTestId("link-status")).toHaveAttribute("data-link", "online");
    }
    await say(ana, "said before the outage");
    await expect(articles(ben, "said before the outage")).toHaveCount(1);

    proxy.cutOff();
    const cutAt = Date.now();
    await expect.poll(() => readyStatus(baseURL), { timeout: 60_000 }).toBe(503);
    await say(ana, "typed during the outage");
    const pending = ana.getByTestId("pending-message");
    await expect(pending).toHaveCount(1);
    await expect(pending.getByRole("status")).toHaveText(/Can't send right now/, { timeout: 60_000 });
    // Nothing was stored, so nobody has it yet; the app itself stays up.
    await expect(articles(ben, "typed during the outage")).toHaveCount(0);
    expect((await fetch(`${baseURL}/healthz`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - cutAt))));

    proxy.restore();
    await expect.poll(() => readyStatus(baseURL), { timeout: 120_000 }).toBe(200);
    await expect(pending).toHaveCount(0, { timeout: 120_000 });
    await say(ben, "said after the outage");
    for (const page of [ana, ben]) {
      for (const text of ["said before the outage", "typed during the outage", "said after the outage"]) {
        await expect(articles(page, text)).toHaveCount(1, { timeout: 60_000 });
      }
    }
    for (const p of people) {
      p.check();
      await p.context.close();
    }
  } finally {
    await stopServer(server);
    proxy.close();
  }
});
