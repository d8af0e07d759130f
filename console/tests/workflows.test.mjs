// Browser test of the console's workflow, catalog, cluster and audit pages against a real
// `sluice serve` and its real workers (see harness.mjs): a workflow of two dependent SQL
// tasks is created from the console (first with a task whose SQL does not compile),
// triggered with a parameter value until both tasks succeed in the DAG (and their output
// is checked on disk), backfilled, and a run that cannot finish by itself is cancelled.
// axe-core runs on each page; each is screenshotted at 1280×800.
//
//   cargo build --bin sluice --bin sluice-worker && (cd console && npm ci && npm test)

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { BIN, SHOTS, startMaster, rest, checkA11y, shot, openBrowser, stopMaster } from "./harness.mjs";

const WF = "orders-nightly";
const FOREVER = "forever";
const BROKEN = "missing-input";

/** Orders: id 1..=2000, region r0..r4, amount 0..99; the count and sum per region of those ≥ min. */
function writeOrders(file, min) {
  let text = "id,region,amount\n";
  const expected = {};
  for (let id = 1; id <= 2000; id++) {
    const region = `r${(id * 7) % 5}`, amount = (id * 37) % 100;
    text += `${id},${region},${amount}\n`;
    if (amount >= min) {
      const e = (expected[region] ||= [0, 0]);
      e[0] += 1;
      e[1] += amount;
    }
  }
  fs.writeFileSync(file, text);
  return expected;
}

/** The rows of every CSV part file under `dir` (headers skipped): region → [n, total]. */
function readTotals(dir) {
  const out = {};
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (name.startsWith(".") || name.startsWith("_") || !name.endsWith(".csv")) continue;
    for (const line of fs.readFileSync(path.join(dir, name), "utf8").split("\n").slice(1)) {
      if (!line.trim()) continue;
      const [region, n, total] = line.split(",");
      assert.equal(out[region], undefined, `region ${region} written twice`);
      out[region] = [Number(n), Number(total)];
    }
  }
  return out;
}

function tasks(input, work, { broken = false } = {}) {
  const staged = `CREATE TABLE staged (id BIGINT, region VARCHAR, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '${work}/{{ run_id }}/staged', 'format' = 'csv');`;
  return [
    {
      id: "extract",
      sql: `CREATE TABLE orders (id BIGINT, region VARCHAR, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '${input}', 'format' = 'csv', 'csv.header' = 'true');\n${staged}\nINSERT INTO staged SELECT id, region, amount FROM orders WHERE amount >= {{ min_amount }};`,
    },
    {
      id: "aggregate",
      depends_on: ["extract"],
      sql: `${staged}\nCREATE TABLE totals (region VARCHAR, n BIGINT, total BIGINT) WITH ('connector' = 'filesystem', 'path' = '${work}/{{ run_id }}/totals', 'format' = 'csv', 'csv.header' = 'true');\n` +
        (broken ? "INSERT INTO totals SELECT region, COUNT(*) FROM nowhere GROUP BY region;" : "INSERT INTO totals SELECT region, COUNT(*), SUM(amount) FROM staged GROUP BY region;"),
    },
  ];
}

/** Waits until every task of the DAG shows `state`. */
async function dagAll(page, state, n, timeout) {
  await page.waitForFunction(([st, count]) => {
    const nodes = [...document.querySelectorAll("#dag .dag-node")];
    return nodes.length === count && nodes.every((g) => g.dataset.state === st);
  }, [state, n], { timeout, polling: 250 });
}

test("console: workflows (create, DAG, trigger, backfill, schedule on/off, cancel, delete), tables, clusters, audit", { timeout: 300_000 }, async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: cargo build --bin sluice --bin sluice-worker`);
  fs.rmSync(path.join(SHOTS, "failure-workflows.png"), { force: true });
  const m = await startMaster();
  const input = path.join(m.root, "orders.csv");
  const work = path.join(m.root, "work");
  const expected = writeOrders(input, 30);
  // A catalog table for the tables page, created through the API as a user would.
  const created = await rest(m, "POST", "/api/v1/tables", {
    ddl: `CREATE TABLE clicks (user_id BIGINT NOT NULL, url VARCHAR, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) WITH ('connector' = 'filesystem', 'path' = '${work}/clicks', 'format' = 'parquet')`,
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  let browser, page, pageErrors;
  try {
    // Inside the try: a browser that does not start still stops the master.
    ({ browser, page, errors: pageErrors } = await openBrowser());
    await page.goto(m.base + "/console#/workflows");
    await page.getByLabel("API token").fill(m.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Workflows" }).waitFor();
    await page.getByText("No workflows yet").waitFor();

    // Create: the tasks are a JSON array, drawn as a DAG while typing; a task whose SQL
    // does not compile is refused and named.
    await page.getByRole("link", { name: "Create workflow" }).click();
    await page.getByRole("heading", { name: "Create workflow" }).waitFor();
    await page.getByLabel("Name", { exact: true }).fill(WF);
    await page.getByLabel("Cron schedule").fill("0 0 2 * * *");
    await page.getByLabel("Time zone").fill("Europe/Berlin");
    await page.getByLabel("Enabled (ticks are scheduled)").uncheck();
    await page.getByLabel("Parameters", { exact: true }).fill("min_amount=20");
    await page.getByLabel("Tasks (JSON)").fill("[{\"id\": ");
    await page.getByText(/^Tasks: /).waitFor();
    await page.getByLabel("Tasks (JSON)").fill(JSON.stringify(tasks(input, work, { broken: true }), null, 2));
    await page.getByText("2 tasks").waitFor();
    assert.equal(await page.locator("#wf-preview .dag-node").count(), 2);
    assert.equal(await page.locator('#wf-preview .dag-edge[data-from="extract"][data-to="aggregate"]').count(), 1);
    await page.getByRole("button", { name: "Create workflow" }).click();
    await page.locator("#wf-error", { hasText: "task 'aggregate'" }).waitFor();
    assert.match(await page.locator("#wf-error").textContent(), /nowhere/);
    assert.equal((await rest(m, "GET", `/api/v1/workflows/${WF}`)).status, 404);
    await page.getByLabel("Tasks (JSON)").fill(JSON.stringify(tasks(input, work), null, 2));
    assert.equal(await page.locator("#wf-error").textContent(), "", "the error goes once the tasks change");
    await checkA11y(page, "create workflow");
    await shot(page, "workflow-create");
    await page.getByRole("button", { name: "Create workflow" }).click();

    // The workflow page: its DAG in two layers, not run yet.
    await page.getByRole("heading", { name: WF }).waitFor();
    await dagAll(page, "not_run", 2, 20_000);
    const x = await page.locator("#dag .dag-node rect").evaluateAll((rs) => rs.map((r) => Number(r.getAttribute("x"))));
    assert.ok(x[1] > x[0], `aggregate is drawn right of extract: ${x}`);
    assert.equal(await page.locator('#dag .dag-edge[data-from="extract"][data-to="aggregate"]').count(), 1);
    const wf = (await rest(m, "GET", `/api/v1/workflows/${WF}`)).json;
    assert.equal(wf.enabled, false);
    assert.deepEqual(wf.parameters, { min_amount: "20" });

    // Trigger with a parameter value: both tasks succeed, and the totals are those of
    // the orders with amount ≥ 30.
    // By keyboard: Enter in the parameter's field submits the trigger form.
    await page.getByLabel("Parameter min_amount").fill("30");
    await page.keyboard.press("Enter");
    await dagAll(page, "succeeded", 2, 120_000);
    const runs = (await rest(m, "GET", `/api/v1/workflows/${WF}/runs`)).json;
    assert.equal(runs.length, 1);
    const run = runs[0];
    assert.equal(run.state, "succeeded");
    assert.equal(run.trigger, "manual");
    assert.equal(run.parameters.min_amount, "30");
    assert.deepEqual(readTotals(path.join(work, run.run_id, "totals")), expected);
    const rows = page.locator("#run-tasks tbody tr");
    assert.equal(await rows.count(), 2);
    for (const id of ["extract", "aggregate"]) {
      const row = page.locator(`#run-tasks tr[data-task="${id}"]`);
      await row.locator(".badge", { hasText: "succeeded" }).waitFor();
      const cells = await row.locator("td").allTextContents();
      assert.notEqual(cells[2], "–", `${id} started`);
      assert.notEqual(cells[3], "–", `${id} ended`);
    }
    await page.locator(`#runs tr[data-run="${run.run_id}"] .badge`, { hasText: "succeeded" }).waitFor();
    await checkA11y(page, "workflow");
    await shot(page, "workflow-dag");

    // Enable the schedule (a next tick appears), then disable it again.
    await page.getByRole("button", { name: "Enable schedule" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Enable" }).click();
    await page.locator(".page-head .badge", { hasText: "enabled" }).waitFor();
    assert.doesNotMatch(await page.locator(".state-line").textContent(), /next tick none/);
    assert.equal((await rest(m, "GET", `/api/v1/workflows/${WF}`)).json.enabled, true);
    await page.getByRole("button", { name: "Disable schedule" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disable" }).click();
    await page.locator(".page-head .badge", { hasText: "disabled" }).waitFor();
    assert.equal((await rest(m, "GET", `/api/v1/workflows/${WF}`)).json.enabled, false);

    // Backfill: one run per tick in the range (two days of a daily schedule at 02:00 in
    // Berlin, 01:00 UTC in March), both succeed with the default parameter.
    await page.getByLabel("From", { exact: true }).fill("2024-03-01T00:00:00Z");
    await page.getByLabel("To", { exact: true }).fill("2024-03-02T23:59:59Z");
    await page.getByRole("button", { name: "Backfill" }).click();
    await page.getByText("Backfill: 2 runs created").waitFor();
    await page.waitForFunction(() => document.querySelectorAll("#runs tbody tr[data-run]").length === 3);
    await page.waitForFunction(() => [...document.querySelectorAll("#runs tbody tr[data-run]")].every((tr) => tr.querySelector(".badge")?.textContent === "succeeded"), undefined, { timeout: 180_000, polling: 500 });
    const backfilled = (await rest(m, "GET", `/api/v1/workflows/${WF}/runs`)).json.filter((r) => r.trigger === "backfill");
    assert.deepEqual(backfilled.map((r) => [r.logical_time, r.state, r.parameters.min_amount]),
      [["2024-03-01T01:00:00.000Z", "succeeded", "20"], ["2024-03-02T01:00:00.000Z", "succeeded", "20"]]);
    // Selecting the manual run again shows it in the DAG.
    await page.locator(`#runs tr[data-run="${run.run_id}"] button[aria-pressed]`).focus();
    await page.keyboard.press("Enter");
    await page.locator("#h-dag", { hasText: run.run_id.slice(-12) }).waitFor();

    // The list: schedule and the newest run's state.
    await page.getByRole("link", { name: "Workflows", exact: true }).click();
    const listed = page.locator(`tr[data-workflow="${WF}"]`);
    await listed.locator(".last-run .badge", { hasText: "succeeded" }).waitFor();
    assert.match(await listed.textContent(), /0 0 2 \* \* \* Europe\/Berlin/);
    await checkA11y(page, "workflows");
    await shot(page, "workflows");

    // A task that fails (its input file is missing): red in the DAG with the reason, the
    // task after it upstream_failed, and the list shows the run failed.
    const broken = await rest(m, "POST", "/api/v1/workflows", {
      name: BROKEN, schedule: { cron: "@yearly" }, enabled: false,
      tasks: [
        { id: "read", sql: `CREATE TABLE o (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '${path.join(m.root, "missing.csv")}', 'format' = 'csv');\nCREATE TABLE b (id BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT id FROM o;` },
        { id: "next", depends_on: ["read"], sql: "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\nCREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;" },
      ],
    });
    assert.equal(broken.status, 201, JSON.stringify(broken.json));
    await page.getByRole("link", { name: BROKEN }).click();
    await page.getByRole("heading", { name: BROKEN }).waitFor();
    await page.getByRole("button", { name: "Trigger run" }).click();
    await page.locator('#dag .dag-node[data-task="read"][data-state="failed"]').waitFor({ timeout: 60_000 });
    await page.locator('#dag .dag-node[data-task="next"][data-state="upstream_failed"]').waitFor();
    await page.locator('#run-tasks tr[data-task="read"]', { hasText: "does not exist" }).waitFor();
    await page.locator("#runs .badge", { hasText: "failed" }).waitFor();
    // Its log (the worker's output) says why.
    await page.getByRole("button", { name: "Log of read" }).click();
    await page.locator("#task-log", { hasText: "missing.csv' does not exist" }).waitFor();
    assert.match(await page.locator("#task-log").textContent(), /starting: job missing-input/);
    await checkA11y(page, "workflow with a failed task and its log");
    await shot(page, "workflow-failed");
    await page.getByRole("link", { name: "Workflows", exact: true }).click();
    await page.locator(`tr[data-workflow="${BROKEN}"] .last-run .badge`, { hasText: "failed" }).waitFor();

    // Cancel: a run whose first task reads an unbounded source; its task ends cancelled
    // and the one after it is skipped. While it runs, the clusters page counts it.
    const forever = await rest(m, "POST", "/api/v1/workflows", {
      name: FOREVER, schedule: { cron: "@yearly" }, enabled: false,
      tasks: [
        { id: "stream", sql: "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100000000000', 'rows-per-second' = '10');\nCREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;" },
        { id: "after", depends_on: ["stream"], sql: "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\nCREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;" },
      ],
    });
    assert.equal(forever.status, 201, JSON.stringify(forever.json));
    await page.getByRole("link", { name: FOREVER }).click();
    await page.getByRole("heading", { name: FOREVER }).waitFor();
    await page.getByText("This workflow has no parameters.").waitFor();
    await page.getByRole("button", { name: "Trigger run" }).click();
    await page.locator('#dag .dag-node[data-task="stream"][data-state="running"]').waitFor({ timeout: 60_000 });

    await page.getByRole("link", { name: "Clusters" }).click();
    const local = page.locator('tr[data-cluster="local"]');
    await local.locator("td.instances", { hasText: "1" }).waitFor();
    assert.match(await local.textContent(), /1 \/ \d+/);
    const clusters = await rest(m, "GET", "/api/v1/clusters");
    const perProcess = clusters.json.find((c) => c.name === "local").threads_per_process;
    assert.equal(await local.locator("td.threads").textContent(), String(perProcess));
    await checkA11y(page, "clusters");
    await shot(page, "clusters");
    await page.goBack();
    await page.getByRole("heading", { name: FOREVER }).waitFor();

    const cancelRun = page.getByRole("button", { name: /^Cancel run / });
    await cancelRun.focus();
    // The page refreshes the active run (its duration grows); the keyboard focus stays on
    // the Cancel button across that redraw.
    const row = await page.locator("#runs tbody tr[data-run]").first().elementHandle();
    await page.waitForFunction((tr) => !tr.isConnected, row, { timeout: 10_000 });
    assert.match(await page.evaluate(() => document.activeElement?.dataset.key || ""), /^cancel:/);
    await page.keyboard.press("Enter");
    await page.getByRole("dialog").getByRole("button", { name: "Cancel run" }).focus();
    await page.keyboard.press("Enter");
    await page.locator('#dag .dag-node[data-task="stream"][data-state="cancelled"]').waitFor({ timeout: 30_000 });
    await page.locator('#dag .dag-node[data-task="after"][data-state="skipped"]').waitFor();
    await page.locator("#runs .badge", { hasText: "cancelled" }).waitFor();
    assert.equal(await cancelRun.count(), 0);
    await shot(page, "workflow-cancelled");

    // Delete it: back to the list, where it is gone.
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await page.getByRole("heading", { name: "Workflows" }).waitFor();
    await page.locator(`tr[data-workflow="${WF}"]`).waitFor();
    assert.equal(await page.locator(`tr[data-workflow="${FOREVER}"]`).count(), 0);
    assert.equal((await rest(m, "GET", `/api/v1/workflows/${FOREVER}`)).status, 404);

    // The catalog: the table's columns, types and connector.
    await page.getByRole("link", { name: "Tables" }).click();
    const card = page.locator('[data-table="clicks"]');
    await card.waitFor();
    assert.match(await card.locator(".badge").textContent(), /^filesystem$/);
    const cols = await card.locator("tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    assert.deepEqual(cols, [["user_id", "BIGINT", "no", ""], ["url", "VARCHAR", "yes", ""], ["ts", "TIMESTAMP(3)", "yes", "watermark − 5000 ms"]]);
    await page.getByLabel("Filter tables").fill("nothing-like-it");
    await page.getByText("No table matches the filter.").waitFor();
    await page.getByLabel("Filter tables").fill("url");
    await card.waitFor();
    await checkA11y(page, "tables");
    await shot(page, "tables");

    // The audit log: the console's own mutations, by the admin token, newest first.
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByLabel("Target", { exact: true }).fill(WF);
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await page.locator("#audit-status", { hasText: /^\d+ entries/ }).waitFor();
    const audit = await page.locator("table.audit tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    const routes = audit.map((r) => `${r[3]} ${r[4]} ${r[7]}`);
    assert.ok(routes.includes("POST /api/v1/workflows ok"), routes.join("\n"));
    assert.ok(routes.includes("POST /api/v1/workflows/{name}/runs ok"), routes.join("\n"));
    assert.ok(routes.includes("POST /api/v1/workflows/{name}/backfill ok"), routes.join("\n"));
    // The refused creation (its SQL did not compile) is there as failed.
    await page.getByLabel("Target", { exact: true }).fill("");
    await page.getByLabel("Outcome").selectOption("failed");
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("table.audit tbody tr[data-outcome]")];
      return rows.length > 0 && rows.every((r) => r.dataset.outcome === "failed");
    });
    const failed = await page.locator("table.audit tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    assert.ok(failed.some((r) => r[3] === "POST" && r[4] === "/api/v1/workflows" && r[6] === "422"), JSON.stringify(failed));
    await page.getByLabel("Outcome").selectOption("");
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await page.locator("table.audit tbody tr[data-outcome]").first().waitFor();
    await checkA11y(page, "audit");
    await shot(page, "audit");

    // A viewer token sees the pages, but the clusters and the audit log are refused.
    const viewer = await rest(m, "POST", "/api/v1/tokens", { name: "looker", role: "viewer" });
    assert.equal(viewer.status, 201, JSON.stringify(viewer.json));
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("API token").fill(viewer.json.token);
    await page.keyboard.press("Enter");
    // Signed in (the console then shows the jobs) before going on: a click sooner races
    // the sign-in's own navigation.
    await page.getByRole("heading", { name: "Jobs" }).waitFor();
    await page.getByRole("link", { name: "Audit log" }).click();
    await page.getByText("Only an admin token may read the audit log.").waitFor();
    await page.getByRole("link", { name: "Clusters" }).click();
    await page.getByText("Only an admin token may see the clusters.").waitFor();
    await page.getByRole("link", { name: "Workflows", exact: true }).click();
    await page.locator(`tr[data-workflow="${WF}"]`).waitFor();
    assert.deepEqual(pageErrors, [], "errors in the page");
  } catch (e) {
    await shot(page, "failure-workflows").catch(() => {});
    throw e;
  } finally {
    await browser?.close().catch(() => {});
    for (const w of [WF, FOREVER, BROKEN]) await rest(m, "DELETE", `/api/v1/workflows/${w}`).catch(() => {});
    await stopMaster(m);
  }
});
