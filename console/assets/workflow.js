// A workflow's page: its schedule and parameters, the DAG of its tasks coloured by the
// selected run (the newest until the user picks or triggers one), that run's tasks
// (state, attempts, start, end, rows, the end of a task's log on request), its runs (each
// task's state), and the actions trigger (with parameter values and a logical time),
// backfill, cancel a run, schedule on/off and delete.

import { api, enc } from "./api.js";
import { h, fmtTime, stateBadge, toast, confirmDialog, highlight, keyed, keepFocus } from "./ui.js";
import { dagGraph, dagSummary } from "./dag.js";

const REFRESH_MS = 2000;

function fmtMs(ms) {
  if (ms === undefined || ms === null) return "–";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const shortRun = (id) => id.length > 20 ? "…" + id.slice(-12) : id;
/** `<run id>.<task>.<attempt>` without the run id the page already shows. */
const shortInstance = (id, runId) => id.startsWith(runId + ".") ? "…" + id.slice(runId.length + 1) : id;
const ended = (state) => !["queued", "running"].includes(state);

export function render(main, name) {
  document.title = `${name} · Workflows · Sluice`;
  let gone = false, timer = 0, selected = null, pinned = false, wf = null, paramsDrawn = "";
  const head = h("div.page-head");
  const stateLine = h("p.state-line", { "aria-live": "polite" });
  const actions = h("div.row.actions", { role: "group", "aria-label": "Workflow actions" });
  const dagTitle = h("h2", { id: "h-dag" }, "DAG");
  const dag = h("div.dag-wrap", { id: "dag", tabindex: "0", role: "region", "aria-labelledby": "h-dag" });
  const legend = h("p.legend.dag-legend", {}, ["not_run", "pending", "running", "retrying", "succeeded", "failed", "upstream_failed", "skipped", "cancelled"].map((st) => h(`span.dag-key.st-${st}`, {}, st.replace("_", " "))));
  const runTasksTitle = h("h2", { id: "h-run-tasks" }, "Tasks");
  const runTasks = h("tbody");
  const runs = h("tbody");
  const paramsBox = h("div", { id: "trigger-params" });
  const logical = h("input", { id: "trigger-time", placeholder: "2024-03-31T00:00:00Z (default: now)", autocomplete: "off", spellcheck: "false", size: "30" });
  const bfStart = h("input", { id: "backfill-start", required: true, placeholder: "2024-03-01T00:00:00Z", autocomplete: "off", spellcheck: "false", size: "24" });
  const bfEnd = h("input", { id: "backfill-end", required: true, placeholder: "2024-03-07T23:59:59Z", autocomplete: "off", spellcheck: "false", size: "24" });
  const tasksSql = h("div", { id: "task-sql" });
  const logTitle = h("h2", { id: "h-log" }, "Log");
  const logText = h("pre.log", { id: "task-log", tabindex: "0", "aria-labelledby": "h-log" });
  const logBox = h("section", { "aria-labelledby": "h-log", hidden: true }, logTitle, logText);
  const onChange = { head: keyed(), run: keyed(), runs: keyed() };

  const trigger = h("form.card.action-form", { "aria-labelledby": "h-trigger", onsubmit: async (e) => {
    e.preventDefault();
    const parameters = {};
    for (const input of paramsBox.querySelectorAll("input[data-param]")) {
      if (input.value !== input.defaultValue) parameters[input.dataset.param] = input.value;
    }
    const body = { parameters };
    if (logical.value.trim()) body.logical_time = logical.value.trim();
    try {
      const run = await api("POST", `/api/v1/workflows/${enc(name)}/runs`, body);
      selected = run.run_id;
      pinned = true;
      toast(`Run ${shortRun(run.run_id)} triggered`);
      refresh();
    } catch (x) {
      toast(`Trigger failed: ${x.message}`, "error");
    }
  } },
  h("h2", { id: "h-trigger" }, "Trigger a run"),
  paramsBox,
  h("div.field", {}, h("label", { for: "trigger-time" }, "Logical time"), logical),
  h("button.primary", { type: "submit" }, "Trigger run"));

  const backfill = h("form.card.action-form", { "aria-labelledby": "h-backfill", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const b = await api("POST", `/api/v1/workflows/${enc(name)}/backfill`, { start: bfStart.value.trim(), end: bfEnd.value.trim() });
      toast(`Backfill: ${b.created.length} runs created, ${b.existing.length} ticks already had one`);
      refresh();
    } catch (x) {
      toast(`Backfill failed: ${x.message}`, "error");
    }
  } },
  h("h2", { id: "h-backfill" }, "Backfill"),
  h("p.muted", {}, "One run per tick of the schedule in the range (RFC 3339, both ends included)."),
  h("div.field", {}, h("label", { for: "backfill-start" }, "From"), bfStart),
  h("div.field", {}, h("label", { for: "backfill-end" }, "To"), bfEnd),
  h("button", { type: "submit" }, "Backfill"));

  main.append(
    h("p", {}, h("a", { href: "#/workflows" }, "← Workflows")),
    head, stateLine, actions,
    h("div.wf-top", {},
      h("div", {},
        h("section.wf-dag", { "aria-labelledby": "h-dag" }, dagTitle, dag, legend),
        h("section", { "aria-labelledby": "h-run-tasks" }, runTasksTitle,
          h("table.wf-table", { "aria-labelledby": "h-run-tasks", id: "run-tasks" }, h("thead", {}, h("tr", {}, ["Task", "State", "Attempts", "Started", "Ended", "Duration", "Rows in", "Rows out", "Instance", "Message"].map((c) => h("th", { scope: "col" }, c)))), runTasks))),
      h("div.wf-forms", {}, trigger, backfill)),
    h("section", { "aria-labelledby": "h-runs" }, h("h2", { id: "h-runs" }, "Runs"),
      h("table.wf-table", { "aria-labelledby": "h-runs", id: "runs" }, h("thead", {}, h("tr", {}, ["Run", "Trigger", "Logical time", "State", "Tasks", "Started", "Ended", "Duration", h("span.sr-only", {}, "Actions")].map((c) => h("th", { scope: "col" }, c)))), runs)),
    logBox,
    h("section", { "aria-labelledby": "h-task-sql" }, h("h2", { id: "h-task-sql" }, "Task SQL"), tasksSql));

  async function act(title, text, ok, fn) {
    if (!(await confirmDialog(title, text, ok))) return;
    try {
      await fn();
      toast(`${ok}: done`);
      refresh();
    } catch (e) {
      toast(`${ok} failed: ${e.message}`, "error");
    }
  }

  /** The end of an attempt's log (its worker's output), below the tables. */
  async function showLog(task, instanceId) {
    logBox.hidden = false;
    logTitle.textContent = `Log of ${task} (${instanceId})`;
    logText.textContent = "Loading…";
    try {
      const text = await api("GET", `/api/v1/instances/${enc(instanceId)}/logs?tail_lines=200`, undefined, { text: true });
      logText.textContent = text || "(empty)";
    } catch (e) {
      logText.textContent = `Cannot read the log: ${e.message}`;
    }
    logText.focus();
  }

  function refresh() {
    clearTimeout(timer);
    load();
  }

  function select(runId) {
    selected = runId;
    pinned = true;
    refresh();
  }

  function drawWorkflow() {
    onChange.head(JSON.stringify({ ...wf, last_tick: null }), drawHead);
  }

  function drawHead() {
    head.replaceChildren(h("h1", {}, name), h("span.badge", {}, wf.enabled ? "enabled" : "disabled"));
    stateLine.textContent = `version ${wf.version} · schedule ${wf.schedule.cron} (${wf.schedule.timezone}) · next tick ${wf.enabled ? fmtTime(wf.next_tick) : "none (disabled)"} · concurrency ${wf.concurrency} · catch-up ${wf.catchup} · cluster ${wf.cluster} · active runs ${wf.active_runs}`;
    actions.replaceChildren(
      h("button", { type: "button", id: "wf-toggle", onclick: () => act(wf.enabled ? "Disable workflow?" : "Enable workflow?", wf.enabled ? `No tick of ${name} is scheduled until it is enabled again; runs can still be triggered.` : `Ticks of ${name} are scheduled from now on.`, wf.enabled ? "Disable" : "Enable", () => api("PATCH", `/api/v1/workflows/${enc(name)}`, { enabled: !wf.enabled })) }, wf.enabled ? "Disable schedule" : "Enable schedule"),
      h("button.danger", { type: "button", id: "wf-delete", onclick: () => act("Delete workflow?", `Delete ${name}: its active runs are cancelled. This cannot be undone.`, "Delete", async () => {
        await api("DELETE", `/api/v1/workflows/${enc(name)}`);
        location.hash = "#/workflows";
      }) }, "Delete"));
    const key = JSON.stringify(wf.parameters);
    if (paramsDrawn !== key) {
      paramsDrawn = key;
      const entries = Object.entries(wf.parameters);
      paramsBox.replaceChildren(...(entries.length
        ? entries.map(([k, v]) => h("div.field", {}, h("label", { for: `param-${k}` }, `Parameter ${k}`), h("input", { id: `param-${k}`, "data-param": k, value: v, autocomplete: "off" })))
        : [h("p.muted", {}, "This workflow has no parameters.")]));
      tasksSql.replaceChildren(...wf.tasks.map((t) => h("details", {}, h("summary", {}, t.id, t.depends_on.length ? h("span.muted", {}, ` after ${t.depends_on.join(", ")}`) : null),
        h("pre.sql", { tabindex: "0", "aria-label": `SQL of task ${t.id}` }, highlight(t.sql)))));
    }
  }

  function drawRun(run) {
    const tasks = run ? run.tasks : wf.tasks;
    const states = new Map(run ? run.tasks.map((t) => [t.id, t.state]) : []);
    const what = run ? `run ${shortRun(run.run_id)} (${run.state})` : "no run yet";
    dagTitle.textContent = `DAG · ${what}`;
    dag.replaceChildren(dagGraph(tasks, states, `DAG of ${name}, ${what}: ${dagSummary(tasks, states)}`));
    runTasksTitle.textContent = run ? `Tasks of run ${shortRun(run.run_id)}` : "Tasks";
    if (!run) {
      runTasks.replaceChildren(h("tr", {}, h("td.muted", { colspan: 10 }, "No run yet: trigger one.")));
      return;
    }
    runTasks.replaceChildren(...run.tasks.map((t) => h("tr", { "data-task": t.id },
      h("th", { scope: "row" }, t.id), h("td", {}, stateBadge(t.state)),
      h("td.num", {}, `${t.attempts} / ${t.max_attempts}`),
      h("td", {}, fmtTime(t.started_at)), h("td", {}, fmtTime(t.ended_at)), h("td.num", {}, fmtMs(t.duration_ms)),
      h("td.num", {}, String(t.rows_in)), h("td.num", {}, String(t.rows_out)),
      h("td", {}, t.instance_id ? [h("code", { title: t.instance_id }, shortInstance(t.instance_id, run.run_id)), " ",
        h("button.small", { type: "button", "data-key": `log:${t.id}`, "aria-label": `Log of ${t.id}`, onclick: () => showLog(t.id, t.instance_id) }, "Log")] : "–"),
      h("td", {}, t.next_attempt_at ? `retry at ${fmtTime(t.next_attempt_at)}. ` : "", t.message || ""))));
  }

  function drawRuns(list) {
    runs.replaceChildren(...list.slice().reverse().map((r) => h("tr", { "data-run": r.run_id, class: r.run_id === selected ? "selected" : "" },
      h("th", { scope: "row" }, h("button.link", { type: "button", "data-key": `select:${r.run_id}`, "aria-pressed": String(r.run_id === selected), title: `Show run ${r.run_id} in the DAG`, onclick: () => select(r.run_id) }, h("code", {}, shortRun(r.run_id)))),
      h("td", {}, r.trigger), h("td", {}, fmtTime(r.logical_time)), h("td", {}, stateBadge(r.state)),
      h("td", {}, h("span.chips", {}, r.tasks.map((t) => h(`span.chip.st-${t.state}`, { title: `${t.id}: ${t.state}` }, `${t.id} ${t.state.replace("_", " ")}`)))),
      h("td", {}, fmtTime(r.started_at)), h("td", {}, fmtTime(r.ended_at)), h("td.num", {}, fmtMs(r.duration_ms)),
      h("td", {}, ended(r.state) || r.cancel_requested ? (r.cancel_requested && !ended(r.state) ? "cancelling…" : "") : h("button.danger.small", { type: "button", "data-key": `cancel:${r.run_id}`, "aria-label": `Cancel run ${r.run_id}`, onclick: () => act("Cancel run?", `Cancel ${r.run_id}: its running tasks are stopped and the rest skipped.`, "Cancel run", () => api("POST", `/api/v1/workflows/${enc(name)}/runs/${enc(r.run_id)}/cancel`)) }, "Cancel")))));
    if (!list.length) runs.append(h("tr", {}, h("td.muted", { colspan: 9 }, "No run yet.")));
  }

  async function load() {
    try {
      const [w, list] = await Promise.all([
        api("GET", `/api/v1/workflows/${enc(name)}`),
        api("GET", `/api/v1/workflows/${enc(name)}/runs?limit=50`),
      ]);
      if (gone) return;
      wf = w;
      drawWorkflow();
      if ((!pinned || !selected) && list.length) selected = list[list.length - 1].run_id;
      let run = list.find((r) => r.run_id === selected) || null;
      if (!run && selected) run = await api("GET", `/api/v1/workflows/${enc(name)}/runs/${enc(selected)}`).catch(() => null);
      if (gone) return;
      onChange.run(JSON.stringify([run, run ? null : wf.tasks]), () => keepFocus(runTasks, () => drawRun(run)));
      onChange.runs(JSON.stringify([list, selected]), () => keepFocus(runs, () => drawRuns(list)));
    } catch (e) {
      if (!gone) {
        head.replaceChildren(h("h1", {}, name));
        stateLine.textContent = e.status === 404 ? "No such workflow." : `Cannot load the workflow: ${e.message}`;
      }
    }
    if (!gone) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => { gone = true; clearTimeout(timer); };
}
