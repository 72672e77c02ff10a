// The alarm console's data, apart from the DOM: priorities and state names, what a filter keeps,
// the sort orders, the header indicator's summary, and the URLs of an alarm's actions. Pure
// functions, so tests/web/web_static_probe.mjs-style scripts can run them under node.

/** Priorities from the most to the least urgent (the server's Priority, ISA-18.2 §10.3). */
export const PRIORITIES = ["critical", "high", "medium", "low"];

/** Rank of a priority: 0 is the most urgent; an unknown one sorts last. */
export function priorityRank(priority) {
  const i = PRIORITIES.indexOf(priority);
  return i < 0 ? PRIORITIES.length : i;
}

/** Colours by priority, the same in the list, the indicator and the trend's limit bands. */
export const PRIORITY_COLOURS = {
  critical: "#c92a2a",
  high: "#e8590c",
  medium: "#f0a800",
  low: "#1c7ed6",
};

/** Words for the shown states the server sends (kiln.alarms.states.State values). */
export const STATE_LABELS = {
  normal: "Normal",
  unacknowledged: "Active, unacknowledged",
  acknowledged: "Active, acknowledged",
  rtn_unacknowledged: "Cleared, unacknowledged",
  latched_unacknowledged: "Latched, unacknowledged",
  latched_acknowledged: "Latched, acknowledged",
  shelved: "Shelved",
  suppressed_by_design: "Suppressed by design",
  out_of_service: "Out of service",
};

export function stateLabel(state) {
  return STATE_LABELS[state] ?? String(state ?? "—");
}

/** The `state` filter values GET /alarms accepts, with their labels ("" is the default). */
export const STATE_FILTERS = [
  { value: "", label: "Not normal" },
  { value: "active", label: "Active" },
  { value: "unacknowledged", label: "Unacknowledged" },
  { value: "shelved", label: "Shelved" },
  { value: "suppressed", label: "Suppressed" },
  { value: "out_of_service", label: "Out of service" },
  { value: "all", label: "All, normal too" },
];

/** Shelving durations offered, in seconds; null with oneShot is the one-shot shelve. */
export const SHELVE_CHOICES = [
  { key: "15m", label: "15 min", seconds: 900, oneShot: false },
  { key: "1h", label: "1 h", seconds: 3600, oneShot: false },
  { key: "4h", label: "4 h", seconds: 4 * 3600, oneShot: false },
  { key: "8h", label: "8 h", seconds: 8 * 3600, oneShot: false },
  { key: "one-shot", label: "Until it clears (one-shot)", seconds: null, oneShot: true },
];

/** True while the alarm waits for an operator's acknowledgement. */
export function isUnacknowledged(alarm) {
  return alarm?.acknowledged === false;
}

/** True for an alarm the operator is told about: not shelved, suppressed or out of service. */
export function isAnnounced(alarm) {
  return !alarm.shelved && !alarm.suppressed && !alarm.out_of_service;
}

/** Whether the default list (everything not normal) still holds `alarm`. */
export function isNotNormal(alarm) {
  return (
    alarm.state !== "normal" ||
    alarm.active === true ||
    alarm.acknowledged === false ||
    alarm.shelved === true ||
    alarm.suppressed === true ||
    alarm.out_of_service === true
  );
}

/** True when `path` is `prefix` or below it ("a/b" is under "a", "ab" is not). */
export function underAsset(path, prefix) {
  if (!prefix) return true;
  return path === prefix || String(path).startsWith(`${prefix}/`);
}

/** Whether `alarm` passes the state filter value (see STATE_FILTERS), as the server reads it. */
export function matchesState(alarm, state) {
  switch (state) {
    case "":
    case undefined:
    case null:
      return isNotNormal(alarm);
    case "all":
      return true;
    case "active":
      return alarm.active === true;
    case "unacknowledged":
      return isUnacknowledged(alarm);
    case "shelved":
      return alarm.shelved === true;
    case "suppressed":
      return alarm.suppressed === true;
    case "out_of_service":
      return alarm.out_of_service === true;
    default:
      return true;
  }
}

/**
 * Whether `alarm` passes the filters {priority, state, asset, text}: an empty value keeps all.
 * The text is looked for, case-blind, in the id, the message, the tag and the asset.
 */
export function matches(alarm, { priority = "", state = "", asset = "", text = "" } = {}) {
  if (priority && alarm.priority !== priority) return false;
  if (!matchesState(alarm, state)) return false;
  if (!underAsset(alarm.asset ?? "", asset)) return false;
  const needle = text.trim().toLowerCase();
  if (needle) {
    const hay = [alarm.id, alarm.message, alarm.tag, alarm.asset, alarm.name].join(" ").toLowerCase();
    if (!hay.includes(needle)) return false;
  }
  return true;
}

/** The sort orders the console offers; time is the last change, newest first by default. */
export const SORTS = {
  time: (a, b) => (b.changed_us ?? 0) - (a.changed_us ?? 0),
  priority: (a, b) => priorityRank(a.priority) - priorityRank(b.priority) || SORTS.time(a, b),
  asset: (a, b) => String(a.asset).localeCompare(String(b.asset)) || String(a.id).localeCompare(String(b.id)),
};

/** `alarms` sorted by `key` (a key of SORTS); `ascending` false turns that order round. */
export function sortAlarms(alarms, key = "time", ascending = true) {
  const compare = SORTS[key] ?? SORTS.time;
  const out = [...alarms].sort(compare);
  return ascending ? out : out.reverse();
}

/**
 * The header indicator: how many announced alarms wait for acknowledgement, the highest
 * priority among them, and whether it blinks (only while critical or high ones are unacked:
 * ISA-101 keeps motion for what needs action now).
 */
export function indicatorSummary(alarms) {
  let count = 0;
  let top = null;
  for (const alarm of alarms) {
    if (!isUnacknowledged(alarm) || !isAnnounced(alarm)) continue;
    count += 1;
    if (top === null || priorityRank(alarm.priority) < priorityRank(top)) top = alarm.priority;
  }
  return { count, priority: top, blink: top === "critical" || top === "high" };
}

/**
 * The URL of `action` on alarm `id`. Ids hold slashes (acme/plant1/mill1/temp:hi): each segment
 * is encoded on its own and the slashes kept, which is how the API's path parameter reads them.
 */
export function alarmUrl(id, action) {
  const path = String(id).split("/").map(encodeURIComponent).join("/");
  return `/api/v1/alarms/${path}/${action}`;
}

/** "59:58", "1:02:03" for a count-down in seconds; "—" for none. */
export function formatRemaining(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** A value for the list: numbers to at most 4 significant digits, text as it is. */
export function formatAlarmValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return String(Number(value.toPrecision(4)));
  return String(value);
}

/** The limit alarms of a tag, for the trend: [{limit, priority, condition, id, state}]. */
export function tagLimits(alarms, tagPath) {
  return alarms
    .filter((a) => a.tag === tagPath && typeof a.limit === "number" && Number.isFinite(a.limit))
    .map((a) => ({ id: a.id, limit: a.limit, priority: a.priority, condition: a.condition, state: a.state }))
    .sort((a, b) => b.limit - a.limit);
}

/** Whether the band of a limit lies above it (hi, hihi, deviation_high) or below it. */
export function bandAbove(condition) {
  return condition === "hi" || condition === "hihi" || condition === "deviation_high";
}
