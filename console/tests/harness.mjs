// What the browser tests share: the real `sluice serve` on a temp data directory and
// port (its real workers), a REST helper, headless Debian Chromium through
// playwright-core, an axe-core check and screenshots at 1280×800.
//
// SLUICE_BIN (default <target>/debug/sluice), CHROMIUM (default /usr/bin/chromium) and
// SLUICE_CONSOLE_SCREENSHOTS (default <target>/console-screenshots) override the paths.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import axe from "axe-core";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const target = process.env.CARGO_TARGET_DIR ? path.resolve(repo, process.env.CARGO_TARGET_DIR) : path.join(repo, "target");
export const BIN = process.env.SLUICE_BIN || path.join(target, "debug", "sluice");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const SHOTS = process.env.SLUICE_CONSOLE_SCREENSHOTS || path.join(target, "console-screenshots");

export async function startMaster() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sluice-console-"));
  const data = path.join(root, "data");
  const logPath = path.join(root, "master.log");
  const log = fs.openSync(logPath, "a");
  const child = spawn(BIN, ["serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--allow-path", root, "--metrics-interval", "1s"], {
    cwd: root, stdio: ["ignore", log, log],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = fs.readFileSync(logPath, "utf8").replace(/\x1b\[[0-9;]*m/g, "");
    const at = text.indexOf("listening on http");
    if (at >= 0 && text.indexOf("\n", at) > 0) {
      const base = text.slice(at + "listening on ".length).split(/\s/)[0];
      const token = fs.readFileSync(path.join(data, "admin.token"), "utf8").trim();
      return { child, base, token, root, logPath };
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`sluice serve did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function rest(m, method, p, body) {
  const res = await fetch(m.base + p, {
    method, headers: { Authorization: `Bearer ${m.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** axe-core on the page as it is: no serious or critical violation. */
export async function checkA11y(page, name) {
  await page.evaluate(axe.source);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`), [], `${name}: accessibility violations`);
}

export async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

/** Headless Chromium and a 1280×800 page that records script errors in `errors`. */
export async function openBrowser() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !msg.text().startsWith("Failed to load resource")) errors.push(msg.text());
  });
  return { browser, page, errors };
}

/** Stops the master (SIGTERM) and removes its directory unless SLUICE_KEEP_DATA is set. */
/** Stops the master once its instances have ended (15 s at most: the test deleted their
 * jobs or workflows), so no worker outlives it. */
export async function stopMaster(m) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = await rest(m, "GET", "/api/v1/instances").catch(() => null);
    if (!r || !Array.isArray(r.json) || r.json.every((i) => i.ended_at)) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  m.child.kill("SIGTERM");
  await new Promise((res) => (m.child.exitCode !== null ? res() : m.child.once("exit", res)));
  if (!process.env.SLUICE_KEEP_DATA) fs.rmSync(m.root, { recursive: true, force: true });
}
