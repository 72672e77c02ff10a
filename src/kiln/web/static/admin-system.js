// The connectors with their state and reason, and the audit log with its integrity check.

import { act, brief, button, field, h, heading, input, messageLine, pill, select, table, when } from "./admin-dom.js";

const CONNECTORS = "/api/v1/connectors";
const AUDIT = "/api/v1/audit";
const CONNECTORS_EVERY_MS = 10_000;
const AUDIT_PAGE = 200;

const STATE_KIND = { connected: "good", degraded: "warn", connecting: "warn", error: "bad", stopped: "idle" };
const CATEGORIES = ["authentication", "account", "authorization", "configuration", "device_write", "alarm", "production", "audit", "system"];
const SINCE = [
  { value: "-1h", label: "last hour" },
  { value: "-1d", label: "last 24 hours" },
  { value: "-7d", label: "last 7 days" },
  { value: "", label: "from the start" },
];

/** A connector's detail as list items; a record of records (its nodes, their devices) nests. */
function detailItems(detail) {
  return Object.entries(detail).map(([key, value]) => {
    const nested =
      value && typeof value === "object" && !Array.isArray(value) && Object.values(value).some((v) => v && typeof v === "object");
    const label = h("span", { className: "adm-muted" }, `${key}: `);
    return nested
      ? h("li", {}, label, h("ul", { className: "adm-detail adm-nested" }, detailItems(value)))
      : h("li", {}, label, brief(value));
  });
}

/** Connectors as the server reports them, refreshed every 10 s while the view is open. */
export function connectorsView(body, { call }) {
  const message = messageLine();
  const list = h("div", { className: "adm-list" });
  const checked = h("p", { className: "adm-note" });
  body.append(
    heading("Connectors", "Each connector of the plant, its state, and while it is not connected why and since when."),
    h("div", { className: "adm-inline" }, button("Refresh", () => refresh()), checked),
    message,
    list,
  );

  async function load() {
    const { connectors } = await call("GET", CONNECTORS);
    list.replaceChildren(
      table(
        ["Connector", "Type", "State", "Reason", "Since", "Attempts", "Details"],
        connectors.map((c) => ({
          dataset: { connector: c.name, state: c.state },
          cells: [
            h("strong", {}, c.name),
            c.type,
            pill(c.state, STATE_KIND[c.state] ?? "idle"),
            c.reason ? h("span", { className: "adm-reason" }, c.reason) : "—",
            when(c.since),
            c.attempts ?? "—",
            h("ul", { className: "adm-detail" }, detailItems(c.detail)),
          ],
        })),
        { empty: "This plant has no connectors configured." },
      ),
    );
    checked.textContent = `Checked ${when(new Date().toISOString())}`;
  }

  function refresh() {
    load().then(
      () => message.show(""),
      (err) => message.show(err.message, "error"),
    );
  }

  refresh();
  const timer = setInterval(refresh, CONNECTORS_EVERY_MS);
  return () => clearInterval(timer);
}

/** The audit log, filtered as the API allows and paged forward, with Verify. */
export function auditView(body, { call }) {
  const message = messageLine();
  const verdict = h("p", { className: "adm-verdict", hidden: true, attrs: { role: "status" } });
  const list = h("div", { className: "adm-list" });
  const more = button("Load more", () => page(nextAfter));
  more.hidden = true;
  const filters = h(
    "form",
    { className: "adm-filters", method: "get", dataset: { form: "audit-filter" } },
    field("Since", select("start", SINCE)),
    field("Actor", input("actor", { placeholder: "e.g. user:admin" })),
    field("Category", select("category", [{ value: "", label: "any" }, ...CATEGORIES])),
    field("Action", input("action", { placeholder: "e.g. user.create" })),
    field("Result", select("result", [{ value: "", label: "any" }, "success", "failure", "denied"])),
    h("button", { type: "submit", className: "adm-button adm-primary" }, "Show"),
  );
  const verify = button("Verify the chain", () =>
    act(message, () => call("GET", `${AUDIT}/verify`)).then(({ ok, result }) => {
      if (!ok) return;
      verdict.hidden = false;
      verdict.dataset.ok = String(result.ok);
      verdict.replaceChildren(
        result.ok
          ? `Intact: ${result.checked} records verified (${result.archived} archived), newest ${result.newest}.`
          : `Not intact: ${result.problems.length} problem(s) in ${result.checked} records.`,
        ...(result.ok ? [] : [h("ul", {}, result.problems.map((p) => h("li", {}, p)))]),
      );
    }),
  );
  body.append(
    heading("Audit log", "Every sign-in, change of access and denied request, chained so that a changed or deleted record shows. Oldest first."),
    filters,
    h("div", { className: "adm-inline" }, verify, verdict),
    message,
    list,
    more,
  );

  let rows = [];
  let nextAfter = null;
  let query = {};

  function render() {
    list.replaceChildren(
      table(
        ["#", "Time", "Actor", "Source", "Category", "Action", "Target", "Result", "Detail"],
        rows.map((r) => ({
          dataset: { seq: String(r.seq), action: r.action },
          cells: [
            String(r.seq),
            when(r.time),
            r.actor,
            r.source,
            r.category,
            h("strong", {}, r.action),
            r.target,
            pill(r.result, r.result === "success" ? "good" : r.result === "denied" ? "warn" : "bad"),
            h("span", { className: "adm-muted" }, Object.keys(r.detail).length ? brief(r.detail) : ""),
          ],
        })),
        { empty: "No audit record matches.", className: "adm-audit" },
      ),
    );
    more.hidden = nextAfter === null;
  }

  async function page(afterSeq) {
    const params = { ...query, limit: AUDIT_PAGE, after_seq: afterSeq };
    try {
      const result = await call("GET", AUDIT, { params });
      rows = afterSeq === null ? result.records : rows.concat(result.records);
      nextAfter = result.next_after_seq ?? null;
      message.show("");
      render();
    } catch (err) {
      message.show(err.message, "error");
    }
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    query = Object.fromEntries(Object.entries(Object.fromEntries(new FormData(filters))).filter(([, v]) => String(v).trim() !== ""));
    page(null);
  });
  query = { start: SINCE[0].value };
  page(null);
}
