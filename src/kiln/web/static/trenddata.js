// What the trend shows, as plain data: pens aligned on one time axis for uPlot, the CSV of what
// is on screen, and the view kept in the address. No DOM here, so the tests run it under node.

import { qualitySeverity } from "./format.js";
import { RANGES } from "./history.js";

/** Pens one trend may hold: more lines than this are not readable on one chart. */
export const MAX_PENS = 6;

/**
 * A pen's points {t, v} from a loaded history: raw values as they are, aggregates as the
 * bucket averages. A Bad value, or a bucket with no data, is null: uPlot leaves a gap there.
 */
export function penPoints(history) {
  if (history?.kind === "aggregate") {
    return history.buckets.map((b) => ({ t: b.t, v: b.avg }));
  }
  if (history?.kind !== "raw") return [];
  return history.points.map((p) => ({
    t: p.t,
    v: qualitySeverity(p.q) === "bad" || !Number.isFinite(p.v) ? null : p.v,
  }));
}

/** The min–max band {lo, hi} (each [{t, v}]) of an aggregate history; null for raw values. */
export function bandPoints(history) {
  if (history?.kind !== "aggregate") return null;
  return {
    lo: history.buckets.map((b) => ({ t: b.t, v: b.min })),
    hi: history.buckets.map((b) => ({ t: b.t, v: b.max })),
  };
}

/**
 * uPlot's columnar data for several pens: [times, values of pen 1, values of pen 2, ...] on the
 * union of their timestamps, sorted. Where a pen has no sample at a time its value is
 * `undefined` (uPlot draws the line on through), while its own gaps stay `null` (a break).
 */
export function alignPens(pointLists) {
  const times = new Set();
  for (const points of pointLists) for (const p of points) times.add(p.t);
  const xs = [...times].sort((a, b) => a - b);
  const at = new Map(xs.map((t, i) => [t, i]));
  const columns = pointLists.map((points) => {
    const ys = new Array(xs.length).fill(undefined);
    for (const p of points) ys[at.get(p.t)] = p.v;
    return ys;
  });
  return [xs, ...columns];
}

function csvField(text) {
  const s = String(text);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * The CSV of what the chart shows between `fromMs` and `toMs`: a `time` column in UTC ISO 8601
 * and one column per pen, named by the tag path. A pen without a sample at that time, or with a
 * gap, has an empty field.
 */
export function toCsv(paths, data, fromMs = -Infinity, toMs = Infinity) {
  const lines = [["time", ...paths].map(csvField).join(",")];
  const [xs, ...columns] = data;
  for (let i = 0; i < xs.length; i++) {
    const t = xs[i];
    if (t < fromMs || t > toMs) continue;
    const row = [new Date(t).toISOString()];
    for (const ys of columns) row.push(ys[i] === null || ys[i] === undefined ? "" : String(ys[i]));
    lines.push(row.map(csvField).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

/**
 * The view in the address: `asset`, `tag` (repeated, one per pen) and either `range` (a key of
 * RANGES, following the clock) or `from` and `to` (ISO 8601, a fixed span).
 */
export function readView(hash) {
  const params = new URLSearchParams(hash.startsWith("#") ? hash.slice(1) : hash);
  const tags = params.getAll("tag").filter((t) => t !== "").slice(0, MAX_PENS);
  const from = Date.parse(params.get("from") ?? "");
  const to = Date.parse(params.get("to") ?? "");
  let window = null;
  if (Number.isFinite(from) && Number.isFinite(to) && to > from) window = { startMs: from, endMs: to };
  else if ((params.get("range") ?? "") in RANGES) window = params.get("range");
  return { asset: params.get("asset"), tags, window };
}

/** The address fragment (without "#") for a view; the inverse of readView. */
export function writeView({ asset = null, tags = [], window = null }) {
  const params = new URLSearchParams();
  if (asset) params.set("asset", asset);
  for (const tag of tags) params.append("tag", tag);
  if (window && typeof window === "object") {
    params.set("from", new Date(window.startMs).toISOString());
    params.set("to", new Date(window.endMs).toISOString());
  } else if (typeof window === "string") params.set("range", window);
  return params.toString();
}

/**
 * The fixed window after panning `window` (as {startMs, endMs}) by `fraction` of its span:
 * negative is earlier. Zooming out doubles the span around its middle (`zoomOut`).
 */
export function panWindow({ startMs, endMs }, fraction) {
  const shift = (endMs - startMs) * fraction;
  return { startMs: startMs + shift, endMs: endMs + shift };
}

export function zoomOut({ startMs, endMs }, factor = 2) {
  const mid = (startMs + endMs) / 2;
  const half = ((endMs - startMs) * factor) / 2;
  return { startMs: mid - half, endMs: mid + half };
}
