// The catalog (#/tables): every stored table with its connector, columns and types,
// watermark, options (secrets as ******) and DDL; a filter box.

import { api } from "./api.js";
import { h, fmtTime, highlight, toast } from "./ui.js";

export function render(main) {
  document.title = "Tables · Sluice";
  const filter = h("input", { id: "table-filter", type: "search", placeholder: "table, column or connector", "aria-label": "Filter tables" });
  const list = h("div.tables", { id: "tables" });
  const status = h("p.muted", { "aria-live": "polite", id: "tables-status" }, "Loading…");
  main.append(
    h("div.page-head", {}, h("h1", {}, "Tables")),
    h("p.muted", {}, "The catalog: tables created with ", h("code", {}, "POST /api/v1/tables"), " or ", h("code", {}, "sluice table create"), ", usable by any job without declaring them again."),
    h("div.row", {}, h("label", { for: "table-filter" }, "Filter"), filter, status),
    list);
  let tables = [];

  function draw() {
    const q = filter.value.trim().toLowerCase();
    const shown = tables.filter((t) => !q || t.name.toLowerCase().includes(q) || t.connector.toLowerCase().includes(q) || t.columns.some((c) => c.name.toLowerCase().includes(q)));
    list.replaceChildren(...shown.map((t) => {
      const id = `table-${t.name}`;
      return h("section.card.table-card", { "aria-labelledby": id, "data-table": t.name },
        h("div.page-head", {}, h("h2", { id }, t.name), h("span.badge", {}, t.connector), h("span.muted", {}, `created ${fmtTime(t.created_at)}`)),
        h("table.columns", { "aria-label": `Columns of ${t.name}` },
          h("thead", {}, h("tr", {}, ["Column", "Type", "Nullable", "Event time"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, t.columns.map((c) => h("tr", { "data-column": c.name },
            h("th", { scope: "row" }, h("code", {}, c.name)), h("td", {}, h("code", {}, c.type)), h("td", {}, c.nullable ? "yes" : "no"),
            h("td", {}, t.watermark && t.watermark.column === c.name ? `watermark − ${t.watermark.delay_ms} ms` : ""))))),
        h("details", {}, h("summary", {}, "Options and DDL"),
          h("dl.options", {}, Object.entries(t.options).flatMap(([k, v]) => [h("dt", {}, h("code", {}, k)), h("dd", {}, h("code", {}, v))])),
          h("pre.sql", { tabindex: "0", "aria-label": `DDL of ${t.name}` }, highlight(t.ddl))));
    }));
    if (!shown.length) list.append(h("p.muted", {}, tables.length ? "No table matches the filter." : "No tables in the catalog yet."));
    status.textContent = `${shown.length} of ${tables.length} tables`;
  }

  (async () => {
    try {
      tables = await api("GET", "/api/v1/tables");
      draw();
    } catch (e) {
      status.textContent = `Cannot list tables: ${e.message}`;
      toast(`Cannot list tables: ${e.message}`, "error");
    }
  })();
  filter.addEventListener("input", draw);
}
