// Workflows overview (every workflow: schedule, enabled, next tick, tasks, its newest
// run's state) and the create form (#/create-workflow: name, cron schedule, time zone,
// parameters, and the tasks as a JSON array, drawn as a DAG while typing).

import { api, enc, ApiError } from "./api.js";
import { h, fmtTime, stateBadge, toast, keyed, keepFocus } from "./ui.js";
import { dagGraph, dagSummary } from "./dag.js";

const REFRESH_MS = 3000;

export function render(main) {
  document.title = "Workflows · Sluice";
  const body = h("tbody");
  const status = h("p.muted", { "aria-live": "polite", id: "workflows-status" }, "Loading…");
  main.append(
    h("div.page-head", {}, h("h1", {}, "Workflows"), h("a.button.primary", { href: "#/create-workflow" }, "Create workflow")),
    status,
    h("table.workflows", { "aria-label": "Workflows" },
      h("thead", {}, h("tr", {}, ["Name", "Schedule", "Enabled", "Next tick", "Tasks", "Last run", "Last run at", "Active runs"].map((c) => h("th", { scope: "col" }, c)))),
      body));
  let timer = 0, gone = false;
  const onChange = keyed();

  async function load() {
    try {
      const wfs = await api("GET", "/api/v1/workflows");
      const lastRuns = await Promise.all(wfs.map((w) =>
        api("GET", `/api/v1/workflows/${enc(w.name)}/runs?limit=1`).then((r) => r[r.length - 1]).catch(() => undefined)));
      if (gone) return;
      onChange(JSON.stringify([wfs, lastRuns]), () => keepFocus(body, () => draw(wfs, lastRuns)));
      status.textContent = `${wfs.length} workflow${wfs.length === 1 ? "" : "s"} · refreshed ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!gone) toast(`Cannot list workflows: ${e.message}`, "error");
    }
    if (!gone) timer = setTimeout(load, REFRESH_MS);
  }

  function draw(wfs, lastRuns) {
    body.replaceChildren(...wfs.map((w, i) => {
      const run = lastRuns[i];
      return h("tr", { "data-workflow": w.name },
        h("th", { scope: "row" }, h("a", { href: `#/workflows/${enc(w.name)}`, "data-key": `wf:${w.name}` }, w.name)),
        h("td", {}, h("code", {}, w.schedule.cron), h("span.muted", {}, ` ${w.schedule.timezone}`)),
        h("td", {}, w.enabled ? "yes" : "no"),
        h("td", {}, w.enabled ? fmtTime(w.next_tick) : "–"),
        h("td.num", {}, String(w.tasks.length)),
        h("td.last-run", {}, run ? stateBadge(run.state) : h("span.muted", {}, "never run")),
        h("td", {}, run ? fmtTime(run.started_at || run.created_at) : "–"),
        h("td.num", {}, String(w.active_runs)));
    }));
    if (!wfs.length) body.append(h("tr", {}, h("td.muted", { colspan: 8 }, "No workflows yet: create one.")));
  }
  load();
  return () => { gone = true; clearTimeout(timer); };
}

const EXAMPLE_TASKS = `[
  {
    "id": "extract",
    "sql": "CREATE TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100');\\nCREATE TABLE sink (n BIGINT) WITH ('connector' = 'blackhole');\\nINSERT INTO sink SELECT n FROM src;"
  },
  {
    "id": "load",
    "depends_on": ["extract"],
    "retries": 1,
    "sql": "CREATE TABLE src (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\\nCREATE TABLE sink (n BIGINT) WITH ('connector' = 'blackhole');\\nINSERT INTO sink SELECT n FROM src;"
  }
]`;

/** `key=value` lines as an object; throws on a line without `=`. */
export function parseParameters(text) {
  const out = {};
  text.split("\n").map((l) => l.trim()).filter(Boolean).forEach((l, i) => {
    const at = l.indexOf("=");
    if (at <= 0) throw new Error(`parameter line ${i + 1} is not name=value`);
    out[l.slice(0, at).trim()] = l.slice(at + 1).trim();
  });
  return out;
}

export function renderCreate(main) {
  document.title = "Create workflow · Sluice";
  const field = (id, label, input, help) => h("div.field", {}, h("label", { for: id }, label), input, help ? h("p.muted.help", { id: `${id}-help` }, help) : null);
  const name = h("input", { id: "wf-name", required: true, pattern: "[A-Za-z][A-Za-z0-9_\\-]{0,62}", placeholder: "nightly", autocomplete: "off" });
  const cron = h("input", { id: "wf-cron", required: true, value: "0 30 2 * * *", autocomplete: "off", spellcheck: "false", "aria-describedby": "wf-cron-help" });
  const tz = h("input", { id: "wf-tz", required: true, value: "UTC", autocomplete: "off" });
  const enabled = h("input", { id: "wf-enabled", type: "checkbox", checked: true });
  const params = h("textarea.code", { id: "wf-params", rows: "3", spellcheck: "false", placeholder: "min_amount=20", "aria-describedby": "wf-params-help" });
  const tasks = h("textarea.code", { id: "wf-tasks", rows: "16", spellcheck: "false", wrap: "off", "aria-describedby": "wf-tasks-help wf-tasks-status" });
  tasks.value = EXAMPLE_TASKS;
  const tasksStatus = h("p", { id: "wf-tasks-status", role: "status", "aria-live": "polite" });
  const preview = h("div.dag-wrap", { id: "wf-preview", tabindex: "0", role: "region", "aria-label": "DAG preview" });
  const err = h("div.error", { id: "wf-error", role: "alert" });

  function draw() {
    try {
      const list = JSON.parse(tasks.value);
      if (!Array.isArray(list) || list.some((t) => !t || typeof t.id !== "string")) throw new Error("the tasks must be an array of objects with an \"id\"");
      tasksStatus.className = "ok";
      tasksStatus.textContent = `${list.length} tasks`;
      preview.replaceChildren(dagGraph(list, new Map(), `DAG preview: ${dagSummary(list, new Map())}`));
      return list;
    } catch (e) {
      tasksStatus.className = "error";
      tasksStatus.textContent = `Tasks: ${e.message}`;
      preview.replaceChildren();
      return null;
    }
  }
  tasks.addEventListener("input", () => { err.replaceChildren(); draw(); });

  const form = h("form.card.wf-form", { "aria-labelledby": "wf-create-title", onsubmit: async (e) => {
    e.preventDefault();
    err.replaceChildren();
    const list = draw();
    if (!list) { tasks.focus(); return; }
    let parameters;
    try { parameters = parseParameters(params.value); } catch (x) { err.textContent = x.message; params.focus(); return; }
    const body = { name: name.value.trim(), schedule: { cron: cron.value.trim(), timezone: tz.value.trim() || "UTC" }, tasks: list, parameters, enabled: enabled.checked };
    try {
      await api("POST", "/api/v1/workflows", body);
      toast(`Workflow ${body.name} created`);
      location.hash = `#/workflows/${enc(body.name)}`;
    } catch (x) {
      const d = x instanceof ApiError ? x.details : {};
      err.textContent = `Cannot create the workflow: ${x.message}`;
      (d.task ? tasks : name).focus();
    }
  } },
  h("div.form-grid", {},
    field("wf-name", "Name", name),
    field("wf-cron", "Cron schedule", cron, "5 fields (minutes), 6 (seconds first) or @daily-style."),
    field("wf-tz", "Time zone", tz),
    h("div.field.check", {}, enabled, h("label", { for: "wf-enabled" }, "Enabled (ticks are scheduled)"))),
  field("wf-params", "Parameters", params, "One name=value a line: {{ name }} in the task SQL, and its default."),
  h("div.cols", {},
    h("div", {}, field("wf-tasks", "Tasks (JSON)", tasks, "An array of {id, sql, depends_on, retries, retry_backoff_ms, timeout_ms, resources}."), tasksStatus),
    h("section", { "aria-labelledby": "h-preview" }, h("h2", { id: "h-preview" }, "DAG"), preview)),
  err,
  h("div.row", {}, h("button.primary", { type: "submit" }, "Create workflow"), h("a.button", { href: "#/workflows" }, "Cancel")));

  main.append(h("p", {}, h("a", { href: "#/workflows" }, "← Workflows")), h("h1", { id: "wf-create-title" }, "Create workflow"), form);
  draw();
  name.focus();
}
