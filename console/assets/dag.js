// A workflow's DAG as inline SVG: tasks laid out in columns by dependency depth (a task
// sits one column right of its deepest dependency), arrows from each dependency to the
// task, each node coloured by the state of that task in the selected run.

import { s } from "./ui.js";

/**
 * The depth of every task: 0 without dependencies, else 1 + the deepest dependency.
 * A dependency on an unknown task is ignored; a cycle (the API refuses one) is cut.
 */
export function depths(tasks) {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const depth = new Map();
  const visiting = new Set();
  function d(id) {
    if (depth.has(id)) return depth.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const deps = (byId.get(id)?.depends_on || []).filter((x) => byId.has(x));
    const v = deps.length ? 1 + Math.max(...deps.map(d)) : 0;
    visiting.delete(id);
    depth.set(id, v);
    return v;
  }
  for (const t of tasks) d(t.id);
  return depth;
}

/** Each task's box: {id, x, y, layer} (layers left to right, tasks in order within one). */
export function layout(tasks, { boxW = 168, boxH = 52, gapX = 64, gapY = 22, pad = 12 } = {}) {
  const depth = depths(tasks);
  const layers = [];
  for (const t of tasks) (layers[depth.get(t.id)] ||= []).push(t.id);
  const pos = new Map();
  layers.forEach((ids, layer) => ids.forEach((id, i) => {
    pos.set(id, { id, layer, x: pad + layer * (boxW + gapX), y: pad + i * (boxH + gapY) });
  }));
  const rows = Math.max(1, ...layers.map((l) => (l ? l.length : 0)));
  return {
    pos, boxW, boxH,
    width: pad * 2 + Math.max(1, layers.length) * boxW + Math.max(0, layers.length - 1) * gapX,
    height: pad * 2 + rows * boxH + (rows - 1) * gapY,
  };
}

/**
 * The DAG of `tasks` ([{id, depends_on}]); `states` maps a task id to its state in the
 * selected run (absent: not run). Every node carries data-task and data-state.
 */
export function dagGraph(tasks, states, label) {
  const L = layout(tasks);
  const svg = s("svg", { width: L.width, height: L.height, viewBox: `0 0 ${L.width} ${L.height}`, role: "img", "aria-label": label, class: "dag" });
  const defs = s("defs");
  defs.append(s("marker", { id: "dag-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "8", markerHeight: "8", orient: "auto-start-reverse" },
    s("path", { d: "M0,0 L10,5 L0,10 z", class: "dag-arrowhead" })));
  svg.append(defs);
  for (const t of tasks) {
    const to = L.pos.get(t.id);
    for (const dep of t.depends_on || []) {
      const from = L.pos.get(dep);
      if (!from) continue;
      const x1 = from.x + L.boxW, y1 = from.y + L.boxH / 2, x2 = to.x - 2, y2 = to.y + L.boxH / 2;
      const mx = (x1 + x2) / 2;
      svg.append(s("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: "dag-edge", "marker-end": "url(#dag-arrow)", "data-from": dep, "data-to": t.id }));
    }
  }
  for (const t of tasks) {
    const p = L.pos.get(t.id);
    const state = states?.get(t.id) || "not_run";
    const g = s("g", { class: `dag-node st-${state}`, "data-task": t.id, "data-state": state });
    g.append(s("title", {}, `${t.id}: ${state.replace("_", " ")}${t.depends_on?.length ? ` (after ${t.depends_on.join(", ")})` : ""}`));
    g.append(s("rect", { x: p.x, y: p.y, width: L.boxW, height: L.boxH, rx: 8 }));
    const name = t.id.length > 20 ? t.id.slice(0, 19) + "…" : t.id;
    g.append(s("text", { x: p.x + 10, y: p.y + 21, class: "dag-name" }, name));
    g.append(s("text", { x: p.x + 10, y: p.y + 39, class: "dag-state" }, state.replace("_", " ")));
    svg.append(g);
  }
  return svg;
}

/** A sentence for screen readers: each task, its state and what it runs after. */
export function dagSummary(tasks, states) {
  return tasks.map((t) => `${t.id} ${(states?.get(t.id) || "not run").replace("_", " ")}${t.depends_on?.length ? ` after ${t.depends_on.join(" and ")}` : ""}`).join("; ");
}
