// A job's page: its SQL (highlighted), the physical plan drawn as operator boxes (from
// POST /api/v1/jobs/validate over the job's SQL), instances, rate charts from the
// metrics history, checkpoints (commits), restarts and failures, the events timeline
// (failures and restarts marked, and a filter to show only them), an instance's log
// tail, and the actions stop, start, scale, delete and kill instance, each behind a
// confirmation.

import { api, enc } from "./api.js";
import { h, s, fmtRate, fmtBytes, fmtTime, stateBadge, series, chart, highlight, toast, confirmDialog, keepFocus } from "./ui.js";

const REFRESH_MS = 3000;
/** Event kinds shown as trouble: an instance died, or the watchdog restarts the job. */
const TROUBLE = new Set(["instance_failed", "restart_scheduled"]);

/** Parses EXPLAIN PHYSICAL's indented tree into [{depth, op, detail}]. */
export function parsePlan(text) {
  return text.split("\n").filter((l) => l.trim() && !l.startsWith("--")).map((l) => {
    const depth = Math.floor((l.length - l.trimStart().length) / 2);
    const t = l.trim();
    const m = /^([A-Za-z][A-Za-z0-9_]*)(.*)$/.exec(t);
    return { depth, op: m ? m[1] : t, detail: m ? m[2].replace(/^[:\s]+/, "") : "" };
  });
}

/** The plan as an SVG tree: one box per operator, edges to its inputs. Each node
 * carries `data-key` = `<query>.<line>`, the key of its row counter in the instances'
 * `operators` (see `showRates`). */
export function planGraph(text, label, query = 0) {
  const nodes = parsePlan(text);
  const rowH = 46, boxH = 36, indent = 28, w = 600;
  const svg = s("svg", { width: w, height: nodes.length * rowH + 4, viewBox: `0 0 ${w} ${nodes.length * rowH + 4}`, role: "img", "aria-label": label, class: "plan" });
  const parents = [];
  nodes.forEach((n, i) => {
    const x = 4 + n.depth * indent, y = 2 + i * rowH;
    parents[n.depth] = { x, y };
    const p = n.depth > 0 ? parents[n.depth - 1] : null;
    if (p) svg.append(s("path", { d: `M${p.x + 12},${p.y + boxH} V${y + boxH / 2} H${x}`, class: "plan-edge" }));
    const g = s("g", { class: "plan-node", "data-op": n.op, "data-key": `${query}.${i}` });
    g.append(s("title", {}, `${n.op} ${n.detail}`));
    g.append(s("rect", { x, y, width: w - x - 4, height: boxH, rx: 6 }));
    g.append(s("text", { x: x + 10, y: y + 15, class: "plan-op" }, n.op));
    const detail = n.detail.length > 90 ? n.detail.slice(0, 87) + "…" : n.detail;
    g.append(s("text", { x: x + 10, y: y + 29, class: "plan-detail" }, detail));
    g.append(s("text", { x: w - 14, y: y + 15, class: "plan-rate", "text-anchor": "end" }, ""));
    svg.append(g);
  });
  return svg;
}

/** Sums the per-operator row counters of the live instances: { key: rows }. */
export function operatorRows(instances) {
  const total = {};
  for (const i of instances) {
    if (i.ended_at) continue;
    for (const [k, v] of Object.entries(i.operators || {})) total[k] = (total[k] || 0) + v;
  }
  return total;
}

/** Per-operator rates between two readings ({t: ms, rows}), in rows per second. */
export function operatorRates(prev, cur) {
  const rates = {};
  const dt = prev ? (cur.t - prev.t) / 1000 : 0;
  for (const [k, v] of Object.entries(cur.rows)) {
    const before = prev ? prev.rows[k] : undefined;
    rates[k] = dt > 0 && before !== undefined && v >= before ? (v - before) / dt : null;
  }
  return rates;
}

/** Writes each operator's rate and row count on its plan node. */
function showRates(plan, cur, rates) {
  for (const g of plan.querySelectorAll("g.plan-node")) {
    const key = g.getAttribute("data-key");
    const rows = cur.rows[key];
    const label = g.querySelector(".plan-rate");
    if (!label) continue;
    if (rows === undefined) { label.textContent = ""; continue; }
    const rate = rates[key];
    label.textContent = rate === null || rate === undefined ? `${fmtRate(rows)} rows` : `${fmtRate(rate)} rows/s · ${fmtRate(rows)} rows`;
  }
}

export function render(main, name) {
  document.title = `${name} · Sluice`;
  let gone = false, timer = 0, planDrawn = "", lastOps = null;
  const head = h("div.page-head");
  const stateLine = h("p.state-line", { "aria-live": "polite" });
  const sql = h("pre.sql", { tabindex: "0", "aria-label": "The job's SQL" });
  const plan = h("div.plan-wrap", { id: "plan", tabindex: "0", role: "region", "aria-label": "Physical plan" });
  const charts = h("div.charts");
  const instances = h("tbody");
  const commits = h("tbody");
  const events = h("ol.timeline", { "aria-label": "Events", tabindex: "0", id: "events" });
  const restarts = h("dl.stats", { id: "restarts" });
  const evFilter = h("select", { id: "event-filter" }, h("option", { value: "" }, "all events"), h("option", { value: "trouble" }, "failures and restarts"));
  let lastEvents = [];
  const actions = h("div.row.actions", { role: "group", "aria-label": "Job actions" });
  const scaleInput = h("input", { id: "job-scale", type: "number", min: "1", max: "256", required: true });
  const logPanel = h("div.log-panel", { id: "log", "aria-live": "polite" });
  let logId = null;
  main.append(
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    head, stateLine, actions,
    h("section", { "aria-labelledby": "h-rates" }, h("h2", { id: "h-rates" }, "Rates"), charts),
    h("div.cols", {},
      h("section", { "aria-labelledby": "h-sql" }, h("h2", { id: "h-sql" }, "SQL"), sql),
      h("section", { "aria-labelledby": "h-plan" }, h("h2", { id: "h-plan" }, "Physical plan"), plan)),
    h("section", { "aria-labelledby": "h-inst" }, h("h2", { id: "h-inst" }, "Instances"),
      h("table", { "aria-labelledby": "h-inst" }, h("thead", {}, h("tr", {}, ["Id", "State", "Version", "Parallelism", "Processes", "Started", "Rows in", "Rows out", ""].map((c, i) => h("th", { scope: "col" }, c || h("span.sr-only", {}, i === 8 ? "Actions" : ""))))), instances),
      logPanel),
    h("div.cols", {},
      h("section", { "aria-labelledby": "h-ckpt" }, h("h2", { id: "h-ckpt" }, "Checkpoints"),
        h("table", { "aria-labelledby": "h-ckpt" }, h("thead", {}, h("tr", {}, ["Epoch", "Completed", "Duration", "State", "Written", "Objects"].map((c) => h("th", { scope: "col" }, c)))), commits)),
      h("section", { "aria-labelledby": "h-events" }, h("h2", { id: "h-events" }, "Events"), restarts,
        h("div.row", {}, h("label", { for: "event-filter" }, "Show"), evFilter), events)));
  evFilter.addEventListener("change", () => drawEvents(lastEvents));

  async function act(title, text, ok, fn) {
    if (!(await confirmDialog(title, text, ok))) return;
    try {
      await fn();
      toast(`${ok}: done`);
      clearTimeout(timer);
      load();
    } catch (e) {
      toast(`${ok} failed: ${e.message}`, "error");
    }
  }

  function drawActions(job) {
    const stopped = job.desired_state === "stopped";
    actions.replaceChildren(
      stopped
        ? h("button.primary", { type: "button", id: "job-start", "data-key": "start", onclick: () => act("Start job?", `Start ${name} again (from its latest checkpoint when it has one).`, "Start", () => api("PATCH", `/api/v1/jobs/${enc(name)}`, { desired_state: "running" })) }, "Start")
        : h("button", { type: "button", id: "job-stop", "data-key": "stop", onclick: () => act("Stop job?", `Stop ${name}: its instance is stopped; the job and its checkpoints are kept.`, "Stop", () => api("PATCH", `/api/v1/jobs/${enc(name)}`, { desired_state: "stopped" })) }, "Stop"),
      h("button.danger", { type: "button", id: "job-delete", "data-key": "delete", onclick: () => act("Delete job?", `Delete ${name}: it stops and is gone from the list. This cannot be undone.`, "Delete", async () => {
        await api("DELETE", `/api/v1/jobs/${enc(name)}`);
        location.hash = "#/jobs";
      }) }, "Delete"),
      h("form.row.scale", { "aria-label": "Scale", onsubmit: (e) => {
        e.preventDefault();
        const n = Number(scaleInput.value);
        act("Scale job?", `Run ${name} at parallelism ${n} (now ${job.resources.parallelism}): its instance restarts from its latest checkpoint, its state redistributed over the new workers.`, "Scale",
          () => api("PATCH", `/api/v1/jobs/${enc(name)}`, { resources: { parallelism: n } }));
      } }, h("label", { for: "job-scale" }, "Parallelism"), scaleInput, h("button", { type: "submit", id: "job-scale-apply", "data-key": "scale" }, "Scale")));
    if (document.activeElement !== scaleInput) scaleInput.value = String(job.resources.parallelism);
  }

  /** The end of instance `id`'s log (its worker's output), in the log panel. */
  async function showLog(id) {
    logId = id;
    try {
      const text = await api("GET", `/api/v1/instances/${enc(id)}/logs?tail_lines=200`, undefined, { text: true });
      if (logId !== id) return;
      logPanel.replaceChildren(h("h3", {}, `Log of ${id} (last 200 lines)`), h("pre.log", { tabindex: "0", "aria-label": `Log of instance ${id}` }, text || "(empty)"));
    } catch (e) {
      logPanel.replaceChildren(h("p.error", {}, `Cannot read the log: ${e.message}`));
    }
  }

  function drawRestarts(job, ev) {
    // A crash is recorded as `restart_scheduled` (with a restart to come) or as
    // `instance_failed` (no restart left): both are failures of an instance.
    const failures = ev.filter((e) => TROUBLE.has(e.kind));
    const last = failures[failures.length - 1];
    restarts.replaceChildren(
      h("div", {}, h("dt", {}, "Restarts"), h("dd", { class: job.restarts ? "warn" : "" }, String(job.restarts))),
      h("div", {}, h("dt", {}, "Instance failures"), h("dd", { class: failures.length ? "bad" : "" }, String(failures.length))),
      h("div", {}, h("dt", {}, "Last failure"), h("dd", {}, last ? [fmtTime(last.at), ": ", last.message] : "never")));
  }

  function drawEvents(ev) {
    const trouble = evFilter.value === "trouble";
    const shown = ev.slice().reverse().filter((e) => !trouble || TROUBLE.has(e.kind)).slice(0, 100);
    events.replaceChildren(...shown.map((e) => h("li", { "data-kind": e.kind, class: TROUBLE.has(e.kind) ? `ev-trouble ev-${e.kind}` : "" },
      h("time", { datetime: e.at }, fmtTime(e.at)), " ", h("strong", {}, e.kind.replaceAll("_", " ")), e.state ? [" → ", stateBadge(e.state)] : null,
      " ", h("span", {}, e.message), e.by ? h("span.muted", {}, ` (by ${e.by})`) : null)));
    if (!shown.length) events.append(h("li.muted", {}, trouble ? "No failure or restart." : "No event yet."));
  }

  async function load() {
    try {
      const job = await api("GET", `/api/v1/jobs/${enc(name)}`);
      if (gone) return;
      const [inst, ev, cm, met] = await Promise.all([
        api("GET", `/api/v1/jobs/${enc(name)}/instances`).catch(() => []),
        api("GET", `/api/v1/jobs/${enc(name)}/events?limit=1000`).catch(() => []),
        api("GET", `/api/v1/jobs/${enc(name)}/commits`).catch(() => ({ commits: [] })),
        api("GET", `/api/v1/jobs/${enc(name)}/metrics`).catch(() => null),
      ]);
      if (gone) return;
      head.replaceChildren(h("h1", {}, name), stateBadge(job.state));
      stateLine.textContent = `version ${job.version} · parallelism ${job.resources.parallelism} · ${job.resources.memory_mb} MiB · cluster ${job.cluster} · restarts ${job.restarts} · ${job.state_reason || ""}`;
      keepFocus(actions, () => drawActions(job));
      if (sql.dataset.sql !== job.sql) {
        sql.dataset.sql = job.sql;
        sql.replaceChildren(highlight(job.sql));
      }
      if (planDrawn !== job.sql) {
        planDrawn = job.sql;
        const v = await api("POST", "/api/v1/jobs/validate", { sql: job.sql }).catch((e) => ({ valid: false, errors: [{ message: e.message }] }));
        plan.replaceChildren(...(v.valid
          ? v.queries.map((q, i) => h("div", {}, h("h3", {}, `Query ${i + 1}: ${q.target}`), planGraph(q.physical, `Physical plan of query ${i + 1}`, i)))
          : [h("p.error", {}, v.errors.map((e) => e.message).join("; "))]));
      }
      const ops = { t: Date.now(), rows: operatorRows(inst) };
      showRates(plan, ops, operatorRates(lastOps, ops));
      lastOps = ops;
      const rin = series(met, "rows_in"), rout = series(met, "rows_out");
      charts.replaceChildren(
        chart("Rows per second", [{ name: "in", points: rin, cls: "c-in" }, { name: "out", points: rout, cls: "c-out" }], "rows/s"),
        chart("Memory (RSS)", [{ name: "rss", points: series(met, "rss_bytes").map(([t, v]) => [t, v / 1048576]), cls: "c-mem" }], "MiB"));
      keepFocus(instances, () => instances.replaceChildren(...inst.map((i) => h("tr", {},
        h("td", {}, h("code", {}, i.id)), h("td", {}, stateBadge(i.state)), h("td.num", {}, String(i.job_version)),
        h("td.num", {}, String(i.parallelism)), h("td", {}, (i.pids || []).join(", ")), h("td", {}, fmtTime(i.started_at)),
        h("td.num", {}, fmtRate(i.rows_in)), h("td.num", {}, fmtRate(i.rows_out)),
        h("td", {}, h("button.small", { type: "button", "data-key": `log:${i.id}`, "aria-label": `Log of instance ${i.id}`, onclick: () => showLog(i.id) }, "Log"), " ",
          i.ended_at ? "" : h("button.danger.small", { type: "button", "data-key": `kill:${i.id}`, "aria-label": `Kill instance ${i.id}`, onclick: () => act("Kill instance?", `Kill ${i.id} (SIGKILL). The watchdog restarts the job from its latest checkpoint.`, "Kill", () => api("POST", `/api/v1/instances/${enc(i.id)}/kill`)) }, "Kill"))))));
      if (!inst.length) instances.append(h("tr", {}, h("td.muted", { colspan: 9 }, "No instance.")));
      const cs = (cm.commits || []).slice().reverse().slice(0, 20);
      commits.replaceChildren(...cs.map((c) => h("tr", {},
        h("td.num", {}, String(c.epoch)), h("td", {}, fmtTime(c.completed_at)), h("td.num", {}, c.duration_ms == null ? "–" : `${c.duration_ms} ms`),
        h("td.num", {}, fmtBytes(c.size_bytes)), h("td.num", {}, fmtBytes(c.written_bytes)),
        h("td", {}, Object.values(c.objects || {}).reduce((n, o) => n + o.length, 0) + " objects"))));
      if (!cs.length) commits.append(h("tr", {}, h("td.muted", { colspan: 6 }, cm.checkpoint_dir ? "No checkpoint yet." : "This job does not checkpoint.")));
      lastEvents = ev;
      drawRestarts(job, ev);
      drawEvents(ev);
    } catch (e) {
      if (!gone) {
        head.replaceChildren(h("h1", {}, name));
        stateLine.textContent = e.status === 404 ? "No such job." : `Cannot load the job: ${e.message}`;
      }
    }
    if (!gone) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => { gone = true; clearTimeout(timer); };
}
