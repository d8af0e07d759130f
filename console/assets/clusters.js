// Clusters (#/clusters): each cluster's capacity (workers, memory, GPUs), what live
// instances use of it, how many run there, and the most worker threads one process of
// an instance runs there; refreshed every few seconds. The API is for admins: another
// role sees the refusal.

import { api } from "./api.js";
import { h, keyed } from "./ui.js";

const REFRESH_MS = 3000;

/** "used / capacity unit" with a bar; a capacity of 0 means none. */
function usage(label, used, cap, unit) {
  const frac = cap > 0 ? Math.min(1, used / cap) : 0;
  const text = `${used} / ${cap}${unit ? ` ${unit}` : ""}`;
  // The width is set through the CSSOM: the CSP refuses inline style attributes.
  const fill = h(frac >= 0.9 ? "div.bar-fill.full" : "div.bar-fill");
  fill.style.width = `${(frac * 100).toFixed(1)}%`;
  return h("td.usage", {},
    h("div.bar", { role: "meter", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": String(cap), "aria-valuenow": String(Math.min(used, cap)), "aria-valuetext": text }, fill),
    h("span.num", {}, cap > 0 ? `${text} (${Math.round(frac * 100)}%)` : `${used} (none offered)`));
}

export function render(main) {
  document.title = "Clusters · Sluice";
  const body = h("tbody");
  const status = h("p.muted", { "aria-live": "polite", id: "clusters-status" }, "Loading…");
  main.append(
    h("div.page-head", {}, h("h1", {}, "Clusters")),
    h("p.muted", {}, "Where instances run: capacity, and what the live instances (jobs and workflow tasks) ask of it."),
    status,
    h("table.clusters", { "aria-label": "Clusters" },
      h("thead", {}, h("tr", {}, ["Name", "Kind", "Instances", "Workers", "Memory", "GPUs", "Threads per process"].map((c) => h("th", { scope: "col" }, c)))),
      body));
  let gone = false, timer = 0;
  const onChange = keyed();
  async function load() {
    try {
      const list = await api("GET", "/api/v1/clusters");
      if (gone) return;
      onChange(JSON.stringify(list), () => {
        body.replaceChildren(...list.map((c) => h("tr", { "data-cluster": c.name },
          h("th", { scope: "row" }, c.name), h("td", {}, c.kind), h("td.num.instances", {}, String(c.instances)),
          usage(`${c.name} workers used`, c.used.workers, c.capacity.workers, ""),
          usage(`${c.name} memory used`, c.used.memory_mb, c.capacity.memory_mb, "MiB"),
          usage(`${c.name} GPUs used`, c.used.gpus, c.capacity.gpus, ""),
          h("td.num.threads", { title: "A job that names no processes runs as the fewest processes within this" }, String(c.threads_per_process)))));
        if (!list.length) body.append(h("tr", {}, h("td.muted", { colspan: 7 }, "No cluster.")));
      });
      status.textContent = `${list.length} cluster${list.length === 1 ? "" : "s"} · refreshed ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (gone) return;
      status.textContent = e.status === 403 ? "Only an admin token may see the clusters." : `Cannot list clusters: ${e.message}`;
    }
    if (!gone) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => { gone = true; clearTimeout(timer); };
}
