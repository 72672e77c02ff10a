// Loading a tag's history for the trend: which endpoint to ask, and turning answers into points.

import { asBoolean, parseTimestamp } from "./format.js";
import { chooseInterval } from "./scale.js";

/** The time ranges the trend offers. */
export const RANGES = Object.freeze({
  "15m": { ms: 15 * 60_000, label: "15 min" },
  "1h": { ms: 60 * 60_000, label: "1 h" },
  "8h": { ms: 8 * 60 * 60_000, label: "8 h" },
  "24h": { ms: 24 * 60 * 60_000, label: "24 h" },
});

/** Ranges up to this length try raw values first: every real sample beats bucket averages. */
export const RAW_FIRST_MAX_MS = 60 * 60_000;
/** Raw points above which a numeric trend switches to aggregates (about 3 per pixel). */
export const RAW_LIMIT = 3000;
/** Raw points asked for discrete tags, whose avg/min/max would be meaningless. */
export const DISCRETE_RAW_LIMIT = 5000;

/** True for tags drawn as steps: a state, a bool or a counter holds its value until the next. */
export function isStepped(tag) {
  return tag?.data_type === "bool" || tag?.data_type === "state" || tag?.data_type === "int";
}

/**
 * How to fetch history for `tag` over `rangeMs`: {mode: "none"} for text tags, "raw" for
 * discrete tags, "raw-first" for short numeric ranges, else "aggregate" with an interval.
 */
export function planHistory(tag, rangeMs) {
  const interval = chooseInterval(rangeMs);
  switch (tag?.data_type) {
    case "string":
      return { mode: "none", interval };
    case "bool":
    case "state":
      return { mode: "raw", limit: DISCRETE_RAW_LIMIT, interval };
    default:
      return rangeMs <= RAW_FIRST_MAX_MS
        ? { mode: "raw-first", limit: RAW_LIMIT, interval }
        : { mode: "aggregate", interval };
  }
}

/** A value as a number for plotting (bools as 0/1), or NaN when it has none. */
export function numericValue(value, dataType) {
  if (dataType === "bool") {
    const b = asBoolean(value);
    return b === null ? Number.NaN : b ? 1 : 0;
  }
  if (typeof value === "number") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" && value.trim() !== "") return Number(value);
  return Number.NaN;
}

/** Points {t, v, q} from a /history/raw answer, or from live entries, sorted by time. */
export function toPoints(values, tag, timeKey = "ts") {
  const points = [];
  for (const item of Array.isArray(values) ? values : []) {
    const t = parseTimestamp(item?.[timeKey]);
    if (!Number.isFinite(t)) continue;
    points.push({ t, v: numericValue(item.value, tag?.data_type), q: String(item.quality ?? "") });
  }
  points.sort((a, b) => a.t - b.t);
  return points;
}

/** Buckets {t, avg, min, max} (null when a bucket has no data) from a /history/aggregate answer. */
export function toBuckets(buckets) {
  const out = [];
  const num = (x) => (typeof x === "number" && Number.isFinite(x) ? x : null);
  for (const item of Array.isArray(buckets) ? buckets : []) {
    const t = parseTimestamp(item?.ts);
    if (!Number.isFinite(t)) continue;
    out.push({ t, avg: num(item.avg), min: num(item.min), max: num(item.max) });
  }
  out.sort((a, b) => a.t - b.t);
  return out;
}

/**
 * The window a trend shows: a range key of RANGES ("1h": the last hour, sliding with the clock)
 * or {startMs, endMs} (a fixed span, from a custom range or a zoom). Resolves to the query
 * bounds and the span in milliseconds; `nowMs` places a sliding window.
 */
export function resolveWindow(window, nowMs = Date.now()) {
  if (window && typeof window === "object") {
    const startMs = Number(window.startMs);
    const endMs = Number(window.endMs);
    if (Number.isFinite(startMs) && Number.isFinite(endMs) && endMs > startMs) {
      return {
        start: new Date(startMs).toISOString(),
        end: new Date(endMs).toISOString(),
        ms: endMs - startMs,
        startMs,
        endMs,
        sliding: false,
      };
    }
  }
  const key = typeof window === "string" && window in RANGES ? window : "1h";
  const ms = RANGES[key].ms;
  return { start: `-${key}`, end: "now", ms, startMs: nowMs - ms, endMs: nowMs, sliding: true };
}

/**
 * Fetch the history of `tag` over `window` (see resolveWindow) through `api`, at a resolution
 * chosen for the span: a zoom into ten minutes of a day asks again for raw values.
 * Resolves to {kind: "raw"|"aggregate"|"none", points, buckets, intervalMs, endMs, truncated}.
 */
export async function loadHistory(api, tag, window, signal) {
  const span = resolveWindow(window);
  const plan = planHistory(tag, span.ms);
  const { start, end } = span;
  if (plan.mode === "none") {
    return { kind: "none", points: [], buckets: [], intervalMs: 0, endMs: Number.NaN, truncated: false };
  }
  if (plan.mode === "raw" || plan.mode === "raw-first") {
    const body = await api.get(
      "/api/v1/history/raw",
      { tag: tag.path, start, end, limit: plan.limit },
      { signal },
    );
    const truncated = body?.truncated === true;
    if (plan.mode === "raw" || !truncated) {
      return {
        kind: "raw",
        points: toPoints(body?.values, tag),
        buckets: [],
        intervalMs: 0,
        endMs: parseTimestamp(body?.end),
        truncated,
      };
    }
  }
  const body = await api.get(
    "/api/v1/history/aggregate",
    { tag: tag.path, start, end, interval: plan.interval.text, agg: "avg,min,max" },
    { signal },
  );
  return {
    kind: "aggregate",
    points: [],
    buckets: toBuckets(body?.buckets),
    intervalMs: plan.interval.ms,
    endMs: parseTimestamp(body?.end),
    truncated: false,
  };
}
