// The alarm console: the header indicator and a view that replaces the plant while open, with
// tabs for the live list, the shelved alarms, the journal and the KPIs.
//
// The console keeps every alarm that is not normal (GET /api/v1/alarms) in a map by id, and
// applies each {"alarms": [...]} frame of the live feed to it; the lists and the indicator are
// drawn from that map. The live feed only carries the subtree the tree has selected, so the
// map is fetched again every POLL_MS too: the indicator covers the whole plant.

import { h, select } from "./admin-dom.js";
import { AlarmApi } from "./alarms-api.js";
import { acknowledge, rowAction } from "./alarms-actions.js";
import { journalView } from "./alarms-journal.js";
import { kpisView } from "./alarms-kpis.js";
import { PRIORITIES, STATE_FILTERS, indicatorSummary, matches, sortAlarms } from "./alarms-model.js";
import { AlarmTable } from "./alarms-table.js";

const POLL_MS = 15_000;
const LIST_LIMIT = 5_000;

const TABS = [
  { id: "list", label: "Alarms" },
  { id: "shelved", label: "Shelved" },
  { id: "journal", label: "Journal" },
  { id: "kpis", label: "KPIs" },
];

/** The header button: unacknowledged count, coloured by the highest priority among them. */
export class AlarmIndicator {
  #button;
  #count;

  constructor(button, count) {
    this.#button = button;
    this.#count = count;
  }

  show(alarms) {
    const { count, priority, blink } = indicatorSummary(alarms);
    this.#count.textContent = String(count);
    this.#button.dataset.priority = priority ?? "none";
    this.#button.dataset.blink = String(blink);
    this.#button.title =
      count === 0 ? "No alarm waits for acknowledgement: open the alarm console" : `${count} unacknowledged alarm${count === 1 ? "" : "s"}${priority ? `, the highest ${priority}` : ""}: open the alarm console`;
    this.#button.setAttribute("aria-label", `Alarms: ${count} unacknowledged`);
  }
}

export class AlarmConsole {
  #root;
  #plant;
  #toggle;
  #indicator;
  #api;
  #asset;
  #user = null;
  #can = { ack: false, shelve: false };
  #alarms = new Map(); // id -> alarm json
  #received = new Map(); // id -> Date.now() when its data arrived
  #fetchAll = false; // the state filter "all" needs normal alarms too
  #filters = { priority: "", state: "", asset: "", text: "" };
  #underSelected = false;
  #sort = { key: "time", ascending: true };
  #tab = "list";
  #tables = null;
  #panes = null;
  #stopTab = null;
  #message = null;
  #pollTimer = 0;
  #tickTimer = 0;
  #loading = null;
  #controls = null;
  #frame = 0;

  /**
   * `root` is the console's container, `plant` the view it replaces, `toggle` the header
   * indicator (a button holding `count`); `fetchImpl` the session's fetch; `asset()` gives the
   * asset selected in the tree (the "under the selected asset" filter).
   */
  constructor({ root, plant, toggle, count }, { fetchImpl, asset }) {
    this.#root = root;
    this.#plant = plant;
    this.#toggle = toggle;
    this.#indicator = new AlarmIndicator(toggle, count);
    this.#api = new AlarmApi(fetchImpl);
    this.#asset = asset;
    toggle.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
  }

  get isOpen() {
    return !this.#root.hidden;
  }

  /** Offer the console to a user who may read values; the buttons follow alarms:ack/shelve. */
  signedIn(user) {
    this.#user = user;
    const held = new Set(user?.permissions ?? []);
    this.#can = { ack: held.has("alarms:ack"), shelve: held.has("alarms:shelve") };
    this.#toggle.hidden = !held.has("values:read");
    if (this.#toggle.hidden) return;
    this.#build();
    this.refresh();
    clearInterval(this.#tickTimer);
    this.#tickTimer = setInterval(() => this.#tables?.shelved.tick(Date.now()), 1000);
  }

  signedOut() {
    this.#user = null;
    this.close({ showPlant: false });
    clearTimeout(this.#pollTimer);
    clearInterval(this.#tickTimer);
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#alarms.clear();
    this.#received.clear();
    this.#tables = null;
    this.#root.replaceChildren();
    this.#toggle.hidden = true;
  }

  open(tab = null) {
    if (this.#user === null || this.#tables === null) return;
    this.#plant.hidden = true;
    this.#root.hidden = false;
    this.#toggle.setAttribute("aria-pressed", "true");
    this.#show(tab ?? this.#tab);
  }

  /** Back to the plant view (`showPlant: false` when another view takes the place). */
  close({ showPlant = true } = {}) {
    this.#stopTab?.();
    this.#stopTab = null;
    if (this.#root.hidden) return;
    this.#root.hidden = true;
    this.#toggle.setAttribute("aria-pressed", "false");
    if (showPlant && this.#user !== null) this.#plant.hidden = false;
  }

  /** The live feed's alarm frames: each alarm replaces its previous version in place. */
  applyAlarms(alarms) {
    if (this.#user === null) return;
    const now = Date.now();
    for (const alarm of alarms) {
      if (!alarm || typeof alarm.id !== "string") continue;
      this.#alarms.set(alarm.id, alarm);
      this.#received.set(alarm.id, now);
    }
    // A burst of changes (a flood: hundreds a second) is drawn once per frame, not per message.
    this.#frame ||= requestAnimationFrame(() => {
      this.#frame = 0;
      this.#render();
    });
  }

  /** Fetch every alarm not normal (or every alarm, for the "all" filter) now and every POLL_MS. */
  async refresh() {
    clearTimeout(this.#pollTimer);
    if (this.#user === null) return;
    const loading = (this.#loading = {});
    try {
      const body = await this.#api.list({ state: this.#fetchAll ? "all" : "", limit: LIST_LIMIT });
      if (loading !== this.#loading || this.#user === null) return;
      const now = Date.now();
      this.#alarms = new Map((body?.alarms ?? []).map((a) => [a.id, a]));
      this.#received = new Map([...this.#alarms.keys()].map((id) => [id, now]));
      this.#render();
    } catch (err) {
      if (loading === this.#loading) this.#say(`Could not load the alarms: ${err?.message ?? err}`, "error");
    } finally {
      if (loading === this.#loading && this.#user !== null) {
        this.#pollTimer = setTimeout(() => this.refresh(), POLL_MS);
      }
    }
  }

  // --- building ------------------------------------------------------------------------------

  #build() {
    const onAction = (action, alarm) => this.#act(action, alarm);
    const ackSelected = h(
      "button",
      { type: "button", className: "button button-primary alm-ack-selected", disabled: true, hidden: !this.#can.ack },
      "Acknowledge selected",
    );
    ackSelected.addEventListener("click", () => this.#ackMany(this.#tables.list.selectedIds));
    this.#tables = {
      list: new AlarmTable({
        mode: "active",
        can: this.#can,
        onAction,
        onSelection: (ids) => {
          ackSelected.disabled = ids.length === 0;
          ackSelected.textContent = ids.length > 0 ? `Acknowledge selected (${ids.length})` : "Acknowledge selected";
        },
      }),
      shelved: new AlarmTable({ mode: "shelved", can: this.#can, onAction }),
    };
    this.#message = h("p", { className: "alm-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
    const controls = this.#filterControls();
    this.#controls = controls;
    const sorts = h(
      "div",
      { className: "segmented alm-sort", attrs: { role: "group", "aria-label": "Sort by" } },
      ["time", "priority", "asset"].map((key) =>
        h(
          "button",
          { type: "button", dataset: { sort: key }, on: { click: () => this.#setSort(key) } },
          key === "time" ? "Time" : key === "priority" ? "Priority" : "Asset",
        ),
      ),
    );
    this.#panes = {
      list: h(
        "section",
        { className: "alm-pane", dataset: { pane: "list" } },
        h("div", { className: "alm-toolbar" }, controls.form, sorts, ackSelected),
        this.#tables.list.element,
      ),
      shelved: h(
        "section",
        { className: "alm-pane", dataset: { pane: "shelved" }, hidden: true },
        h("p", { className: "alm-note" }, "Shelved alarms are still evaluated and journaled but not announced; a timed shelve ends by itself."),
        this.#tables.shelved.element,
      ),
      journal: h("section", { className: "alm-pane", dataset: { pane: "journal" }, hidden: true }),
      kpis: h("section", { className: "alm-pane", dataset: { pane: "kpis" }, hidden: true }),
    };
    const tabs = h(
      "nav",
      { className: "alm-tabs", attrs: { "aria-label": "Alarm console" } },
      TABS.map((t) =>
        h(
          "button",
          { type: "button", className: "alm-tab", dataset: { tab: t.id }, on: { click: () => this.#show(t.id) } },
          h("span", {}, t.label),
          t.id === "list" || t.id === "shelved" ? h("span", { className: "alm-tab-count", dataset: { count: t.id } }, "") : null,
        ),
      ),
    );
    this.#root.replaceChildren(h("div", { className: "alm-shell" }, tabs, this.#message, ...Object.values(this.#panes)));
    this.#markSort();
  }

  #filterControls() {
    const priority = select("priority", [{ value: "", label: "Any priority" }, ...PRIORITIES.map((p) => ({ value: p, label: p.charAt(0).toUpperCase() + p.slice(1) }))], { attrs: { "aria-label": "Priority" } });
    const state = select("state", STATE_FILTERS, { attrs: { "aria-label": "State" } });
    const under = h("input", { type: "checkbox", name: "under" });
    const underText = h("span", {}, "Under the selected asset");
    const text = h("input", { type: "search", name: "text", placeholder: "Filter alarms", autocomplete: "off", attrs: { "aria-label": "Filter alarms by text" } });
    const form = h(
      "form",
      { className: "alm-filters", dataset: { form: "alarm-filters" } },
      priority,
      state,
      h("label", { className: "alm-under" }, under, underText),
      text,
    );
    form.addEventListener("submit", (event) => event.preventDefault());
    const changed = () => {
      const wantAll = state.value === "all";
      this.#filters = { priority: priority.value, state: state.value, text: text.value, asset: "" };
      this.#underSelected = under.checked;
      this.#render();
      if (wantAll !== this.#fetchAll) {
        this.#fetchAll = wantAll;
        this.refresh();
      }
    };
    for (const el of [priority, state, under]) el.addEventListener("change", changed);
    text.addEventListener("input", changed);
    return { form, underText };
  }

  // --- showing -------------------------------------------------------------------------------

  #show(id) {
    const tab = TABS.find((t) => t.id === id) ?? TABS[0];
    this.#stopTab?.();
    this.#stopTab = null;
    this.#tab = tab.id;
    for (const button of this.#root.querySelectorAll(".alm-tab")) {
      button.setAttribute("aria-current", button.dataset.tab === tab.id ? "page" : "false");
    }
    for (const [key, pane] of Object.entries(this.#panes)) pane.hidden = key !== tab.id;
    const ctx = { api: this.#api, asset: this.#asset };
    if (tab.id === "journal") this.#stopTab = journalView(this.#panes.journal, ctx).stop;
    if (tab.id === "kpis") this.#stopTab = kpisView(this.#panes.kpis, ctx).stop;
    this.#render();
  }

  #render() {
    if (this.#tables === null) return;
    const all = [...this.#alarms.values()];
    this.#indicator.show(all);
    const selected = this.#asset() ?? "";
    this.#controls.underText.textContent = selected ? `Under ${selected}` : "Under the selected asset";
    const filters = { ...this.#filters, asset: this.#underSelected ? selected : "" };
    const { key, ascending } = this.#sort;
    const listed = sortAlarms(all.filter((a) => matches(a, filters)), key, ascending);
    const shelved = sortAlarms(all.filter((a) => a.shelved === true && matches(a, { ...filters, state: "all" })), key, ascending);
    this.#tables.list.render(listed, this.#received, all.length === 0 ? "No alarm is active. All quiet." : "No alarm matches the filters.");
    this.#tables.shelved.render(shelved, this.#received, "No alarm is shelved.");
    const counts = { list: listed.length, shelved: shelved.length };
    for (const el of this.#root.querySelectorAll(".alm-tab-count")) {
      const text = String(counts[el.dataset.count] ?? "");
      if (el.textContent !== text) el.textContent = text;
    }
  }

  #setSort(key) {
    // A second press on the same order turns it round.
    this.#sort = this.#sort.key === key ? { key, ascending: !this.#sort.ascending } : { key, ascending: true };
    this.#markSort();
    this.#render();
  }

  #markSort() {
    for (const button of this.#root.querySelectorAll(".alm-sort button")) {
      const on = button.dataset.sort === this.#sort.key;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
      button.dataset.direction = on ? (this.#sort.ascending ? "normal" : "reversed") : "";
    }
  }

  #say(text, kind = "info") {
    if (!this.#message) return;
    this.#message.textContent = text;
    this.#message.dataset.kind = kind;
    this.#message.hidden = text === "";
  }

  // --- acting --------------------------------------------------------------------------------

  async #ackMany(ids) {
    const alarms = ids.map((id) => this.#alarms.get(id)).filter(Boolean);
    if (alarms.length === 0) return;
    await this.#run(() => acknowledge(this.#api, alarms));
    this.#tables.list.clearSelection();
  }

  async #act(action, alarm) {
    if (!alarm) return;
    await this.#run(() => rowAction(this.#api, action, alarm));
  }

  async #run(fn) {
    let outcome;
    try {
      outcome = await fn();
    } catch (err) {
      this.#say(err?.message ?? String(err), "error");
      return;
    }
    if (outcome === null) return; // cancelled
    this.#say(outcome.text, outcome.kind);
    await this.refresh(); // the live feed may not carry this subtree: ask for the new states
  }
}
