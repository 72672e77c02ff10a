// The trend panel: header, time-range selector, history loading, empty/error states, live points.

import { formatWithUnit } from "./format.js";
import { RANGES, isStepped, loadHistory, toPoints } from "./history.js";
import { TrendChart } from "./trend.js";

/** Loads and shows the trend of one tag at a time. */
export class TrendPanel {
  #el;
  #api;
  #clock;
  #onClose;
  #onRangeChange;
  #chart;
  #tag = null;
  #range = "1h";
  #abort = null;
  #generation = 0;
  #ticker = 0;
  #state = "closed"; // closed | loading | ready | empty | error | none
  #info = "";
  #liveCount = 0;

  /**
   * `el` holds the panel's elements (see app.js); `onClose()` and `onRangeChange(key)` tell the
   * page so it can keep the address bar in step.
   */
  constructor(el, { api, clock, onClose = () => {}, onRangeChange = () => {} }) {
    this.#el = el;
    this.#api = api;
    this.#clock = clock;
    this.#onClose = onClose;
    this.#onRangeChange = onRangeChange;
    this.#chart = new TrendChart(el.canvas, el.readout, { now: () => clock.now() });
    el.close.addEventListener("click", () => this.close());
    el.retry.addEventListener("click", () => this.reload());
    for (const button of el.rangeButtons) {
      button.addEventListener("click", () => this.setRange(button.dataset.range));
    }
    this.#markRange();
  }

  /** Path of the tag shown, or null when the panel is closed. */
  get tagPath() {
    return this.#tag?.path ?? null;
  }

  /** The selected range key ("15m", "1h", "8h", "24h"). */
  get range() {
    return this.#range;
  }

  /** Choose the time range and reload. An unknown key is ignored. */
  setRange(key) {
    if (!(key in RANGES) || key === this.#range) return;
    this.#range = key;
    this.#markRange();
    this.#onRangeChange(key);
    if (this.#tag) this.reload();
  }

  /** Show `tag` (a tag definition from /api/v1/tags). */
  open(tag) {
    const same = this.#tag?.path === tag.path;
    this.#tag = tag;
    this.#el.panel.hidden = false;
    this.#renderHeader();
    if (!same) this.#chart.clear();
    this.reload();
  }

  /** Hide the panel and stop loading. */
  close() {
    if (!this.#tag) return;
    this.#abort?.abort();
    this.#generation += 1;
    this.#tag = null;
    this.#state = "closed";
    this.#stopTicker();
    this.#chart.clear();
    this.#el.panel.hidden = true;
    this.#onClose();
  }

  /** Fetch the history again (after a range change, a retry, or a live reconnect). */
  async reload() {
    const tag = this.#tag;
    if (!tag) return;
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    const generation = ++this.#generation;
    const range = RANGES[this.#range];
    this.#chart.configure({
      windowMs: range.ms,
      stepped: isStepped(tag),
      format: readoutFormat(tag),
      yLabels: axisLabels(tag),
    });
    this.#startTicker(range.ms);
    this.#setState("loading", `Loading ${range.label} of history…`);
    try {
      const history = await loadHistory(this.#api, tag, this.#range, abort.signal);
      if (generation !== this.#generation) return;
      if (history.kind === "none") {
        this.#chart.clear();
        this.#info = "";
        this.#setState("none", "Text tags have no trend; the table shows the latest value.");
        return;
      }
      this.#chart.setHistory(history);
      this.#liveCount = 0;
      this.#info = describe(history, range.ms);
      if (this.#chart.hasData()) this.#setState("ready");
      else {
        this.#setState(
          "empty",
          `No history yet for this tag in the last ${range.label}. New values appear here as they arrive.`,
        );
      }
    } catch (err) {
      if (err?.name === "AbortError" || generation !== this.#generation) return;
      this.#info = "";
      this.#setState("error", `Could not load the history: ${err?.message ?? err}`);
    }
  }

  /** Live entries ({path, value, source_ts, quality}) for any tags; keeps those of this tag. */
  applyValues(entries) {
    const tag = this.#tag;
    if (!tag || this.#state === "none") return;
    const mine = entries.filter((e) => e.path === tag.path);
    if (mine.length === 0) return;
    const added = this.#chart.addLive(toPoints(mine, tag, "source_ts"));
    if (added === 0) return;
    this.#liveCount += added;
    if (this.#state === "empty" && this.#chart.hasData()) this.#setState("ready");
    else this.#renderFooter();
  }

  #setState(state, message = "") {
    this.#state = state;
    const { overlay, overlayText, retry } = this.#el;
    overlay.hidden = state === "ready";
    overlay.dataset.state = state;
    overlayText.textContent = message;
    retry.hidden = state !== "error";
    this.#renderFooter();
  }

  #renderHeader() {
    const tag = this.#tag;
    const { name, path, meta } = this.#el;
    name.textContent = tag.name || tag.path;
    path.textContent = tag.path;
    const parts = [];
    if (tag.description) parts.push(tag.description);
    if (tag.unit) parts.push(`unit ${tag.unit}`);
    if (Number.isFinite(tag.low) && Number.isFinite(tag.high)) {
      parts.push(`range ${tag.low} to ${tag.high}${tag.unit ? ` ${tag.unit}` : ""}`);
    }
    parts.push(tag.data_type);
    meta.textContent = parts.join(" · ");
  }

  #renderFooter() {
    const live = this.#liveCount > 0 ? ` · ${this.#liveCount} live` : "";
    this.#el.info.textContent = this.#state === "ready" || this.#state === "empty" ? `${this.#info}${live}` : "";
  }

  #markRange() {
    for (const button of this.#el.rangeButtons) {
      const on = button.dataset.range === this.#range;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
  }

  #startTicker(windowMs) {
    this.#stopTicker();
    // Slide the window about once per pixel of a wide chart, at most once a second.
    const every = Math.max(1000, Math.round(windowMs / 1200));
    this.#ticker = setInterval(() => this.#chart.requestRender(), every);
  }

  #stopTicker() {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = 0;
  }
}

function describe(history, rangeMs) {
  if (history.kind === "aggregate") {
    const minutes = history.intervalMs / 60_000;
    const interval = minutes >= 1 ? `${minutes} min` : `${history.intervalMs / 1000} s`;
    // The server may leave empty buckets out, so count against the range, not the answer.
    const filled = history.buckets.filter((b) => b.avg !== null).length;
    if (filled === 0) return "No stored values in this range";
    const total = Math.ceil(rangeMs / history.intervalMs);
    return `Average per ${interval} with min–max band · data in ${filled} of ${total} intervals`;
  }
  if (history.points.length === 0) return "No stored values in this range";
  const text = `Raw values · ${history.points.length} points`;
  return history.truncated ? `${text} (the range holds more; showing the first ${history.points.length})` : text;
}

function readoutFormat(tag) {
  // An average of an integer counter is not an integer; show it with decimals.
  const asFloat = { ...tag, data_type: "float" };
  return (v) => (tag.data_type === "int" && !Number.isInteger(v) ? formatWithUnit(v, asFloat) : formatWithUnit(v, tag));
}

function axisLabels(tag) {
  if (tag.data_type === "bool") {
    return new Map([
      [0, "off"],
      [1, "on"],
    ]);
  }
  if (tag.data_type === "state" && tag.states && typeof tag.states === "object") {
    const labels = new Map();
    for (const [key, name] of Object.entries(tag.states)) {
      const value = Number(key);
      if (Number.isFinite(value)) labels.set(value, String(name));
    }
    return labels.size > 0 ? labels : null;
  }
  return null;
}
