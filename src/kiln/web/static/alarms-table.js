// One table of alarms (the "Alarms" and "Shelved" tabs). Rows are keyed by alarm id and kept:
// a live change rewrites the text of its row's cells, so the table does not flash or jump, and
// a checkbox stays ticked while its alarm changes. Which buttons a row offers follows the
// user's permissions (alarms:ack, alarms:shelve); the server checks every request again.

import { h } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import { formatAlarmValue, formatRemaining, isUnacknowledged, stateLabel } from "./alarms-model.js";

const PRIORITY_TEXT = { critical: "Critical", high: "High", medium: "Medium", low: "Low" };

/** The seconds of shelving left now, from what the server said when the alarm arrived. */
export function remainingNow(alarm, receivedMs, nowMs) {
  const left = alarm.shelve_remaining_s;
  if (typeof left !== "number") return null;
  return Math.max(0, left - (nowMs - receivedMs) / 1000);
}

export class AlarmTable {
  #mode;
  #can;
  #onAction;
  #onSelection;
  #rows = new Map(); // id -> {tr, cells, buttons, check, alarm, receivedMs}
  #order = [];
  #selected = new Set();
  #body;
  #all;
  #empty;

  /**
   * `mode` is "active" or "shelved" (which adds the remaining time); `can` is {ack, shelve};
   * `onAction(action, alarm)` runs a row's button, `onSelection(ids)` follows the ticks.
   */
  constructor({ mode, can, onAction, onSelection = () => {} }) {
    this.#mode = mode;
    this.#can = can;
    this.#onAction = onAction;
    this.#onSelection = onSelection;
    const selectable = can.ack;
    this.#all = selectable
      ? h("input", {
          type: "checkbox",
          className: "alm-check",
          attrs: { "aria-label": "Select every alarm shown" },
          on: { change: () => this.#selectAll(this.#all.checked) },
        })
      : null;
    const heads = [
      selectable ? h("th", { scope: "col", className: "alm-col-check" }, this.#all) : null,
      h("th", { scope: "col", className: "alm-col-priority" }, "Priority"),
      h("th", { scope: "col", className: "alm-col-time" }, mode === "shelved" ? "Since" : "Changed"),
      h("th", { scope: "col", className: "alm-col-asset" }, "Asset"),
      h("th", { scope: "col", className: "alm-col-message" }, "Alarm"),
      h("th", { scope: "col", className: "alm-col-value" }, "Value / limit"),
      h("th", { scope: "col", className: "alm-col-state" }, "State"),
      mode === "shelved" ? h("th", { scope: "col", className: "alm-col-remaining" }, "Remaining") : null,
      can.ack || can.shelve ? h("th", { scope: "col", className: "alm-col-actions" }, "Actions") : null,
    ];
    this.#body = h("tbody", {});
    this.#empty = h("p", { className: "alm-empty", hidden: true }, "");
    this.element = h(
      "div",
      { className: "alm-table-wrap" },
      h("table", { className: "alm-table", dataset: { mode } }, h("thead", {}, h("tr", {}, heads)), this.#body),
      this.#empty,
    );
  }

  /** Ids ticked and still shown. */
  get selectedIds() {
    return [...this.#selected].filter((id) => this.#rows.has(id));
  }

  /**
   * Show `alarms` in this order. `received` maps id to when its data arrived (ms), for the
   * count-down. Existing rows are updated and moved, never rebuilt.
   */
  render(alarms, received, emptyText) {
    const ids = alarms.map((a) => a.id);
    const keep = new Set(ids);
    for (const [id, row] of this.#rows) {
      if (!keep.has(id)) {
        row.tr.remove();
        this.#rows.delete(id);
        this.#selected.delete(id);
      }
    }
    for (const alarm of alarms) {
      let row = this.#rows.get(alarm.id);
      if (!row) {
        row = this.#newRow(alarm.id);
        this.#rows.set(alarm.id, row);
      }
      row.receivedMs = received.get(alarm.id) ?? Date.now();
      if (row.alarm !== alarm) this.#fill(row, alarm);
    }
    // Move rows only when the order changed: appending a row that is in place still relays out.
    const same = ids.length === this.#order.length && ids.every((id, i) => id === this.#order[i]);
    if (!same) this.#body.append(...ids.map((id) => this.#rows.get(id).tr));
    this.#order = ids;
    this.#empty.textContent = emptyText;
    this.#empty.hidden = alarms.length > 0;
    this.tick(Date.now());
    this.#syncAll();
  }

  /** Count the shelving time down in place. */
  tick(nowMs) {
    if (this.#mode !== "shelved") return;
    for (const row of this.#rows.values()) {
      const left = remainingNow(row.alarm, row.receivedMs, nowMs);
      const text =
        row.alarm.shelving === "one_shot" ? "until it clears" : left === null ? "—" : formatRemaining(left);
      if (row.cells.remaining.textContent !== text) row.cells.remaining.textContent = text;
    }
  }

  clearSelection() {
    this.#selected.clear();
    for (const row of this.#rows.values()) if (row.check) row.check.checked = false;
    this.#syncAll();
  }

  #newRow(id) {
    const cells = {
      priority: h("td", { className: "alm-col-priority" }),
      time: h("td", { className: "alm-col-time" }),
      asset: h("td", { className: "alm-col-asset" }),
      message: h("td", { className: "alm-col-message" }),
      value: h("td", { className: "alm-col-value" }),
      state: h("td", { className: "alm-col-state" }),
      remaining: h("td", { className: "alm-col-remaining" }),
    };
    const check = this.#can.ack
      ? h("input", {
          type: "checkbox",
          className: "alm-check",
          on: {
            change: () => {
              if (check.checked) this.#selected.add(id);
              else this.#selected.delete(id);
              this.#syncAll();
            },
          },
        })
      : null;
    const buttons = {};
    const button = (action, text, needs) => {
      if (!this.#can[needs]) return null;
      const b = h(
        "button",
        {
          type: "button",
          className: "button alm-action",
          dataset: { action },
          on: { click: () => this.#onAction(action, this.#rows.get(id)?.alarm) },
        },
        text,
      );
      buttons[action] = b;
      return b;
    };
    const actions =
      this.#can.ack || this.#can.shelve
        ? h(
            "td",
            { className: "alm-col-actions" },
            h(
              "div",
              { className: "alm-actions" },
              button("ack", "Acknowledge", "ack"),
              button("reset", "Reset", "ack"),
              button("shelve", "Shelve…", "shelve"),
              button("unshelve", "Unshelve", "shelve"),
              button("out-of-service", "Out of service…", "shelve"),
              button("in-service", "Return to service", "shelve"),
              button("comment", "Comment…", "ack"),
            ),
          )
        : null;
    const tr = h(
      "tr",
      { className: "alm-row", dataset: { id } },
      check ? h("td", { className: "alm-col-check" }, check) : null,
      cells.priority,
      cells.time,
      cells.asset,
      cells.message,
      cells.value,
      cells.state,
      this.#mode === "shelved" ? cells.remaining : null,
      actions,
    );
    return { tr, cells, buttons, check, alarm: null, receivedMs: 0 };
  }

  #fill(row, alarm) {
    row.alarm = alarm;
    const { tr, cells, buttons, check } = row;
    tr.dataset.priority = alarm.priority;
    tr.dataset.state = alarm.state;
    tr.dataset.unacked = String(isUnacknowledged(alarm));
    set(cells.priority, PRIORITY_TEXT[alarm.priority] ?? alarm.priority);
    cells.priority.dataset.priority = alarm.priority;
    const since = this.#mode === "shelved" ? alarm.changed_us : alarm.changed_us ?? alarm.active_since_us;
    set(cells.time, since ? formatDateTime(since / 1000) : "—");
    set(cells.asset, alarm.asset);
    cells.asset.title = alarm.id;
    set(cells.message, alarm.message || `${alarm.name}${alarm.condition ? ` (${alarm.condition})` : ""}`);
    cells.message.title = [alarm.id, alarm.note ? `Note: ${alarm.note}` : ""].filter(Boolean).join("\n");
    const limit = alarm.limit === null || alarm.limit === undefined ? "" : ` / ${formatAlarmValue(alarm.limit)}`;
    set(cells.value, `${formatAlarmValue(alarm.value)}${limit}`);
    const extra = alarm.out_of_service && alarm.out_of_service_reason ? `: ${alarm.out_of_service_reason}` : "";
    set(cells.state, `${stateLabel(alarm.state)}${extra}`);
    cells.state.title = alarm.acked_by ? `Acknowledged by ${alarm.acked_by}` : "";
    if (check) check.setAttribute("aria-label", `Select ${alarm.id}`);
    const latched = String(alarm.process_state ?? alarm.state).startsWith("latched");
    show(buttons.ack, isUnacknowledged(alarm));
    show(buttons.reset, latched);
    show(buttons.shelve, !alarm.shelved);
    show(buttons.unshelve, alarm.shelved === true);
    show(buttons["out-of-service"], !alarm.out_of_service);
    show(buttons["in-service"], alarm.out_of_service === true);
    for (const b of Object.values(buttons)) b.setAttribute("aria-label", `${b.textContent.replace("…", "")} ${alarm.id}`);
  }

  #selectAll(on) {
    for (const [id, row] of this.#rows) {
      if (!row.check) continue;
      row.check.checked = on;
      if (on) this.#selected.add(id);
      else this.#selected.delete(id);
    }
    this.#syncAll();
  }

  #syncAll() {
    const ids = this.selectedIds;
    if (this.#all) {
      this.#all.checked = ids.length > 0 && ids.length === this.#rows.size;
      this.#all.indeterminate = ids.length > 0 && ids.length < this.#rows.size;
    }
    this.#onSelection(ids);
  }
}

function set(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function show(el, visible) {
  if (el) el.hidden = !visible;
}
