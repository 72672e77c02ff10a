// Axis arithmetic for the trend: value ticks, time ticks, aggregate interval choice.
// Pure functions with no DOM access, so the test suite can run them under node.

import { MONTHS } from "./format.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Aggregate intervals the trend asks the historian for, shortest first. */
export const INTERVALS = [
  [1 * SECOND, "1s"],
  [2 * SECOND, "2s"],
  [5 * SECOND, "5s"],
  [10 * SECOND, "10s"],
  [15 * SECOND, "15s"],
  [30 * SECOND, "30s"],
  [1 * MINUTE, "1m"],
  [2 * MINUTE, "2m"],
  [5 * MINUTE, "5m"],
  [10 * MINUTE, "10m"],
  [15 * MINUTE, "15m"],
  [30 * MINUTE, "30m"],
  [1 * HOUR, "1h"],
  [2 * HOUR, "2h"],
  [6 * HOUR, "6h"],
  [12 * HOUR, "12h"],
  [1 * DAY, "1d"],
];

/**
 * The shortest interval giving at most `target` buckets over `rangeMs`: about one bucket per
 * two pixels of a laptop-wide chart, enough for the min/max band to show every spike.
 */
export function chooseInterval(rangeMs, target = 300) {
  for (const [ms, text] of INTERVALS) {
    if (rangeMs / ms <= target) return { ms, text };
  }
  const [ms, text] = INTERVALS[INTERVALS.length - 1];
  return { ms, text };
}

/**
 * Round value ticks (steps of 1, 2, 2.5 or 5 times a power of ten) covering [min, max] with at
 * most about `maxCount` intervals. A flat series gets a small band around its value.
 */
export function niceTicks(min, max, maxCount = 5) {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return null;
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = Math.abs(min) * 0.05 || 1;
    min -= pad;
    max += pad;
  }
  const count = Math.max(1, Math.floor(maxCount));
  const raw = (max - min) / count;
  const power = Math.floor(Math.log10(raw));
  const magnitude = 10 ** power;
  const norm = raw / magnitude;
  const factor = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  const step = factor * magnitude;
  const decimals = Math.max(0, -power + (factor === 2.5 ? 1 : 0));
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  const ticks = [];
  // Multiplying an integer index keeps 0.1 + 0.2 style drift out of the labels.
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return { min: ticks[0], max: ticks[ticks.length - 1], step, decimals, ticks };
}

const TIME_STEPS = [
  SECOND,
  2 * SECOND,
  5 * SECOND,
  10 * SECOND,
  15 * SECOND,
  30 * SECOND,
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
];

/** Minutes to add to local time to get UTC at instant `ms` (Date#getTimezoneOffset). */
export function browserOffsetMinutes(ms) {
  return new Date(ms).getTimezoneOffset();
}

/**
 * Time ticks in [startMs, endMs], at most `maxCount`, on round local wall-clock times
 * (every 15 min on the quarter hour, every 3 h on 00, 03, ...), which is how operators read
 * shift charts. Labels are HH:MM:SS below a minute step, HH:MM otherwise, and the date at
 * local midnight. `offsetMinutes` is injectable so tests do not depend on the machine zone.
 */
export function timeTicks(startMs, endMs, maxCount = 8, offsetMinutes = browserOffsetMinutes) {
  if (!(endMs > startMs)) return [];
  const span = endMs - startMs;
  const step =
    TIME_STEPS.find((s) => span / s <= Math.max(1, maxCount)) ?? TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  const toLocal = (t) => t - offsetMinutes(t) * MINUTE;
  let local = Math.ceil(toLocal(startMs) / step) * step;
  for (let guard = 0; guard < 1000; guard++, local += step) {
    // Converting back with the offset at the candidate keeps ticks right across a DST change.
    const t = local + offsetMinutes(local) * MINUTE;
    if (t > endMs) break;
    if (t < startMs) continue;
    const midnight = local % DAY === 0;
    let label;
    if (step >= HOUR && midnight) label = wallDay(local);
    else label = wallClock(local, step < MINUTE);
    ticks.push({ t, label, major: midnight });
  }
  return ticks;
}

// Tick positions are computed in local wall-clock time written as if it were UTC, so the UTC
// getters read the local fields without a second, possibly different, zone lookup.
const pad2 = (n) => String(n).padStart(2, "0");

function wallClock(localMs, withSeconds) {
  const d = new Date(localMs);
  const hm = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getUTCSeconds())}` : hm;
}

function wallDay(localMs) {
  const d = new Date(localMs);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}
