/**
 * The browser example (examples/browser) in headless Chromium (Debian's `chromium`, driven by
 * playwright-core; no browser is downloaded): submit, see progress advance while the page stays
 * live, cancel, see the result. The page is served from its own origin and reaches the API
 * through `--cors-origin`. A screenshot is saved to test-results/browser-example.png.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "../../src/client/index.js";
import { startServer, type TestServer } from "../helpers/server.js";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SCREENSHOT = join(ROOT, "test-results", "browser-example.png");
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css",
};

/** src/client compiled file by file, as `tsc` puts it in dist/client (imports keep their .js names). */
function buildClient(into: string): void {
  const source = join(ROOT, "src", "client");
  for (const file of readdirSync(source).filter((f) => f.endsWith(".ts"))) {
    const { outputText } = ts.transpileModule(readFileSync(join(source, file), "utf8"), {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
      fileName: file,
    });
    writeFileSync(join(into, file.replace(/\.ts$/, ".js")), outputText);
  }
}

/** Serves /examples/browser/ from the repository and /dist/client/ from the fresh build. */
function staticServer(clientDir: string): Promise<{ server: Server; origin: string }> {
  const mounts: [string, string][] = [
    ["/examples/browser/", join(ROOT, "examples", "browser")],
    ["/dist/client/", clientDir],
  ];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    for (const [prefix, dir] of mounts) {
      if (!path.startsWith(prefix)) continue;
      const file = normalize(join(dir, path.slice(prefix.length) || "index.html"));
      if (file.startsWith(dir) && existsSync(file) && statSync(file).isFile()) {
        res.writeHead(200, {
          "content-type": TYPES[extname(file)] ?? "application/octet-stream",
          "cache-control": "no-store",
        });
        res.end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

describe.skipIf(!existsSync(CHROMIUM))("browser example (headless Chromium)", { timeout: 90_000 }, () => {
  let api: TestServer;
  let site: { server: Server; origin: string };
  let browser: Browser;
  let page: Page;
  let clientDir: string;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    clientDir = mkdtempSync(join(tmpdir(), "tessera-browser-client-"));
    buildClient(clientDir);
    site = await staticServer(clientDir);
    // Retry-After of at most 1 s: the page polls each second, so progress visibly moves.
    api = await startServer({ dev: true, config: { corsOrigins: [site.origin], retryAfterMax: 1 } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 900, height: 760 } });
    // Uncaught errors only: Chromium also logs every 4xx answer (the 409 of a canceled job's result).
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(`${site.origin}/examples/browser/index.html?server=${encodeURIComponent(api.url)}`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await new Promise((resolve) => site?.server.close(resolve));
    rmSync(clientDir, { recursive: true, force: true });
  });

  it("submits a job, shows its progress advancing without blocking the page, then the result", async () => {
    await page.fill("#ms", "5000");
    await page.click("#submit");
    const card = page.locator("article.job").first();
    await expect
      .poll(() => card.getAttribute("data-job-id"), { timeout: 10_000 })
      .toMatch(/^job_[0-9a-z]{44}$/);

    const seen = new Set<number>();
    const clocks = new Set<string>();
    while ((await card.getAttribute("data-done")) !== "true") {
      seen.add(await card.locator("progress").evaluate((el) => (el as unknown as { value: number }).value));
      clocks.add((await page.textContent("#clock")) ?? "");
      await page.waitForTimeout(150);
    }
    const percents = [...seen].filter((p) => p > 0 && p < 100);
    expect(percents.length, `progress values seen: ${[...seen].join(", ")}`).toBeGreaterThanOrEqual(2);
    expect(clocks.size).toBeGreaterThan(10); // the page kept running while it waited
    await expect.poll(() => card.locator(".status").textContent()).toBe("succeeded");
    expect(JSON.parse((await card.locator(".result").textContent()) ?? "null")).toEqual({ sleptMs: 5000 });
  });

  it("cancels a running job from the page", async () => {
    await page.fill("#ms", "60000");
    await page.click("#submit");
    const card = page.locator("article.job").first();
    await expect.poll(() => card.locator(".status").textContent(), { timeout: 15_000 }).toBe("running");
    const id = (await card.getAttribute("data-job-id"))!;
    await page.waitForTimeout(1200); // a little progress first
    await card.locator("button.cancel").click();
    await expect.poll(() => card.getAttribute("data-done"), { timeout: 15_000 }).toBe("true");
    expect(await card.locator(".status").textContent()).toBe("canceled");
    expect(await card.locator(".result").textContent()).toMatch(/canceled/i);
    expect((await createClient({ baseUrl: api.url }).get(id)).status).toBe("canceled");
  });

  it("shows a failed job's problem, and saves a screenshot of the page", async () => {
    await page.selectOption("#type", "demo.fail");
    await page.fill("#ms", "500");
    await page.click("#submit");
    const card = page.locator("article.job").first();
    await expect.poll(() => card.getAttribute("data-done"), { timeout: 15_000 }).toBe("true");
    expect(await card.locator(".status").textContent()).toBe("failed");
    expect(await card.locator(".result").textContent()).toContain("failed on purpose");

    mkdirSync(join(ROOT, "test-results"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(pageErrors).toEqual([]);
  });
});
