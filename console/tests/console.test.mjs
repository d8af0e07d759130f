// Browser test of the web console: a real `sluice serve` (debug binary, temp data dir,
// its real workers) driven by headless Debian Chromium through playwright-core, with an
// axe-core accessibility check and a screenshot of every page.
//
//   cargo build --bin sluice --bin sluice-worker && (cd console && npm ci && npm test)
//
// SLUICE_BIN (default <target>/debug/sluice), CHROMIUM (default /usr/bin/chromium) and
// SLUICE_CONSOLE_SCREENSHOTS (default <target>/console-screenshots) override the paths.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { BIN, SHOTS, startMaster, rest, checkA11y, shot, openBrowser, stopMaster } from "./harness.mjs";

const JOB = "console-e2e";

const BROKEN = `CREATE TABLE bids (auction BIGINT, price BIGINT)
  WITH ('connector' = 'datagen', 'rows-per-second' = '200');
CREATE TABLE expensive (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO expensive
SELECT auction, price FROM bids WHERE price > > 10;
`;
const FIXED = BROKEN.replace("> > 10", "> 10");

test("console: sign in, workbench, jobs, job page, kill, stop, sign out", { timeout: 180_000 }, async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --bin sluice --bin sluice-worker`);
  fs.rmSync(path.join(SHOTS, "failure.png"), { force: true });
  const m = await startMaster();
  let browser, page, pageErrors;
  try {
    // Inside the try: a browser that does not start still stops the master.
    ({ browser, page, errors: pageErrors } = await openBrowser());

    // Sign-in: the console is served by the master, with no token of its own.
    await page.goto(m.base + "/");
    await page.getByLabel("API token").waitFor();
    await checkA11y(page, "sign-in");
    await shot(page, "signin");
    await page.getByLabel("API token").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That token is not valid").waitFor();
    await page.getByLabel("API token").fill(m.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Jobs" }).waitFor();

    // Workbench: a syntax error on line 5 is reported and marked there.
    await page.getByRole("link", { name: "SQL workbench" }).click();
    const editor = page.getByLabel("SQL editor");
    await editor.fill(BROKEN);
    await page.getByRole("button", { name: "Validate" }).click();
    const err = page.locator("li.sql-error").first();
    await err.waitFor();
    assert.equal(await err.getAttribute("data-line"), "5", await err.textContent());
    assert.equal(await err.getAttribute("data-column"), "47", await err.textContent());
    assert.match(await err.textContent(), /^line 5, column 47: /);
    assert.equal(await page.locator(".gutter .err-num").textContent(), "5\n");
    await shot(page, "workbench-error");
    // Completion of the script's table and column names as you type: Tab accepts.
    await editor.fill(FIXED);
    await editor.focus();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("SELECT auction, pri");
    const option = page.locator("#sql-completions [role=option]", { hasText: "price" });
    await option.waitFor();
    assert.equal(await editor.getAttribute("aria-expanded"), "true");
    assert.match(await option.textContent(), /BIGINT · (bids|expensive)/);
    await checkA11y(page, "workbench-completion");
    await shot(page, "workbench-completion");
    await page.keyboard.press("Tab");
    assert.match(await editor.inputValue(), /SELECT auction, price$/);
    assert.equal(await editor.getAttribute("aria-expanded"), "false");
    assert.ok(await page.locator("#sql-completions").isHidden());
    await page.keyboard.type(" FROM ex");
    await page.locator("#sql-completions [role=option]", { hasText: "expensive" }).waitFor();
    await page.keyboard.press("Escape");
    assert.ok(await page.locator("#sql-completions").isHidden());
    await editor.fill(FIXED);
    await page.getByRole("button", { name: "Validate" }).click();
    await page.locator("#sql-valid").waitFor();
    assert.equal(await page.locator("li.sql-error").count(), 0);
    await page.getByRole("button", { name: "Preview" }).click();
    await page.locator("table.preview tbody tr").first().waitFor({ timeout: 30_000 });
    const headers = await page.locator("table.preview thead th").allTextContents();
    assert.deepEqual(headers.map((x) => x.split(" ")[0]), ["auction", "price"]);
    const prices = await page.locator("table.preview tbody tr td:nth-child(2)").allTextContents();
    assert.ok(prices.length > 0 && prices.every((p) => Number(p) > 10), `preview prices: ${prices}`);
    // BIGINTs beyond 2^53 are shown exactly, not rounded by a JavaScript number.
    const big = prices.filter((p) => p.replace("-", "").length >= 18);
    assert.ok(big.length === 0 || big.some((p) => !p.endsWith("00")), `rounded BIGINTs: ${big}`);
    await checkA11y(page, "workbench");
    await shot(page, "workbench");

    // Submit as job: it appears on the jobs page, running, with a rate.
    await page.getByLabel("Name").fill(JOB);
    await page.getByLabel("Parallelism").fill("1");
    await page.getByRole("button", { name: "Submit as job" }).click();
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    const row = page.locator(`tr[data-job="${JOB}"]`);
    await row.locator(".badge", { hasText: "running" }).waitFor({ timeout: 60_000 });
    await page.waitForFunction((job) => {
      const td = document.querySelector(`tr[data-job="${job}"] td.rate-in`);
      return td && td.textContent !== "–" && Number.parseFloat(td.textContent) > 0;
    }, JOB, { timeout: 45_000 });
    await page.getByLabel("Filter jobs").fill("no-such-job");
    await page.getByText("No job matches the filter.").waitFor();
    await page.getByLabel("Filter jobs").fill("e2e");
    await row.waitFor();
    await checkA11y(page, "jobs");
    await shot(page, "jobs");

    // Job page: SQL, the physical plan's operators, instances; then stop it.
    await row.getByRole("link", { name: JOB }).click();
    await page.getByRole("heading", { name: JOB }).waitFor();
    await page.locator("#plan .plan-node").first().waitFor();
    const ops = await page.locator("#plan .plan-node").evaluateAll((ns) => ns.map((n) => n.dataset.op));
    assert.ok(ops.includes("Source"), `plan operators: ${ops}`);
    assert.match(await page.locator("#plan").textContent(), /filters=\[price > 10\]/);
    // Per-operator rates on the graph: every operator of the running job moves (two
    // readings of the workers' per-operator counters).
    await page.waitForFunction(() => {
      const labels = [...document.querySelectorAll("#plan .plan-node .plan-rate")].map((t) => t.textContent);
      return labels.length > 0 && labels.every((t) => /rows\/s/.test(t) && Number.parseFloat(t) > 0);
    }, null, { timeout: 30_000 });
    const rates = await page.locator("#plan .plan-node").evaluateAll((ns) => ns.map((n) => [n.dataset.key, n.querySelector(".plan-rate").textContent]));
    assert.equal(rates[0][0], "0.0", `node keys: ${rates}`);
    await page.locator("pre.sql .tok-kw", { hasText: "INSERT" }).waitFor();
    await checkA11y(page, "job");
    await shot(page, "job");

    // Kill its instance: the watchdog restarts it, and the events say so.
    // By keyboard: the focus stays on Kill while the page refreshes (its rows change).
    const before = await rest(m, "GET", `/api/v1/jobs/${JOB}`);
    await page.getByRole("button", { name: /^Kill instance / }).focus();
    const instRow = await page.locator("#h-inst + table tbody tr").first().elementHandle();
    await page.waitForFunction((tr) => !tr.isConnected, instRow, { timeout: 10_000 });
    assert.match(await page.evaluate(() => document.activeElement?.dataset.key || ""), /^kill:/);
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").getByRole("button", { name: "Kill" }).click();
    await page.locator('.timeline li[data-kind="instance_failed"], .timeline li[data-kind="restart_scheduled"]').first().waitFor({ timeout: 30_000 });
    await page.waitForFunction(async ([base, token, job, old]) => {
      const r = await fetch(`${base}/api/v1/jobs/${job}`, { headers: { Authorization: `Bearer ${token}` } });
      const j = await r.json();
      return j.state === "running" && j.instances.length === 1 && !old.includes(j.instances[0]);
    }, [m.base, m.token, JOB, before.json.instances], { timeout: 45_000, polling: 500 });
    await page.locator(".page-head .badge", { hasText: "running" }).waitFor();
    // The restart is counted and the failure and restart events are marked; the filter
    // shows only those.
    await page.waitForFunction(() => document.querySelector("#restarts dd")?.textContent === "1");
    await page.waitForFunction(() => document.querySelectorAll("#restarts dd")[1]?.textContent === "1");
    await page.getByLabel("Show").selectOption("trouble");
    await page.locator("#events li.ev-trouble").first().waitFor();
    const kinds = await page.locator("#events li").evaluateAll((ls) => ls.map((l) => l.dataset.kind));
    assert.ok(kinds.length > 0 && kinds.every((k) => k === "instance_failed" || k === "restart_scheduled"), `filtered events: ${kinds}`);
    await page.getByLabel("Show").selectOption("");
    await page.waitForFunction((n) => document.querySelectorAll("#events li").length > n, kinds.length);
    await shot(page, "job-restarted");

    // The log tail of the running instance.
    await page.getByRole("button", { name: /^Log of instance / }).first().click();
    const log = page.locator("#log pre.log");
    await log.waitFor();
    assert.ok((await log.textContent()).trim().length > 0, "an empty log");

    // Scale to 2: the watchdog replaces the instance with one of 2 workers.
    await page.getByLabel("Parallelism").fill("2");
    await page.getByRole("button", { name: "Scale" }).click();
    await page.getByRole("dialog").getByText("at parallelism 2").waitFor();
    await page.getByRole("dialog").getByRole("button", { name: "Scale" }).click();
    await page.waitForFunction(async ([base, token, job]) => {
      const h = { headers: { Authorization: `Bearer ${token}` } };
      const j = await (await fetch(`${base}/api/v1/jobs/${job}`, h)).json();
      const inst = await (await fetch(`${base}/api/v1/jobs/${job}/instances`, h)).json();
      return j.resources.parallelism === 2 && inst.some((i) => !i.ended_at && i.state === "running" && i.parallelism === 2);
    }, [m.base, m.token, JOB], { timeout: 60_000, polling: 500 });
    await page.locator("#h-inst + table tbody td.num", { hasText: /^2$/ }).first().waitFor({ timeout: 15_000 });
    await checkA11y(page, "job scaled, with its log");
    await shot(page, "job-scaled");
    await page.getByRole("button", { name: "Stop" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText(`Stop ${JOB}`).waitFor();
    await checkA11y(page, "confirm dialog");
    await dialog.getByRole("button", { name: "Stop" }).click();
    await page.locator(".page-head .badge", { hasText: "stopped" }).waitFor({ timeout: 30_000 });
    const after = await rest(m, "GET", `/api/v1/jobs/${JOB}`);
    assert.equal(after.json.desired_state, "stopped");
    await page.getByRole("button", { name: "Start" }).waitFor();

    // Sign out; a refused token sends the user back to sign-in.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("sluice.token")), null);
    await page.evaluate(() => sessionStorage.setItem("sluice.token", "revoked-or-wrong"));
    await page.goto(m.base + "/console#/jobs");
    await page.getByText("Your session ended").waitFor();
    assert.deepEqual(pageErrors, [], "errors in the page");
  } catch (e) {
    await shot(page, "failure").catch(() => {});
    throw e;
  } finally {
    await browser?.close().catch(() => {});
    await rest(m, "DELETE", `/api/v1/jobs/${JOB}`).catch(() => {});
    await stopMaster(m);
  }
});
