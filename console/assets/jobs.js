// Jobs overview: every job with its state, version, parallelism, rows/s in and out
// (the newest point of its metrics history), restarts and a sparkline; a filter box;
// refreshed every few seconds.

import { api, enc } from "./api.js";
import { h, fmtRate, stateBadge, series, last, sparkline, toast, keepFocus } from "./ui.js";

const REFRESH_MS = 3000;

export function render(main) {
  document.title = "Jobs · Sluice";
  const filter = h("input", { id: "job-filter", type: "search", placeholder: "name, state or SQL", "aria-label": "Filter jobs" });
  const body = h("tbody");
  const status = h("p.muted", { "aria-live": "polite", id: "jobs-status" }, "Loading…");
  main.append(
    h("div.page-head", {}, h("h1", {}, "Jobs"), h("a.button.primary", { href: "#/workbench" }, "New job")),
    h("div.row", {}, h("label", { for: "job-filter" }, "Filter"), filter, status),
    h("table.jobs", { "aria-label": "Jobs" },
      h("thead", {}, h("tr", {}, ["Name", "State", "Version", "Parallelism", "Rows/s in", "Rows/s out", "Restarts", "Rate (15 min)"].map((c) => h("th", { scope: "col" }, c)))),
      body));
  let jobs = [];
  const metrics = new Map();
  let timer = 0;
  let gone = false;

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const shown = jobs.filter((j) => !q || j.name.toLowerCase().includes(q) || j.state.includes(q) || j.sql.toLowerCase().includes(q));
    keepFocus(body, () => body.replaceChildren(...shown.map((j) => {
      const m = metrics.get(j.name);
      const inn = series(m, "rows_in"), out = series(m, "rows_out");
      return h("tr", { "data-job": j.name },
        h("th", { scope: "row" }, h("a", { href: `#/jobs/${enc(j.name)}`, "data-key": `job:${j.name}` }, j.name)),
        h("td", {}, stateBadge(j.state), j.desired_state === "stopped" && j.state !== "stopped" ? h("span.muted", {}, " → stopped") : null),
        h("td.num", {}, String(j.version)),
        h("td.num", {}, String(j.resources.parallelism)),
        h("td.num.rate-in", {}, fmtRate(last(inn))),
        h("td.num.rate-out", {}, fmtRate(last(out))),
        h("td.num", {}, String(j.restarts)),
        h("td", {}, sparkline(out.length ? out : inn, `${j.name} rows per second, last 15 minutes`)));
    })));
    if (!shown.length) body.append(h("tr", {}, h("td.muted", { colspan: 8 }, jobs.length ? "No job matches the filter." : "No jobs yet: write one in the SQL workbench.")));
    status.textContent = `${shown.length} of ${jobs.length} jobs · refreshed ${new Date().toLocaleTimeString()}`;
  }

  async function load() {
    try {
      jobs = await api("GET", "/api/v1/jobs");
      await Promise.all(jobs.map(async (j) => {
        try { metrics.set(j.name, await api("GET", `/api/v1/jobs/${enc(j.name)}/metrics`)); } catch { /* no history yet */ }
      }));
      if (!gone) draw();
    } catch (e) {
      if (!gone) toast(`Cannot list jobs: ${e.message}`, "error");
    }
    if (!gone) timer = setTimeout(load, REFRESH_MS);
  }
  filter.addEventListener("input", draw);
  load();
  return () => { gone = true; clearTimeout(timer); };
}
