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
 * Fetch the history of `tag` for `rangeKey` (a key of RANGES) through `api`.
 * Resolves to {kind: "raw"|"aggregate"|"none", points, buckets, intervalMs, endMs, truncated}.
 */
export async function loadHistory(api, tag, rangeKey, signal) {
  const range = RANGES[rangeKey] ?? RANGES["1h"];
  const plan = planHistory(tag, range.ms);
  const start = `-${rangeKey}`;
  if (plan.mode === "none") {
    return { kind: "none", points: [], buckets: [], intervalMs: 0, endMs: Number.NaN, truncated: false };
  }
  if (plan.mode === "raw" || plan.mode === "raw-first") {
    const body = await api.get(
      "/api/v1/history/raw",
      { tag: tag.path, start, end: "now", limit: plan.limit },
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
    { tag: tag.path, start, end: "now", interval: plan.interval.text, agg: "avg,min,max" },
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
