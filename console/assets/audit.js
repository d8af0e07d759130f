// The audit log (#/audit): every mutation and every denied request, newest first, with
// who, the route, its target and how it ended; filters by caller, target, outcome and
// time. The API is for admins: another role sees the refusal.

import { api } from "./api.js";
import { h, fmtTime } from "./ui.js";

export function render(main) {
  document.title = "Audit log · Sluice";
  const who = h("input", { id: "audit-who", autocomplete: "off", placeholder: "token name, or - for none", size: "18" });
  const target = h("input", { id: "audit-target", autocomplete: "off", placeholder: "e.g. nightly", size: "18" });
  const outcome = h("select", { id: "audit-outcome" }, ["", "ok", "denied", "failed"].map((o) => h("option", { value: o }, o || "any")));
  const since = h("input", { id: "audit-since", autocomplete: "off", placeholder: "2026-12-01T00:00:00Z", size: "22" });
  const limit = h("input", { id: "audit-limit", type: "number", min: "1", max: "10000", value: "200" });
  const body = h("tbody");
  const status = h("p.muted", { "aria-live": "polite", id: "audit-status" }, "Loading…");
  const field = (id, label, input) => h("div.field", {}, h("label", { for: id }, label), input);

  async function load() {
    const q = new URLSearchParams();
    if (who.value.trim()) q.set("who", who.value.trim());
    if (target.value.trim()) q.set("target", target.value.trim());
    if (outcome.value) q.set("outcome", outcome.value);
    if (since.value.trim()) q.set("since", since.value.trim());
    q.set("limit", limit.value || "200");
    status.textContent = "Loading…";
    try {
      const entries = await api("GET", `/api/v1/audit?${q}`);
      body.replaceChildren(...entries.map((e) => h("tr", { "data-seq": String(e.seq), "data-outcome": e.outcome },
        h("td", {}, h("time", { datetime: e.at }, fmtTime(e.at))),
        h("td", {}, e.who ?? h("span.muted", {}, "(no token)")), h("td", {}, e.role || "–"),
        h("td", {}, h("code", {}, e.method)), h("td", {}, h("code", {}, e.route)),
        h("td", {}, e.target ? h("code", {}, e.target) : "–"),
        h("td.num", {}, String(e.status)), h("td", {}, h(`span.badge.out-${e.outcome}`, {}, e.outcome)),
        h("td", {}, e.suppressed ? `${e.suppressed} anonymous requests not logged one by one` : h("code.muted", {}, e.request_id)))));
      if (!entries.length) body.append(h("tr", {}, h("td.muted", { colspan: 9 }, "No entry matches.")));
      status.textContent = `${entries.length} entries, newest first · ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      body.replaceChildren();
      status.textContent = e.status === 403 ? "Only an admin token may read the audit log." : `Cannot read the audit log: ${e.message}`;
    }
  }

  main.append(
    h("div.page-head", {}, h("h1", {}, "Audit log")),
    h("form.row.filters", { "aria-label": "Audit filters", onsubmit: (e) => { e.preventDefault(); load(); } },
      field("audit-who", "Who", who), field("audit-target", "Target", target), field("audit-outcome", "Outcome", outcome),
      field("audit-since", "Since", since), field("audit-limit", "At most", limit),
      h("button.primary", { type: "submit" }, "Show")),
    status,
    h("table.audit", { "aria-label": "Audit log" },
      h("thead", {}, h("tr", {}, ["Time", "Who", "Role", "Method", "Route", "Target", "Status", "Outcome", "Request"].map((c) => h("th", { scope: "col" }, c)))),
      body));
  load();
}
