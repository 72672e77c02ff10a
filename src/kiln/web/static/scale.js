// The aggregate interval the trend asks for (uPlot draws the axes).
// Pure functions with no DOM access, so the test suite can run them under node.

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
