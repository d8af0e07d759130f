// SQL workbench: an editor with line numbers; completion of table and column names (the
// catalog's, GET /api/v1/tables, and the script's own CREATE TABLEs); Validate (POST
// /api/v1/jobs/validate: the EXPLAIN stages, or the errors marked at line:column, also as
// you type); Preview (POST /api/v1/queries: the script's final SELECT — or the SELECT of a
// final INSERT INTO — as a grid); Submit as job (POST /api/v1/jobs).

import { api } from "./api.js";
import { h, toast } from "./ui.js";
import { completions, scriptNames } from "./complete.js";

const KEY = "sluice.workbench";
const EXAMPLE = `CREATE TABLE bids (auction BIGINT, price BIGINT)
  WITH ('connector' = 'datagen', 'rows-per-second' = '200');
CREATE TABLE expensive (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO expensive
SELECT auction, price FROM bids WHERE price > 10;
`;

/** Splits a script into statements at `;` outside quotes and comments: [{text, start}]. */
export function statements(sql) {
  const out = [];
  let start = 0, q = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (q) { if (c === q) q = null; continue; }
    if (c === "'" || c === '"') q = c;
    else if (c === "-" && sql[i + 1] === "-") { const e = sql.indexOf("\n", i); i = e < 0 ? sql.length : e; }
    else if (c === ";") { out.push({ text: sql.slice(start, i), start }); start = i + 1; }
  }
  if (sql.slice(start).trim()) out.push({ text: sql.slice(start), start });
  return out.filter((st) => st.text.replace(/--[^\n]*/g, "").trim());
}

/** The script a preview runs: a final `INSERT INTO t [(cols)] SELECT …` becomes its SELECT. */
export function previewScript(sql) {
  const st = statements(sql);
  if (!st.length) return sql;
  const lastSt = st[st.length - 1];
  const m = /^(\s*(?:--[^\n]*\n\s*)*)INSERT\s+(?:INTO|OVERWRITE)\s+[\w."]+\s*(?:\([^)]*\)\s*)?/i.exec(lastSt.text);
  if (!m) return sql;
  return sql.slice(0, lastSt.start) + m[1] + lastSt.text.slice(m[0].length) + ";";
}

export function render(main) {
  document.title = "SQL workbench · Sluice";
  const editor = h("textarea.editor", { id: "sql-editor", spellcheck: "false", "aria-label": "SQL editor", "aria-describedby": "sql-errors", wrap: "off", autocapitalize: "off" });
  editor.value = sessionStorage.getItem(KEY) ?? EXAMPLE;
  const gutter = h("pre.gutter", { "aria-hidden": "true" });
  const marks = h("pre.marks", { "aria-hidden": "true" });
  const errors = h("div.errors", { id: "sql-errors", role: "status", "aria-live": "polite" });
  const stages = h("div.stages");
  const grid = h("div.grid-wrap", { id: "preview", tabindex: "0", role: "region", "aria-label": "Preview results" });
  const name = h("input", { id: "job-name", required: true, pattern: "[A-Za-z][A-Za-z0-9_\\-]{0,62}", placeholder: "my-job", autocomplete: "off" });
  const par = h("input", { id: "job-parallelism", type: "number", min: "1", max: "256", value: "1", required: true });
  let errLines = new Map(), seq = 0, typing = 0;
  // Completion: the catalog's names (loaded once) and the script's; the open list.
  const suggest = h("ul.completions", { id: "sql-completions", role: "listbox", "aria-label": "Completions", hidden: true });
  editor.setAttribute("role", "combobox");
  editor.setAttribute("aria-autocomplete", "list");
  editor.setAttribute("aria-controls", "sql-completions");
  editor.setAttribute("aria-expanded", "false");
  let catalog = [], options = [], active = 0;
  api("GET", "/api/v1/tables").then((ts) => {
    catalog = ts.flatMap((t) => [{ name: t.name, kind: "table", detail: `table · ${t.connector}` },
      ...t.columns.map((c) => ({ name: c.name, kind: "column", detail: `${c.type} · ${t.name}` }))]);
  }).catch(() => {});
  function prefixAtCaret() {
    const before = editor.value.slice(0, editor.selectionStart);
    const m = /[A-Za-z_][\w]*$/.exec(before);
    return m && editor.selectionStart === editor.selectionEnd ? m[0] : "";
  }
  function closeSuggest() {
    options = [];
    suggest.hidden = true;
    suggest.replaceChildren();
    editor.setAttribute("aria-expanded", "false");
    editor.removeAttribute("aria-activedescendant");
  }
  function drawSuggest() {
    suggest.replaceChildren(...options.map((o, i) => h("li", { id: `completion-${i}`, role: "option", "aria-selected": String(i === active), class: i === active ? "active" : "", onmousedown: (e) => { e.preventDefault(); accept(i); } },
      h("span.c-name", {}, o.name), h("span.c-detail", {}, ` ${o.detail}`))));
    suggest.hidden = false;
    editor.setAttribute("aria-expanded", "true");
    editor.setAttribute("aria-activedescendant", `completion-${active}`);
  }
  function openSuggest() {
    const p = prefixAtCaret();
    options = p.length >= 2 ? completions(p, [...scriptNames(editor.value), ...catalog]) : [];
    active = 0;
    if (options.length) drawSuggest(); else closeSuggest();
  }
  function accept(i) {
    const o = options[i];
    if (!o) return;
    const p = prefixAtCaret();
    const at = editor.selectionStart;
    editor.setRangeText(o.name, at - p.length, at, "end");
    closeSuggest();
    editor.focus();
    editor.dispatchEvent(new Event("input"));
    closeSuggest();
  }

  function paint() {
    const lines = editor.value.split("\n");
    marks.replaceChildren(...lines.map((l, i) => {
      const e = errLines.get(i + 1);
      return e ? h("span.err-line", { title: e }, (l || " ") + "\n") : document.createTextNode(l + "\n");
    }));
    gutter.replaceChildren(...lines.map((_, i) => errLines.has(i + 1) ? h("span.err-num", {}, `${i + 1}\n`) : document.createTextNode(`${i + 1}\n`)));
    sync();
  }
  function sync() {
    gutter.scrollTop = editor.scrollTop;
    marks.scrollTop = editor.scrollTop;
    marks.scrollLeft = editor.scrollLeft;
  }
  function goTo(line, column) {
    const lines = editor.value.split("\n");
    let pos = 0;
    for (let i = 0; i < Math.min(line - 1, lines.length); i++) pos += lines[i].length + 1;
    pos += Math.max(0, (column || 1) - 1);
    editor.focus();
    editor.setSelectionRange(pos, pos + 1);
  }
  function showErrors(list) {
    errLines = new Map();
    for (const e of list) if (e.line) errLines.set(e.line, e.message);
    errors.replaceChildren(...(list.length
      ? [h("ul.error-list", {}, list.map((e) => h("li.sql-error", { "data-line": e.line ?? "", "data-column": e.column ?? "" },
          e.line ? h("button.link", { type: "button", onclick: () => goTo(e.line, e.column) }, `line ${e.line}, column ${e.column ?? 1}`) : null,
          e.line ? ": " : "", h("span", {}, e.message), e.kind ? h("span.muted", {}, ` (${e.kind})`) : null)))]
      : []));
    paint();
  }

  async function validate(quiet = false) {
    const my = ++seq;
    if (!editor.value.trim()) { showErrors([]); stages.replaceChildren(); return false; }
    try {
      const v = await api("POST", "/api/v1/jobs/validate", { sql: editor.value });
      if (my !== seq) return false;
      showErrors(v.errors);
      if (v.valid) {
        errors.replaceChildren(h("p.ok", { id: "sql-valid" }, `✓ Valid: ${v.queries.length} ${v.queries.length === 1 ? "query" : "queries"}, ${v.bounded ? "bounded (finishes by itself)" : "unbounded (runs until stopped)"}.`));
        stages.replaceChildren(...v.queries.map((q, i) => h("details", {},
          h("summary", {}, `EXPLAIN: query ${i + 1}, ${q.target}`),
          ...["logical", "optimized", "physical"].map((k) => [h("h4", {}, k), h("pre.plan-text", {}, q[k])]))));
      } else stages.replaceChildren();
      return v.valid;
    } catch (e) {
      if (!quiet) toast(`Validate failed: ${e.message}`, "error");
      return false;
    }
  }

  async function preview() {
    grid.replaceChildren(h("p.muted", {}, "Running the preview…"));
    try {
      const r = await api("POST", "/api/v1/queries", { sql: previewScript(editor.value), max_rows: 100, timeout_ms: 3000 });
      const table = h("table.preview", { "aria-label": "Preview rows" },
        h("thead", {}, h("tr", {}, r.schema.map((c) => h("th", { scope: "col" }, c.name, h("span.type", {}, ` ${c.type}`))))),
        h("tbody", {}, r.rows.map((row) => h("tr", {}, row.map((v) => h("td", {}, v === null ? h("span.null", {}, "NULL") : typeof v === "object" ? JSON.stringify(v) : String(v)))))));
      grid.replaceChildren(h("p.muted", { id: "preview-summary" }, `${r.rows.length} rows in ${r.elapsed_ms} ms${r.truncated ? " (there may be more)" : ""}.`), table);
    } catch (e) {
      const d = e.details || {};
      grid.replaceChildren(h("p.error", { role: "alert" }, `Preview failed: ${e.message}`));
      if (d.line) showErrors([{ message: e.message, line: d.line, column: d.column, kind: d.kind }]);
    }
  }

  async function submit(ev) {
    ev.preventDefault();
    try {
      const j = await api("POST", "/api/v1/jobs", { name: name.value.trim(), sql: editor.value, resources: { parallelism: Number(par.value) } });
      toast(`Job ${j.name} submitted`);
      location.hash = "#/jobs";
    } catch (e) {
      const d = e.details || {};
      if (d.line) showErrors([{ message: e.message, line: d.line, column: d.column, kind: d.kind }]);
      toast(`Submit failed: ${e.message}`, "error");
    }
  }

  editor.addEventListener("input", (e) => {
    if (e.isTrusted) openSuggest();
    sessionStorage.setItem(KEY, editor.value);
    errLines = new Map();
    paint();
    clearTimeout(typing);
    typing = setTimeout(() => validate(true), 800);
  });
  editor.addEventListener("scroll", sync);
  editor.addEventListener("keydown", (e) => {
    if (options.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
        drawSuggest();
        return;
      }
      if (e.key === "Tab" || (e.key === "Enter" && !e.ctrlKey && !e.metaKey)) { e.preventDefault(); accept(active); return; }
      if (e.key === "Escape") { e.preventDefault(); closeSuggest(); return; }
    }
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); preview(); }
  });
  editor.addEventListener("blur", closeSuggest);
  editor.addEventListener("click", closeSuggest);

  main.append(
    h("div.page-head", {}, h("h1", {}, "SQL workbench")),
    h("p.muted", {}, "CREATE TABLE statements, then INSERT INTO … SELECT (a job) or a SELECT (a preview). Ctrl+Enter previews. Table and column names complete as you type (Tab or Enter accepts, Escape closes). Tab moves focus; indent with spaces."),
    h("div.editor-wrap", {}, gutter, h("div.editor-area", {}, marks, editor)),
    suggest,
    h("div.row", { role: "toolbar", "aria-label": "Workbench actions" },
      h("button", { type: "button", id: "validate", onclick: () => validate() }, "Validate"),
      h("button", { type: "button", id: "run-preview", onclick: preview }, "Preview")),
    errors,
    stages,
    h("section", { "aria-labelledby": "h-preview" }, h("h2", { id: "h-preview" }, "Preview"), grid),
    h("section", { "aria-labelledby": "h-submit" }, h("h2", { id: "h-submit" }, "Submit as job"),
      h("form.row.submit", { onsubmit: submit, "aria-labelledby": "h-submit" },
        h("label", { for: "job-name" }, "Name"), name,
        h("label", { for: "job-parallelism" }, "Parallelism"), par,
        h("button.primary", { type: "submit", id: "submit-job" }, "Submit as job"))));
  paint();
  return () => { clearTimeout(typing); seq++; };
}
