// Small DOM helpers shared by the pages: an element builder, number formats, SVG
// sparklines and rate charts, SQL highlighting, the confirmation dialog and a toast.

const SVG = "http://www.w3.org/2000/svg";

/** h("div.card", {attrs}, children…): an element; strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  append(el, children);
  return el;
}

export function fmtRate(v) {
  if (v === undefined || v === null) return "–";
  v = Number(v);
  if (Number.isNaN(v)) return "–";
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return v >= 10 ? v.toFixed(0) : v.toFixed(1);
}

export function fmtBytes(v) {
  if (v === undefined || v === null) return "–";
  v = Number(v);
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function fmtTime(rfc) {
  if (!rfc) return "–";
  const d = new Date(rfc);
  return Number.isNaN(d.getTime()) ? rfc : d.toLocaleString();
}

export function stateBadge(state) {
  return h(`span.badge.st-${state}`, {}, String(state).replaceAll("_", " "));
}

/** The series `name` of a metrics answer, as [[t, v], …] (empty when absent). */
export function series(metrics, name) {
  const all = (metrics?.series || []).filter((x) => x.name === name);
  return all.length ? all[0].points : [];
}

export function last(points) {
  return points.length ? points[points.length - 1][1] : undefined;
}

/** An inline SVG sparkline of points [[t, v], …]. */
export function sparkline(points, label, { w = 120, h: ht = 28 } = {}) {
  const svg = s("svg", { width: w, height: ht, viewBox: `0 0 ${w} ${ht}`, role: "img", "aria-label": label, class: "spark" });
  if (points.length < 2) {
    svg.append(s("line", { x1: 0, y1: ht - 2, x2: w, y2: ht - 2, class: "spark-empty" }));
    return svg;
  }
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const max = Math.max(1e-9, ...points.map((p) => p[1]));
  const xy = points.map(([t, v]) => [((t - t0) / Math.max(1, t1 - t0)) * (w - 2) + 1, ht - 2 - (v / max) * (ht - 4)]);
  const d = xy.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  svg.append(s("path", { d: `${d}L${xy[xy.length - 1][0].toFixed(1)},${ht}L${xy[0][0].toFixed(1)},${ht}Z`, class: "spark-fill" }));
  svg.append(s("path", { d, class: "spark-line" }));
  return svg;
}

/** A rate chart with axes: several named series [{name, points, cls}]. */
export function chart(title, lines, unit) {
  const w = 560, ht = 180, l = 48, b = 22, t = 10, r = 10;
  const pts = lines.flatMap((x) => x.points);
  const fig = h("figure.chart", {}, h("figcaption", {}, title));
  const svg = s("svg", { viewBox: `0 0 ${w} ${ht}`, role: "img", "aria-label": `${title} chart`, class: "chart-svg" });
  fig.append(svg);
  if (pts.length < 2) {
    svg.append(s("text", { x: w / 2, y: ht / 2, "text-anchor": "middle", class: "muted-svg" }, "no samples yet"));
    return fig;
  }
  const t0 = Math.min(...pts.map((p) => p[0])), t1 = Math.max(...pts.map((p) => p[0]));
  const max = Math.max(1e-9, ...pts.map((p) => p[1])) * 1.1;
  const X = (x) => l + ((x - t0) / Math.max(1, t1 - t0)) * (w - l - r);
  const Y = (y) => ht - b - (y / max) * (ht - b - t);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(s("line", { x1: l, x2: w - r, y1: Y(v), y2: Y(v), class: "grid" }));
    svg.append(s("text", { x: l - 6, y: Y(v) + 4, "text-anchor": "end", class: "axis" }, fmtRate(v)));
  }
  for (const tt of [t0, (t0 + t1) / 2, t1]) {
    svg.append(s("text", { x: X(tt), y: ht - 6, "text-anchor": "middle", class: "axis" }, new Date(tt).toLocaleTimeString()));
  }
  for (const line of lines) {
    if (line.points.length < 1) continue;
    const d = line.points.map(([x, y], i) => `${i ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("");
    svg.append(s("path", { d, class: `chart-line ${line.cls || ""}` }));
  }
  fig.append(h("div.legend", {}, lines.map((x) => h(`span.key.${x.cls || ""}`, {}, `${x.name} (${unit})`))));
  return fig;
}

const KEYWORDS = new Set(("select from where group by order having limit insert into create table with as and or not " +
  "null is in on join left right inner outer full cross union all distinct case when then else end cast " +
  "interval tumble hop session over partition rows range between asc desc values set view if exists drop " +
  "true false like window watermark for primary key overwrite timestamp bigint int integer varchar double " +
  "boolean date text float real decimal smallint").split(" "));

/** SQL as highlighted spans (keywords, strings, numbers, comments). */
export function highlight(sql) {
  const frag = document.createDocumentFragment();
  const re = /(--[^\n]*)|('(?:[^']|'')*')|("(?:[^"]|"")*")|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+|.)/gs;
  let m;
  while ((m = re.exec(sql))) {
    if (m[1]) frag.append(h("span.tok-comment", {}, m[1]));
    else if (m[2]) frag.append(h("span.tok-string", {}, m[2]));
    else if (m[3]) frag.append(h("span.tok-ident", {}, m[3]));
    else if (m[4]) frag.append(h("span.tok-number", {}, m[4]));
    else if (m[5]) frag.append(KEYWORDS.has(m[5].toLowerCase()) ? h("span.tok-kw", {}, m[5]) : document.createTextNode(m[5]));
    else frag.append(document.createTextNode(m[6]));
  }
  return frag;
}

/**
 * A redraw that runs only when its key changed: a page refreshed every few seconds keeps
 * its elements (and the keyboard focus in them) while nothing changed.
 */
export function keyed() {
  let last;
  return (key, draw) => {
    if (key === last) return;
    last = key;
    draw();
  };
}

/**
 * Redraws `container` with `draw()`, and gives the keyboard focus back to the new element
 * with the same `data-key` when the old one had it.
 */
export function keepFocus(container, draw) {
  const a = document.activeElement;
  const key = a && container.contains(a) ? a.dataset.key : undefined;
  draw();
  if (key) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

export function toast(msg, kind = "info") {
  const el = document.getElementById("toast");
  el.className = `show ${kind}`;
  el.textContent = msg;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ""; }, 5000);
}

/** Asks in the modal dialog; resolves true on Confirm. */
export function confirmDialog(title, text, okLabel = "Confirm") {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dlg.returnValue = "";
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
  });
}
