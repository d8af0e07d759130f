// The console's entry: hash routes (#/jobs, #/jobs/<name>, #/workflows,
// #/workflows/<name>, #/create-workflow, #/tables, #/clusters, #/audit, #/workbench),
// sign-in and sign-out. Each page's render(main, arg) returns a function that stops its refresh.

import { api, token, ApiError } from "./api.js";
import { h, toast } from "./ui.js";
import * as jobs from "./jobs.js";
import * as job from "./job.js";
import * as workbench from "./workbench.js";
import * as workflows from "./workflows.js";
import * as workflow from "./workflow.js";
import * as tables from "./tables.js";
import * as clusters from "./clusters.js";
import * as audit from "./audit.js";

const main = document.getElementById("main");
let stop = () => {};

function signIn(reason) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false", "aria-describedby": "token-help" });
  const err = h("p.error", { role: "alert", id: "signin-error" });
  const form = h("form.card.signin", { "aria-labelledby": "signin-title", onsubmit: async (e) => {
    e.preventDefault();
    token.set(input.value.trim());
    try {
      await api("GET", "/api/v1/jobs", undefined, { quiet401: true });
      if (!location.hash || location.hash === "#/signin") location.hash = "#/jobs";
      route();
    } catch (x) {
      token.clear();
      err.textContent = x instanceof ApiError && x.status === 401 ? "That token is not valid (unknown, revoked or expired)." : `Cannot sign in: ${x.message}`;
      input.focus();
    }
  } },
  h("h1", { id: "signin-title" }, "Sign in to Sluice"),
  h("label", { for: "token" }, "API token"),
  input,
  h("p.muted", { id: "token-help" }, "A master token: ", h("code", {}, "<data dir>/admin.token"), " written by ", h("code", {}, "sluice serve"), ", or one made with ", h("code", {}, "sluice token create"), ". It is kept in this tab only."),
  err,
  h("button.primary", { type: "submit" }, "Sign in"));
  if (reason) err.textContent = reason;
  return form;
}

function route() {
  stop();
  stop = () => {};
  main.replaceChildren();
  const signedIn = !!token.get();
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  if (!signedIn) {
    document.title = "Sign in · Sluice";
    main.append(signIn(route.reason));
    route.reason = "";
    document.getElementById("token").focus();
    return;
  }
  const hash = location.hash.replace(/^#\/?/, "");
  const [page, ...rest] = hash.split("/");
  const section = page === "create-workflow" ? "workflows" : page || "jobs";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  let r;
  if (page === "jobs" && rest.length) r = job.render(main, decodeURIComponent(rest.join("/")));
  else if (page === "workbench") r = workbench.render(main);
  else if (page === "workflows" && rest.length) r = workflow.render(main, decodeURIComponent(rest.join("/")));
  else if (page === "workflows") r = workflows.render(main);
  else if (page === "create-workflow") r = workflows.renderCreate(main);
  else if (page === "tables") r = tables.render(main);
  else if (page === "clusters") r = clusters.render(main);
  else if (page === "audit") r = audit.render(main);
  else r = jobs.render(main);
  stop = r || (() => {});
}

window.addEventListener("hashchange", route);
window.addEventListener("sluice:unauthorized", () => {
  route.reason = "Your session ended (the token was refused). Sign in again.";
  route();
});
document.getElementById("signout").addEventListener("click", () => {
  token.clear();
  toast("Signed out");
  location.hash = "#/signin";
  route();
});
route();
