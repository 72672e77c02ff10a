// The journal tab: every journaled transition, newest first, filtered by time, asset subtree,
// priority, event and alarm, a page at a time (before_seq), with the same filters as a CSV
// download. The server's CSV is the export, so what a spreadsheet gets is what the API holds.

import { h, select } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import { PRIORITIES, formatAlarmValue, stateLabel } from "./alarms-model.js";

const PAGE = 100;

const EVENTS = [
  "becomes_abnormal", "returns_to_normal", "acknowledge", "reset", "timed_shelve", "one_shot_shelve",
  "unshelve", "shelve_expiry", "suppression_on", "suppression_off", "out_of_service_on",
  "out_of_service_off", "realarm", "comment",
];

/** A datetime-local value as an ISO 8601 string in UTC, or "" for an empty input. */
function isoOf(local) {
  if (!local) return "";
  const ms = new Date(local).getTime();
  return Number.isFinite(ms) ? new Date(ms).toISOString() : "";
}

/** Build the journal view into `root`; `asset()` gives the asset selected in the tree. */
export function journalView(root, { api, asset }) {
  const inputs = {
    start: h("input", { type: "datetime-local", name: "start", step: 1 }),
    end: h("input", { type: "datetime-local", name: "end", step: 1 }),
    asset: h("input", { type: "search", name: "asset", value: asset() ?? "", placeholder: "asset subtree", autocomplete: "off" }),
    priority: select("priority", [{ value: "", label: "Any priority" }, ...PRIORITIES.map((p) => ({ value: p, label: p }))]),
    event: select("event", [{ value: "", label: "Any event" }, ...EVENTS.map((e) => ({ value: e, label: e.replaceAll("_", " ") }))]),
    alarm: h("input", { type: "search", name: "alarm", placeholder: "one alarm id", autocomplete: "off" }),
  };
  const csv = h("a", { className: "button alm-csv", href: "#", attrs: { download: "alarm-journal.csv" } }, "Export CSV");
  const status = h("p", { className: "alm-message", hidden: true, attrs: { role: "status" } });
  const rows = h("tbody", {});
  const newer = h("button", { type: "button", className: "button", disabled: true }, "Newest");
  const older = h("button", { type: "button", className: "button", disabled: true }, "Older ▸");
  const pageInfo = h("span", { className: "alm-page-info" });
  const form = h(
    "form",
    { className: "alm-filters", dataset: { form: "journal" } },
    label("From", inputs.start),
    label("To", inputs.end),
    label("Asset", inputs.asset),
    label("Priority", inputs.priority),
    label("Event", inputs.event),
    label("Alarm", inputs.alarm),
    h("button", { type: "submit", className: "button button-primary" }, "Show"),
    csv,
  );
  const table = h(
    "div",
    { className: "alm-table-wrap" },
    h(
      "table",
      { className: "alm-table alm-journal" },
      h(
        "thead",
        {},
        h("tr", {}, ["Time", "Alarm", "Priority", "Event", "From", "To", "Value", "User", "Comment"].map((t) => h("th", { scope: "col" }, t))),
      ),
      rows,
    ),
  );
  root.replaceChildren(form, status, table, h("div", { className: "alm-pager" }, newer, older, pageInfo));

  let before = null; // the page's before_seq (null: the newest)
  let next = null;
  let page = 1;
  let generation = 0;

  const params = () => ({
    start: isoOf(inputs.start.value),
    end: isoOf(inputs.end.value),
    asset: inputs.asset.value.trim(),
    priority: inputs.priority.value,
    event: inputs.event.value,
    alarm: inputs.alarm.value.trim(),
  });

  async function load() {
    const mine = ++generation;
    const filters = params();
    csv.href = api.journalCsvUrl(filters);
    status.hidden = false;
    status.dataset.kind = "info";
    status.textContent = "Loading the journal…";
    let body;
    try {
      body = await api.journal({ ...filters, limit: PAGE, before_seq: before });
    } catch (err) {
      if (mine !== generation) return;
      status.dataset.kind = "error";
      status.textContent = `Could not load the journal: ${err?.message ?? err}`;
      return;
    }
    if (mine !== generation) return;
    const entries = Array.isArray(body?.entries) ? body.entries : [];
    next = body?.next_before_seq ?? null;
    rows.replaceChildren(...entries.map(entryRow));
    status.hidden = entries.length > 0;
    status.textContent = entries.length > 0 ? "" : "No journal entries match.";
    older.disabled = next === null;
    newer.disabled = before === null;
    pageInfo.textContent = entries.length > 0 ? `Page ${page} · ${entries.length} entries` : "";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    before = null;
    page = 1;
    load();
  });
  older.addEventListener("click", () => {
    if (next === null) return;
    before = next;
    page += 1;
    load();
  });
  newer.addEventListener("click", () => {
    before = null;
    page = 1;
    load();
  });
  load();
  return { refresh: load, stop: () => (generation += 1) };
}

function label(text, input) {
  return h("label", { className: "alm-filter" }, h("span", {}, text), input);
}

function entryRow(e) {
  return h(
    "tr",
    { dataset: { seq: String(e.seq), event: e.event, alarm: e.alarm_id } },
    h("td", {}, formatDateTime(e.source_us / 1000)),
    h("td", { title: e.message ?? "" }, e.alarm_id),
    h("td", { dataset: { priority: e.priority } }, e.priority),
    h("td", {}, String(e.event).replaceAll("_", " ")),
    h("td", {}, stateLabel(e.old_state)),
    h("td", {}, stateLabel(e.new_state)),
    h("td", {}, formatAlarmValue(e.value)),
    h("td", {}, e.user || "—"),
    h("td", {}, e.comment || ""),
  );
}
