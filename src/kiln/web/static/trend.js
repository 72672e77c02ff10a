// A canvas line chart for one tag: history (raw points, or bucket averages with a min/max band)
// followed by live points, on a sliding window that ends at server "now".

import { formatDateTime, formatNumber, qualityLabel, qualitySeverity } from "./format.js";
import { niceTicks, timeTicks } from "./scale.js";

// Live points kept at most; at one value a second this is more than five hours.
const MAX_LIVE_POINTS = 20_000;
const PAD_TOP = 12;
const PAD_RIGHT = 18;
const PAD_BOTTOM = 26;
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
const COLORS = {
  plot: "#ffffff",
  grid: "#e8ebef",
  gridMajor: "#c3cad3",
  axis: "#aab4be",
  text: "#52606d",
  line: "#1d5fa8",
  band: "rgba(29, 95, 168, 0.16)",
  held: "rgba(29, 95, 168, 0.55)",
  uncertain: "#c27c00",
  bad: "#c92a2a",
  cursor: "#7b8794",
};

/** Draws one tag's trend into a canvas and shows a hover read-out in `readout`. */
export class TrendChart {
  #canvas;
  #ctx;
  #readout;
  #now;
  #observer = null;
  #frame = 0;
  #windowMs = 3_600_000;
  #stepped = false;
  #format = (v) => String(v);
  #yLabels = null;
  #kind = "raw";
  #points = [];
  #buckets = [];
  #intervalMs = 0;
  #cutoff = Number.NEGATIVE_INFINITY;
  #live = [];
  #line = null; // cached history + live points, rebuilt when either changes
  #layout = null;
  #hoverX = null;

  /** `now()` gives server time in ms; the right edge of the chart. */
  constructor(canvas, readout, { now = () => Date.now() } = {}) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext("2d");
    this.#readout = readout;
    this.#now = now;
    canvas.addEventListener("pointermove", (event) => {
      const rect = canvas.getBoundingClientRect();
      this.#hoverX = event.clientX - rect.left;
      this.requestRender();
    });
    canvas.addEventListener("pointerleave", () => {
      this.#hoverX = null;
      this.requestRender();
    });
    if (typeof ResizeObserver === "function") {
      this.#observer = new ResizeObserver(() => this.requestRender());
      this.#observer.observe(canvas);
    }
  }

  /**
   * Set how the tag is drawn: `windowMs` shown, `stepped` (hold each value until the next),
   * `format(v)` for read-outs, and `yLabels` (Map value -> label) for state and bool tags.
   */
  configure({ windowMs, stepped, format, yLabels }) {
    if (windowMs !== undefined) this.#windowMs = windowMs;
    if (stepped !== undefined) this.#stepped = stepped;
    if (format !== undefined) this.#format = format;
    if (yLabels !== undefined) this.#yLabels = yLabels;
    this.requestRender();
  }

  /** Forget all data. */
  clear() {
    this.#kind = "raw";
    this.#points = [];
    this.#buckets = [];
    this.#live = [];
    this.#cutoff = Number.NEGATIVE_INFINITY;
    this.#line = null;
    this.requestRender();
  }

  /**
   * Show a history answer: `kind` "raw" with `points` [{t, v, q}], or "aggregate" with
   * `buckets` [{t, avg, min, max}] of `intervalMs`. `endMs` is when the server cut the answer;
   * live points after it are kept, earlier ones are already in the history.
   */
  setHistory({ kind, points = [], buckets = [], intervalMs = 0, endMs = Number.NaN }) {
    this.#kind = kind;
    this.#points = points;
    this.#buckets = buckets;
    this.#intervalMs = intervalMs;
    const lastRaw = points.length ? points[points.length - 1].t : Number.NEGATIVE_INFINITY;
    const lastBucketEnd = buckets.length
      ? buckets[buckets.length - 1].t + intervalMs
      : Number.NEGATIVE_INFINITY;
    if (kind === "aggregate") this.#cutoff = Number.isFinite(endMs) ? endMs : lastBucketEnd;
    else this.#cutoff = lastRaw;
    this.#live = this.#live.filter((p) => p.t > this.#cutoff);
    this.#line = null;
    this.requestRender();
  }

  /** Append live points [{t, v, q}]; returns how many were new. */
  addLive(points) {
    let added = 0;
    for (const p of points) {
      if (!Number.isFinite(p.t) || p.t <= this.#cutoff) continue;
      const live = this.#live;
      if (live.length === 0 || p.t > live[live.length - 1].t) {
        live.push(p);
      } else {
        const i = lowerBound(live, p.t);
        if (live[i]?.t === p.t) live[i] = p;
        else live.splice(i, 0, p);
      }
      added += 1;
    }
    if (added > 0) {
      // Keep one point left of the window so the line still enters from the left edge.
      const oldest = this.#now() - this.#windowMs;
      let drop = Math.max(0, this.#live.length - MAX_LIVE_POINTS);
      while (drop + 1 < this.#live.length && this.#live[drop + 1].t < oldest) drop += 1;
      if (drop > 0) this.#live.splice(0, drop);
      this.#line = null;
      this.requestRender();
    }
    return added;
  }

  /** True when any plottable value lies inside the current window. */
  hasData() {
    const start = this.#now() - this.#windowMs;
    return this.#linePoints().some((p) => p.t >= start && Number.isFinite(p.v));
  }

  /** Redraw on the next animation frame (coalesces bursts of live values). */
  requestRender() {
    if (this.#frame) return;
    const raf = globalThis.requestAnimationFrame ?? ((fn) => setTimeout(fn, 16));
    this.#frame = raf(() => {
      this.#frame = 0;
      this.render();
    });
  }

  /** Stop observing the canvas. */
  destroy() {
    this.#observer?.disconnect();
    if (this.#frame) globalThis.cancelAnimationFrame?.(this.#frame);
    this.#frame = 0;
  }

  /** Draw now. */
  render() {
    const canvas = this.#canvas;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (width === 0 || height === 0) return; // panel hidden
    const dpr = globalThis.devicePixelRatio || 1;
    const pixelW = Math.round(width * dpr);
    const pixelH = Math.round(height * dpr);
    if (canvas.width !== pixelW) canvas.width = pixelW;
    if (canvas.height !== pixelH) canvas.height = pixelH;
    const ctx = this.#ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = FONT;

    const end = this.#now();
    const start = end - this.#windowMs;
    const line = this.#linePoints();
    const yScale = this.#valueScale(start, line, height - PAD_TOP - PAD_BOTTOM);
    let labelWidth = 0;
    for (const tick of yScale.ticks) {
      labelWidth = Math.max(labelWidth, ctx.measureText(yScale.label(tick)).width);
    }
    const plot = {
      x0: Math.min(170, Math.max(44, Math.ceil(labelWidth) + 14)),
      x1: width - PAD_RIGHT,
      y0: PAD_TOP,
      y1: height - PAD_BOTTOM,
    };
    if (plot.x1 - plot.x0 < 40 || plot.y1 - plot.y0 < 20) return;
    const x = (t) => plot.x0 + ((t - start) / (end - start)) * (plot.x1 - plot.x0);
    const y = (v) => plot.y1 - ((v - yScale.min) / (yScale.max - yScale.min)) * (plot.y1 - plot.y0);
    this.#layout = { start, end, plot, x, y, line };

    ctx.fillStyle = COLORS.plot;
    ctx.fillRect(plot.x0, plot.y0, plot.x1 - plot.x0, plot.y1 - plot.y0);
    this.#drawValueAxis(ctx, plot, yScale, y);
    this.#drawTimeAxis(ctx, plot, start, end, x);

    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x0, plot.y0 - 1, plot.x1 - plot.x0, plot.y1 - plot.y0 + 2);
    ctx.clip();
    if (this.#kind === "aggregate") this.#drawBand(ctx, start, x, y);
    this.#drawLine(ctx, line, start, end, plot, x, y);
    ctx.restore();

    ctx.strokeStyle = COLORS.axis;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(plot.x0 + 0.5, plot.y0);
    ctx.lineTo(plot.x0 + 0.5, plot.y1 + 0.5);
    ctx.lineTo(plot.x1, plot.y1 + 0.5);
    ctx.stroke();

    this.#drawHover(ctx, width);
  }

  #linePoints() {
    if (this.#line === null) {
      const history =
        this.#kind === "aggregate"
          ? this.#buckets.map((b) => ({
              // The partial last bucket is drawn at the cut-off, not in the future.
              t: Math.min(b.t + this.#intervalMs / 2, this.#cutoff),
              v: b.avg ?? Number.NaN,
              q: "good",
              bucket: b,
            }))
          : this.#points;
      this.#line = history.concat(this.#live);
    }
    return this.#line;
  }

  #valueScale(start, line, plotHeight) {
    if (this.#yLabels && this.#yLabels.size > 0) {
      const keys = [...this.#yLabels.keys()].sort((a, b) => a - b);
      let lo = keys[0];
      let hi = keys[keys.length - 1];
      // Values outside the declared states still have to be visible.
      for (const p of line) {
        if (p.t >= start && Number.isFinite(p.v)) {
          lo = Math.min(lo, p.v);
          hi = Math.max(hi, p.v);
        }
      }
      const labels = this.#yLabels;
      return {
        min: lo - 0.5,
        max: hi + 0.5,
        ticks: keys,
        label: (v) => labels.get(v) ?? String(v),
      };
    }
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    const take = (v) => {
      if (typeof v === "number" && Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    };
    const first = Math.max(0, lowerBound(line, start) - 1);
    for (let i = first; i < line.length; i++) {
      const p = line[i];
      if (qualitySeverity(p.q) === "bad") continue;
      if (p.bucket) {
        take(p.bucket.min ?? p.bucket.avg);
        take(p.bucket.max ?? p.bucket.avg);
      } else {
        take(p.v);
      }
    }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    } else if (hi > lo) {
      const pad = (hi - lo) * 0.06;
      lo -= pad;
      hi += pad;
    }
    const ticks = niceTicks(lo, hi, Math.max(2, Math.floor(plotHeight / 38)));
    return {
      min: ticks.min,
      max: ticks.max,
      ticks: ticks.ticks,
      label: (v) => formatNumber(v, ticks.decimals),
    };
  }

  #drawValueAxis(ctx, plot, yScale, y) {
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.lineWidth = 1;
    for (const tick of yScale.ticks) {
      const py = Math.round(y(tick)) + 0.5;
      if (py < plot.y0 - 1 || py > plot.y1 + 1) continue;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(plot.x0, py);
      ctx.lineTo(plot.x1, py);
      ctx.stroke();
      ctx.fillStyle = COLORS.text;
      ctx.fillText(yScale.label(tick), plot.x0 - 7, py);
    }
  }

  #drawTimeAxis(ctx, plot, start, end, x) {
    const ticks = timeTicks(start, end, Math.max(2, Math.floor((plot.x1 - plot.x0) / 84)));
    ctx.textBaseline = "top";
    ctx.lineWidth = 1;
    for (const tick of ticks) {
      const px = Math.round(x(tick.t)) + 0.5;
      ctx.strokeStyle = tick.major ? COLORS.gridMajor : COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(px, plot.y0);
      ctx.lineTo(px, plot.y1 + 4);
      ctx.stroke();
      const half = ctx.measureText(tick.label).width / 2;
      // Labels at the very edge would be cut off: pull them inside the canvas.
      const lx = Math.min(plot.x1 + PAD_RIGHT - half - 2, Math.max(plot.x0 + half, px));
      ctx.textAlign = "center";
      ctx.fillStyle = COLORS.text;
      ctx.font = tick.major ? `600 ${FONT}` : FONT;
      ctx.fillText(tick.label, lx, plot.y1 + 7);
    }
    ctx.font = FONT;
  }

  #drawBand(ctx, start, x, y) {
    const iv = this.#intervalMs;
    const buckets = this.#buckets;
    const filled = (k) => buckets[k].min !== null && buckets[k].max !== null;
    ctx.fillStyle = COLORS.band;
    let i = Math.max(0, lowerBound(buckets, start - iv) - 1);
    while (i < buckets.length) {
      while (i < buckets.length && !filled(i)) i++;
      if (i >= buckets.length) break;
      const from = i;
      i++;
      // A run ends at an empty bucket, whether sent as nulls or left out of the answer.
      while (i < buckets.length && filled(i) && !this.#isGap(buckets[i - 1], buckets[i])) i++;
      ctx.beginPath();
      for (let k = from; k < i; k++) {
        const b = buckets[k];
        const right = Math.min(b.t + iv, this.#cutoff);
        if (k === from) ctx.moveTo(x(b.t), y(b.max));
        else ctx.lineTo(x(b.t), y(b.max));
        ctx.lineTo(x(right), y(b.max));
      }
      for (let k = i - 1; k >= from; k--) {
        const b = buckets[k];
        const right = Math.min(b.t + iv, this.#cutoff);
        ctx.lineTo(x(right), y(b.min));
        ctx.lineTo(x(b.t), y(b.min));
      }
      ctx.closePath();
      ctx.fill();
    }
  }

  /** True when buckets `a` and `b` are not neighbours: the interval(s) between hold no data. */
  #isGap(a, b) {
    return b.t - a.t > this.#intervalMs * 1.5;
  }

  #drawLine(ctx, line, start, end, plot, x, y) {
    const first = Math.max(0, lowerBound(line, start) - 1);
    const visible = line.length - first;
    const sparse = visible > 0 && visible < (plot.x1 - plot.x0) / 8;
    ctx.strokeStyle = COLORS.line;
    ctx.lineWidth = 1.75;
    ctx.lineJoin = "round";
    ctx.beginPath();
    let prev = null;
    let lastGood = null;
    const marks = [];
    const bridges = [];
    for (let i = first; i < line.length; i++) {
      const p = line[i];
      const severity = qualitySeverity(p.q);
      if (severity === "bad") {
        // A bad value is not a value: break the line (as historians do) and mark the spot.
        marks.push({ p, kind: "bad" });
        prev = null;
        lastGood = null;
        continue;
      }
      if (!Number.isFinite(p.v)) {
        prev = null;
        continue;
      }
      const px = x(p.t);
      const py = y(p.v);
      const gap = prev !== null && prev.bucket && p.bucket && this.#isGap(prev.bucket, p.bucket);
      if (prev === null || gap) {
        // No stored value in between, but none was bad either: with exception reporting the
        // value most likely held. Bridge it with a faint dashed line rather than claim either.
        const from = prev ?? lastGood;
        if (from !== null) bridges.push([from, p]);
        ctx.moveTo(px, py);
      } else if (this.#stepped && !p.bucket && !prev.bucket) {
        ctx.lineTo(px, y(prev.v));
        ctx.lineTo(px, py);
      } else ctx.lineTo(px, py);
      if (severity === "uncertain") marks.push({ p, kind: "uncertain" });
      else if (sparse && !p.bucket) marks.push({ p, kind: "dot" });
      prev = p;
      lastGood = p;
    }
    ctx.stroke();

    if (bridges.length > 0) {
      ctx.strokeStyle = COLORS.held;
      ctx.lineWidth = 1.25;
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      for (const [a, b] of bridges) {
        ctx.moveTo(x(a.t), y(a.v));
        ctx.lineTo(x(b.t), y(b.v));
      }
      ctx.stroke();
      ctx.setLineDash([]);
    }

    // The last value holds until the next one arrives (report-by-exception): show it faintly.
    const last = line[line.length - 1];
    if (prev !== null && prev === last && !last.bucket && last.t < end) {
      ctx.strokeStyle = COLORS.held;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(x(last.t), y(last.v));
      ctx.lineTo(x(end), y(last.v));
      ctx.stroke();
      ctx.setLineDash([]);
    }

    for (const { p, kind } of marks) {
      const px = x(p.t);
      if (kind === "bad") {
        ctx.fillStyle = COLORS.bad;
        ctx.beginPath();
        ctx.moveTo(px, plot.y1 - 7);
        ctx.lineTo(px - 4, plot.y1);
        ctx.lineTo(px + 4, plot.y1);
        ctx.closePath();
        ctx.fill();
      } else {
        ctx.fillStyle = kind === "uncertain" ? COLORS.uncertain : COLORS.line;
        ctx.beginPath();
        ctx.arc(px, y(p.v), kind === "uncertain" ? 3 : 2.25, 0, Math.PI * 2);
        ctx.fill();
      }
    }
  }

  #drawHover(ctx, width) {
    const layout = this.#layout;
    const readout = this.#readout;
    const hx = this.#hoverX;
    if (!layout || hx === null || hx < layout.plot.x0 || hx > layout.plot.x1) {
      readout.hidden = true;
      return;
    }
    const { plot, start, end, x, y, line } = layout;
    const t = start + ((hx - plot.x0) / (plot.x1 - plot.x0)) * (end - start);
    const i = lowerBound(line, t);
    let best = null;
    for (const k of [i - 1, i]) {
      const p = line[k];
      if (!p || p.t < start || p.t > end) continue;
      if (best === null || Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
    }
    if (best === null || Math.abs(x(best.t) - hx) > 60) {
      readout.hidden = true;
      return;
    }
    const px = Math.round(x(best.t)) + 0.5;
    ctx.strokeStyle = COLORS.cursor;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(px, plot.y0);
    ctx.lineTo(px, plot.y1);
    ctx.stroke();
    ctx.setLineDash([]);
    if (Number.isFinite(best.v)) {
      ctx.fillStyle = COLORS.line;
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(px, y(best.v), 4, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }

    const lines = [];
    if (best.bucket) {
      const b = best.bucket;
      lines.push({ text: `${formatDateTime(b.t)} + ${spanLabel(this.#intervalMs)}`, cls: "readout-time" });
      if (b.avg === null) lines.push({ text: "no data in this interval", cls: "readout-value" });
      else {
        lines.push({ text: `avg ${this.#format(b.avg)}`, cls: "readout-value" });
        const range = `min ${this.#format(b.min ?? b.avg)} · max ${this.#format(b.max ?? b.avg)}`;
        lines.push({ text: range, cls: "readout-range" });
      }
    } else {
      lines.push({ text: formatDateTime(best.t), cls: "readout-time" });
      const value = Number.isFinite(best.v) ? this.#format(best.v) : "no value";
      lines.push({ text: value, cls: "readout-value" });
      const severity = qualitySeverity(best.q);
      if (severity !== "good") {
        lines.push({ text: qualityLabel(best.q), cls: `readout-quality q-${severity}` });
      }
    }
    readout.replaceChildren(
      ...lines.map(({ text, cls }) => {
        const div = document.createElement("div");
        div.className = cls;
        div.textContent = text;
        return div;
      }),
    );
    readout.hidden = false;
    const boxWidth = readout.offsetWidth;
    const left = px + 14 + boxWidth > width ? px - 14 - boxWidth : px + 14;
    readout.style.left = `${Math.max(0, left)}px`;
    readout.style.top = `${plot.y0 + 6}px`;
  }
}

/** Index of the first item with `t >= t` in a list sorted by t. */
export function lowerBound(items, t) {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid].t < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function spanLabel(ms) {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}
