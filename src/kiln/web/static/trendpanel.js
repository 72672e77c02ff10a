// The trend panel: one or more pens on a uPlot chart (vendor/uPlot.iife.min.js, MIT), a window
// that follows the clock ("last 1 h") or is fixed (a custom range, a zoom, a pan), history
// fetched again at the resolution of whatever span is on screen, live points, CSV export.
//
// uPlot draws and handles the cursor and the drag selection; what is Kiln's own is which
// history to ask for, how pens line up on one time axis, and the window in the address.

import { PRIORITY_COLOURS, bandAbove, tagLimits } from "./alarms-model.js";
import { formatDateTime, formatWithUnit } from "./format.js";
import { RANGES, isStepped, loadHistory, resolveWindow, toPoints } from "./history.js";
import { MAX_PENS, alignPens, bandPoints, panWindow, penPoints, toCsv, zoomOut } from "./trenddata.js";

const PEN_COLOURS = ["#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#d6336c", "#0c8599"];
// A drag narrower than this many pixels is a click, not a zoom.
const MIN_ZOOM_PX = 8;
// The shortest span a zoom may ask for: below a few seconds there is nothing more to see.
const MIN_SPAN_MS = 5_000;

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/** A datetime-local input's value for `ms`, in local time, to the second. */
function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

/** Loads and shows the trend of one or more tags. */
export class TrendPanel {
  #el;
  #api;
  #clock;
  #onClose;
  #onChange;
  #pens = []; // {tag, colour, points: [{t, v}], band: {lo, hi} of [{t, v}] or null, info, limits}
  #window = "1h"; // a key of RANGES (follows the clock) or {startMs, endMs}
  #lastRange = "1h";
  #abort = null;
  #generation = 0;
  #ticker = 0;
  #plot = null;
  #data = [[]];
  #dirty = false;
  #state = "closed"; // closed | loading | ready | empty | error | none
  #liveCount = 0;
  #resize = null;
  #candidates = [];

  /**
   * `el` holds the panel's elements (see app.js); `onClose()` and `onChange()` tell the page
   * when the pens or the window change, so it can keep the address bar in step.
   */
  constructor(el, { api, clock, onClose = () => {}, onChange = () => {} }) {
    this.#el = el;
    this.#api = api;
    this.#clock = clock;
    this.#onClose = onClose;
    this.#onChange = onChange;
    el.close.addEventListener("click", () => this.close());
    el.retry.addEventListener("click", () => this.reload());
    for (const button of el.rangeButtons) {
      button.addEventListener("click", () => this.setWindow(button.dataset.range));
    }
    el.custom.addEventListener("submit", (event) => {
      event.preventDefault();
      const startMs = new Date(el.from.value).getTime();
      const endMs = new Date(el.to.value).getTime();
      if (!(endMs > startMs)) {
        el.customMessage.textContent = "The end must come after the start.";
        el.customMessage.hidden = false;
        return;
      }
      el.customMessage.hidden = true;
      this.setWindow({ startMs, endMs });
    });
    el.back.addEventListener("click", () => this.setWindow(panWindow(this.#span(), -0.5)));
    el.forward.addEventListener("click", () => this.setWindow(panWindow(this.#span(), 0.5)));
    el.zoomOut.addEventListener("click", () => this.setWindow(zoomOut(this.#span())));
    el.now.addEventListener("click", () => this.setWindow(this.#lastRange));
    el.add.addEventListener("change", () => {
      const tag = this.#candidates.find((t) => t.path === el.add.value);
      el.add.value = "";
      if (tag) this.addPen(tag);
    });
    el.csv.addEventListener("click", () => this.exportCsv());
    el.pens.addEventListener("click", (event) => {
      const button = event.target.closest?.("button[data-path]");
      if (button) this.removePen(button.dataset.path);
    });
    // Redraw in the other theme's colours when the system setting changes.
    globalThis.matchMedia?.("(prefers-color-scheme: dark)").addEventListener?.("change", () => this.#rebuild());
    this.#resize = new ResizeObserver(() => this.#fit());
    this.#resize.observe(el.chart.parentElement);
    this.#markRange();
  }

  /** Path of the first pen, or null when the panel is closed. */
  get tagPath() {
    return this.#pens[0]?.tag.path ?? null;
  }

  /** Paths of every pen, first pen first. */
  get tagPaths() {
    return this.#pens.map((p) => p.tag.path);
  }

  /** The window: a key of RANGES (following the clock) or {startMs, endMs} (fixed). */
  get window() {
    return this.#window;
  }

  /** What the chart shows now, for the tests and the CSV: {paths, data, startMs, endMs}. */
  get shown() {
    const span = this.#span();
    // The band columns (min and max of averaged pens) follow the pens; the CSV is the pens.
    return { paths: this.tagPaths, data: this.#data.slice(0, this.#pens.length + 1), ...span };
  }

  /** Tags the "Add a pen" list offers (the tags of the selected asset). */
  setCandidates(tags) {
    this.#candidates = tags.filter((t) => t.data_type !== "string");
    this.#renderCandidates();
  }

  /**
   * Choose the window (a key of RANGES or {startMs, endMs}) and load it. An unknown key is
   * ignored; a span shorter than MIN_SPAN_MS is widened to it.
   */
  setWindow(window, { quiet = false } = {}) {
    if (typeof window === "string") {
      if (!(window in RANGES)) return;
      this.#lastRange = window;
    } else {
      let { startMs, endMs } = window;
      if (!(Number.isFinite(startMs) && Number.isFinite(endMs))) return;
      if (endMs - startMs < MIN_SPAN_MS) {
        const mid = (startMs + endMs) / 2;
        startMs = mid - MIN_SPAN_MS / 2;
        endMs = mid + MIN_SPAN_MS / 2;
      }
      window = { startMs: Math.round(startMs), endMs: Math.round(endMs) };
    }
    this.#window = window;
    this.#markRange();
    if (!quiet) this.#onChange();
    if (this.#pens.length > 0) this.reload();
  }

  /** Show `tag` (a tag definition from /api/v1/tags) alone. */
  open(tag) {
    if (this.#pens.length === 1 && this.#pens[0].tag.path === tag.path) {
      this.reload();
      return;
    }
    this.#pens = [];
    this.addPen(tag, { quiet: true });
  }

  /** Add `tag` as another pen (ignored when it is there already or the chart is full). */
  addPen(tag, { quiet = false } = {}) {
    if (this.#pens.some((p) => p.tag.path === tag.path) || this.#pens.length >= MAX_PENS) return;
    const used = new Set(this.#pens.map((p) => p.colour));
    const colour = PEN_COLOURS.find((c) => !used.has(c)) ?? PEN_COLOURS[0];
    const pen = { tag, colour, points: [], band: null, info: "", limits: [] };
    this.#pens.push(pen);
    this.#el.panel.hidden = false;
    this.#renderHeader();
    this.#rebuild();
    if (!quiet) this.#onChange();
    this.reload();
    this.#loadLimits(pen);
  }

  /**
   * The limits of the pen's limit alarms (GET /alarms?state=all for the tag's asset, entries
   * alarming on this tag with a limit), drawn as bands coloured by priority. Without the alarm
   * engine, or without the right to read alarms, the trend simply has no bands.
   */
  async #loadLimits(pen) {
    const path = pen.tag.path;
    const asset = pen.tag.asset_path || path.slice(0, Math.max(0, path.lastIndexOf("/")));
    let body;
    try {
      body = await this.#api.get("/api/v1/alarms", { state: "all", asset });
    } catch {
      return; // no bands is the honest picture when the limits cannot be read
    }
    if (!this.#pens.includes(pen)) return; // removed meanwhile
    pen.limits = tagLimits(Array.isArray(body?.alarms) ? body.alarms : [], path);
    this.#renderLimits();
    if (pen.limits.length > 0) this.#rebuild();
  }

  /** The limits beside each pen's name, so a band's value can be read without the chart. */
  #renderLimits() {
    let total = 0;
    for (const li of this.#el.pens.querySelectorAll(".pen")) {
      const pen = this.#pens.find((p) => p.tag.path === li.dataset.path);
      const cell = li.querySelector(".pen-limits");
      if (!pen || !cell) continue;
      total += pen.limits.length;
      const items = pen.limits.map((l) => {
        const chip = document.createElement("span");
        chip.className = "pen-limit";
        chip.dataset.priority = l.priority;
        chip.dataset.condition = l.condition;
        chip.style.borderColor = PRIORITY_COLOURS[l.priority] ?? "#868e96";
        chip.textContent = `${l.condition} ${formatWithUnit(l.limit, readoutTag(pen.tag, l.limit))}`;
        chip.title = `${l.id}: ${l.priority} priority`;
        return chip;
      });
      cell.replaceChildren(...items);
    }
    this.#el.chart.dataset.alarmLimits = String(total);
  }

  /** Take the pen of `path` off the chart; the last one closes the panel. */
  removePen(path) {
    const left = this.#pens.filter((p) => p.tag.path !== path);
    if (left.length === this.#pens.length) return;
    if (left.length === 0) {
      this.close();
      return;
    }
    this.#pens = left;
    this.#renderHeader();
    this.#rebuild();
    this.#onChange();
  }

  /** Hide the panel and stop loading. */
  close() {
    if (this.#pens.length === 0) return;
    this.#abort?.abort();
    this.#generation += 1;
    this.#pens = [];
    this.#state = "closed";
    this.#stopTicker();
    this.#plot?.destroy();
    this.#plot = null;
    this.#data = [[]];
    this.#el.panel.hidden = true;
    this.#onClose();
  }

  /** Fetch the history of every pen again (after a window change, a retry, a reconnect). */
  async reload() {
    const pens = this.#pens;
    if (pens.length === 0) return;
    this.#abort?.abort();
    const abort = new AbortController();
    this.#abort = abort;
    const generation = ++this.#generation;
    const span = resolveWindow(this.#window, this.#clock.now());
    this.#startTicker(span);
    this.#setState("loading", `Loading ${this.#describeWindow()} of history…`);
    let histories;
    try {
      histories = await Promise.all(
        pens.map((pen) => loadHistory(this.#api, pen.tag, this.#window, abort.signal)),
      );
    } catch (err) {
      if (err?.name === "AbortError" || generation !== this.#generation) return;
      this.#setState("error", `Could not load the history: ${err?.message ?? err}`);
      return;
    }
    if (generation !== this.#generation) return;
    if (histories.every((h) => h.kind === "none")) {
      this.#data = [[]];
      this.#setState("none", "Text tags have no trend; the table shows the latest value.");
      return;
    }
    pens.forEach((pen, i) => {
      pen.points = penPoints(histories[i]);
      pen.band = bandPoints(histories[i]);
      pen.info = describe(histories[i]);
    });
    this.#liveCount = 0;
    this.#redraw();
    if (this.#data[0].length > 0) this.#setState("ready");
    else {
      this.#setState(
        "empty",
        `No history in ${this.#describeWindow()}. ${span.sliding ? "New values appear here as they arrive." : ""}`,
      );
    }
  }

  /** Live entries ({path, value, source_ts, quality}) for any tags; keeps those of the pens. */
  applyValues(entries) {
    if (this.#pens.length === 0 || typeof this.#window !== "string" || this.#state === "none") return;
    let added = 0;
    for (const pen of this.#pens) {
      const mine = entries.filter((e) => e.path === pen.tag.path);
      if (mine.length === 0) continue;
      const last = pen.points.length > 0 ? pen.points[pen.points.length - 1].t : -Infinity;
      for (const p of penPoints({ kind: "raw", points: toPoints(mine, pen.tag, "source_ts") })) {
        if (p.t <= last) continue; // already in the history, or late: the next reload has it
        pen.points.push(p);
        added += 1;
      }
    }
    if (added === 0) return;
    this.#liveCount += added;
    this.#dirty = true;
    if (this.#state === "empty") this.#setState("ready");
  }

  /** Download what the chart shows as CSV (UTC times, one column per pen). */
  exportCsv() {
    const { paths, data, startMs, endMs } = this.shown;
    const blob = new Blob([toCsv(paths, data, startMs, endMs)], { type: "text/csv" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    const stamp = new Date(endMs).toISOString().slice(0, 19).replaceAll(":", "");
    link.download = `kiln-trend-${stamp}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  // --- drawing -------------------------------------------------------------------------------

  #span() {
    const span = resolveWindow(this.#window, this.#clock.now());
    return { startMs: span.startMs, endMs: span.endMs };
  }

  /** Recompute the aligned data from the pens and hand it to the chart. */
  #redraw() {
    this.#dirty = false;
    this.#data = this.#align();
    // A band that comes or goes changes the series: uPlot needs a new chart for that.
    if (!this.#plot || this.#plot.data.length !== this.#data.length) this.#rebuild();
    else {
      this.#plot.setData(this.#data, false);
      this.#setScale();
    }
    this.#renderFooter();
    this.#readout(this.#plot?.cursor.idx);
  }

  /** [times, pen 1, ..., pen N, then min and max of each pen with a band]. */
  #align() {
    const banded = this.#pens.filter((p) => p.band);
    return alignPens([
      ...this.#pens.map((p) => p.points),
      ...banded.flatMap((p) => [p.band.lo, p.band.hi]),
    ]);
  }

  #setScale() {
    const { startMs, endMs } = this.#span();
    this.#plot?.setScale("x", { min: startMs, max: endMs });
  }

  /** A new uPlot for the pens (their number, scales or the theme changed). */
  #rebuild() {
    this.#plot?.destroy();
    this.#plot = null;
    if (this.#pens.length === 0 || typeof globalThis.uPlot !== "function") return;
    this.#data = this.#align();
    const uPlot = globalThis.uPlot;
    const text = cssVar("--muted", "#616e7c");
    const grid = cssVar("--rule", "#edf0f3");
    const scales = { x: { time: true } };
    const axes = [{ stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } }];
    const series = [{ value: (u, v) => (v === null || v === undefined ? "–" : formatDateTime(v)) }];
    const seen = [];
    for (const pen of this.#pens) {
      const tag = pen.tag;
      // One value scale per unit: a weight in grams and a current in amperes each fill the chart.
      const key = `y:${tag.unit || tag.path}`;
      if (!seen.includes(key)) {
        seen.push(key);
        scales[key] = { auto: true };
        // The alarm limits of the pens on this scale stay in view, so their bands are seen.
        const limits = this.#pens
          .filter((p) => `y:${p.tag.unit || p.tag.path}` === key)
          .flatMap((p) => p.limits.map((l) => l.limit));
        if (limits.length > 0) scales[key].range = (u, min, max) => withLimits(min, max, limits);
        if (seen.length <= 2) {
          axes.push({
            scale: key,
            side: seen.length === 1 ? 3 : 1,
            stroke: pen.colour,
            grid: { show: seen.length === 1, stroke: grid, width: 1 },
            ticks: { stroke: grid },
            size: 60,
            values: (u, ticks) => ticks.map((v) => axisLabel(tag, v)),
          });
        }
      }
      series.push({
        label: tag.name || tag.path,
        scale: key,
        stroke: pen.colour,
        width: 1.5,
        spanGaps: false,
        paths: isStepped(tag) ? uPlot.paths.stepped({ align: 1 }) : undefined,
        // uPlot's default: dots only where samples are sparse (a lone bucket is still seen).
        points: { size: 5 },
        value: (u, v) => (v === null || v === undefined ? "–" : formatWithUnit(v, readoutTag(tag, v))),
      });
    }
    // Averaged pens get their min–max band, so a spike inside a bucket still shows.
    const bands = [];
    for (const [i, pen] of this.#pens.entries()) {
      if (!pen.band) continue;
      const lo = series.length;
      for (const label of ["min", "max"]) {
        series.push({
          label: `${pen.tag.name} ${label}`,
          scale: series[i + 1].scale,
          stroke: "transparent",
          width: 0,
          spanGaps: false,
          points: { show: false },
        });
      }
      bands.push({ series: [lo + 1, lo], fill: `${pen.colour}33` });
    }
    const { width, height } = this.#size();
    const opts = {
      bands,
      width,
      height,
      ms: 1, // timestamps are epoch milliseconds
      scales,
      axes,
      series,
      // The pens list above the chart is the legend: it shows the values under the cursor.
      legend: { show: false },
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => this.#zoomTo(u)],
        setCursor: [(u) => this.#readout(u.cursor.idx)],
        drawAxes: [(u) => this.#drawLimits(u, series)],
      },
    };
    this.#plot = new uPlot(opts, this.#data, this.#el.chart);
    this.#setScale();
  }

  /**
   * Each limit alarm of a pen as a line at its limit and a faint band on the alarm side (above
   * a hi/hihi limit, below a lo/lolo one), in its priority's colour, under the pens' lines.
   */
  #drawLimits(u, series) {
    const { left, top, width, height } = u.bbox;
    const ctx = u.ctx;
    let drawn = 0;
    ctx.save();
    for (const [i, pen] of this.#pens.entries()) {
      const scale = series[i + 1]?.scale;
      if (!scale || pen.limits.length === 0) continue;
      for (const l of pen.limits) {
        const y = u.valToPos(l.limit, scale, true);
        if (!Number.isFinite(y)) continue;
        const colour = PRIORITY_COLOURS[l.priority] ?? "#868e96";
        const edge = bandAbove(l.condition) ? top : top + height;
        const y0 = Math.max(top, Math.min(top + height, y));
        ctx.fillStyle = `${colour}1f`;
        ctx.fillRect(left, Math.min(y0, edge), width, Math.abs(edge - y0));
        ctx.strokeStyle = colour;
        ctx.lineWidth = 1.5 * (globalThis.devicePixelRatio || 1);
        ctx.setLineDash([8, 4]);
        ctx.beginPath();
        ctx.moveTo(left, y0);
        ctx.lineTo(left + width, y0);
        ctx.stroke();
        drawn += 1;
      }
    }
    ctx.restore();
    this.#el.chart.dataset.alarmBands = String(drawn);
  }

  #zoomTo(u) {
    const { left, width } = u.select;
    u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
    if (width < MIN_ZOOM_PX) return;
    this.setWindow({ startMs: u.posToVal(left, "x"), endMs: u.posToVal(left + width, "x") });
  }

  /** The chart fills its frame, whose size the page layout decides. */
  #size() {
    const frame = this.#el.chart.parentElement;
    return { width: Math.max(200, frame.clientWidth - 4), height: Math.max(160, frame.clientHeight - 6) };
  }

  /** Show the values at data index `idx` (the cursor) in the pens list, or the latest ones. */
  #readout(idx) {
    const [xs, ...columns] = this.#data;
    const at = Number.isInteger(idx) && idx >= 0 && idx < xs.length;
    this.#el.pens.querySelectorAll(".pen").forEach((li, i) => {
      const ys = columns[i] ?? [];
      let v = at ? ys[idx] : undefined;
      if (!at) for (let k = ys.length - 1; k >= 0 && (v === undefined || v === null); k--) v = ys[k];
      const tag = this.#pens[i]?.tag;
      const cell = li.querySelector(".pen-value");
      if (cell && tag) cell.textContent = v === null || v === undefined ? "–" : formatWithUnit(v, readoutTag(tag, v));
    });
    this.#el.cursorTime.textContent = at ? formatDateTime(xs[idx]) : "";
  }

  #fit() {
    if (!this.#plot) return;
    const { width, height } = this.#size();
    if (width !== this.#plot.width || height !== this.#plot.height) this.#plot.setSize({ width, height });
  }

  // --- state and text ------------------------------------------------------------------------

  #setState(state, message = "") {
    this.#state = state;
    const { overlay, overlayText, retry } = this.#el;
    overlay.hidden = state === "ready";
    overlay.dataset.state = state;
    overlayText.textContent = message;
    retry.hidden = state !== "error";
    this.#el.csv.disabled = state !== "ready";
    this.#renderFooter();
  }

  #describeWindow() {
    if (typeof this.#window === "string") return `the last ${RANGES[this.#window].label}`;
    const { startMs, endMs } = this.#window;
    return `${formatDateTime(startMs)} to ${formatDateTime(endMs)}`;
  }

  #renderHeader() {
    const first = this.#pens[0]?.tag;
    if (!first) return;
    const { name, path, meta } = this.#el;
    name.textContent = first.name || first.path;
    path.textContent = first.path;
    const parts = [];
    if (first.description) parts.push(first.description);
    if (first.unit) parts.push(`unit ${first.unit}`);
    if (Number.isFinite(first.low) && Number.isFinite(first.high)) {
      parts.push(`range ${first.low} to ${first.high}${first.unit ? ` ${first.unit}` : ""}`);
    }
    parts.push(first.data_type);
    meta.textContent = parts.join(" · ");
    const items = this.#pens.map((pen) => {
      const li = document.createElement("li");
      li.className = "pen";
      li.dataset.path = pen.tag.path;
      const swatch = document.createElement("span");
      swatch.className = "pen-swatch";
      swatch.style.background = pen.colour; // CSSOM, which the CSP allows (no style attribute)
      const label = document.createElement("span");
      label.className = "pen-name";
      // The machine and the tag tell pens apart; the whole path is in the tooltip.
      label.textContent = pen.tag.path.split("/").slice(-2).join("/");
      label.title = pen.tag.path;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "button-quiet pen-remove";
      remove.dataset.path = pen.tag.path;
      remove.textContent = "✕";
      remove.setAttribute("aria-label", `Remove ${pen.tag.path} from the trend`);
      const value = document.createElement("span");
      value.className = "pen-value";
      const limits = document.createElement("span");
      limits.className = "pen-limits";
      li.append(swatch, label, value, limits, remove);
      return li;
    });
    this.#el.pens.replaceChildren(...items);
    this.#renderLimits();
    this.#renderCandidates();
  }

  #renderCandidates() {
    const select = this.#el.add;
    const shown = new Set(this.tagPaths);
    const first = document.createElement("option");
    first.value = "";
    first.textContent = this.#pens.length >= MAX_PENS ? `At most ${MAX_PENS} pens` : "Add a pen…";
    const options = this.#candidates
      .filter((t) => !shown.has(t.path))
      .map((t) => {
        const option = document.createElement("option");
        option.value = t.path;
        option.textContent = t.path;
        return option;
      });
    select.replaceChildren(first, ...options);
    select.disabled = this.#pens.length >= MAX_PENS || options.length === 0;
  }

  #renderFooter() {
    const ready = this.#state === "ready" || this.#state === "empty";
    const infos = [...new Set(this.#pens.map((p) => p.info).filter(Boolean))];
    const live = this.#liveCount > 0 ? ` · ${this.#liveCount} live` : "";
    this.#el.info.textContent = ready ? `${infos.join(" · ")}${live}` : "";
  }

  #markRange() {
    const fixed = typeof this.#window !== "string";
    for (const button of this.#el.rangeButtons) {
      const on = button.dataset.range === this.#window;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", String(on));
    }
    this.#el.now.disabled = !fixed;
    const { startMs, endMs } = this.#span();
    this.#el.from.value = toLocalInput(startMs);
    this.#el.to.value = toLocalInput(endMs);
  }

  #startTicker(span) {
    this.#stopTicker();
    if (!span.sliding) return;
    // Slide the window about once per pixel of a wide chart, at most once a second.
    const every = Math.max(1000, Math.round(span.ms / 1200));
    this.#ticker = setInterval(() => {
      if (this.#dirty) this.#redraw();
      else this.#setScale();
    }, every);
  }

  #stopTicker() {
    if (this.#ticker) clearInterval(this.#ticker);
    this.#ticker = 0;
  }
}

function describe(history) {
  if (history.kind === "aggregate") {
    const minutes = history.intervalMs / 60_000;
    const interval = minutes >= 1 ? `${minutes} min` : `${history.intervalMs / 1000} s`;
    return `averages per ${interval}`;
  }
  if (history.kind === "raw") {
    return history.truncated ? `raw values (the first ${history.points.length})` : "raw values";
  }
  return "";
}

/** The tag for formatting `v`: an average of an integer counter is shown with decimals. */
function readoutTag(tag, v) {
  return tag.data_type === "int" && !Number.isInteger(v) ? { ...tag, data_type: "float" } : tag;
}

/** A value scale's [min, max] widened to hold `limits`, with a little room around them. */
function withLimits(min, max, limits) {
  const values = [min, max, ...limits].filter((v) => v !== null && Number.isFinite(v));
  if (values.length === 0) return [0, 1];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  return [lo - pad, hi + pad];
}

function axisLabel(tag, v) {
  if (tag.data_type === "bool") return v === 0 ? "off" : v === 1 ? "on" : "";
  if (tag.data_type === "state" && tag.states && typeof tag.states === "object") {
    return Number.isInteger(v) && String(v) in tag.states ? String(tag.states[String(v)]) : "";
  }
  return String(Number(v.toPrecision(6)));
}
