// Formatting shared by the tag table, the trend and the header.
// Pure functions with no DOM access, so the test suite can run them under node.

/** English month abbreviations; the UI text is English. */
export const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * Severity of a quality name: the word before the first underscore
 * ("bad_sensor_failure" -> "bad"). Anything unrecognised is "unknown", never "good".
 */
export function qualitySeverity(quality) {
  if (typeof quality !== "string" || quality === "") return "unknown";
  const word = quality.toLowerCase().split("_", 1)[0];
  return word === "good" || word === "uncertain" || word === "bad" ? word : "unknown";
}

/** Human label of a quality name: "bad_sensor_failure" -> "Bad: sensor failure". */
export function qualityLabel(quality) {
  if (typeof quality !== "string" || quality === "") return "Unknown";
  const lower = quality.toLowerCase();
  const cut = lower.indexOf("_");
  const head = cut < 0 ? lower : lower.slice(0, cut);
  const rest = cut < 0 ? "" : lower.slice(cut + 1).replaceAll("_", " ");
  const title = head.charAt(0).toUpperCase() + head.slice(1);
  return rest ? `${title}: ${rest}` : title;
}

/**
 * Decimals for a float tag. With an engineering range the span decides (a 0-1000 kPa
 * transmitter does not need three decimals); otherwise the magnitude of the value does.
 */
export function decimalsFor(value, tag) {
  const low = tag?.low;
  const high = tag?.high;
  if (Number.isFinite(low) && Number.isFinite(high) && high > low) {
    return clamp(3 - Math.floor(Math.log10(high - low)), 0, 4);
  }
  const a = Math.abs(value);
  if (a >= 100) return 1;
  if (a >= 1) return 2;
  return 3;
}

/** A number with a fixed count of decimals; exponent form for magnitudes a column cannot hold. */
export function formatNumber(value, decimals) {
  if (!Number.isFinite(value)) return String(value);
  const a = Math.abs(value);
  if (a !== 0 && (a >= 1e9 || a < 1e-4)) return value.toExponential(3);
  const text = value.toFixed(decimals);
  // "-0.00" reads as a sign flip to an operator.
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/** True/false/1/0/"true"/"on" style inputs as a boolean, or null when it is not one. */
export function asBoolean(value) {
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  if (typeof value === "string") {
    const v = value.trim().toLowerCase();
    if (v === "true" || v === "on" || v === "1") return true;
    if (v === "false" || v === "off" || v === "0") return false;
  }
  return null;
}

/** A tag value as text, without its unit: state names for state tags, on/off for bools. */
export function formatValue(value, tag) {
  if (value === null || value === undefined) return "—";
  switch (tag?.data_type) {
    case "bool": {
      const b = asBoolean(value);
      return b === null ? String(value) : b ? "on" : "off";
    }
    case "state": {
      const name = tag.states?.[String(value)];
      return typeof name === "string" ? name : String(value);
    }
    case "int":
      return typeof value === "number" && Number.isFinite(value)
        ? String(Math.round(value))
        : String(value);
    case "float":
      return typeof value === "number" ? formatNumber(value, decimalsFor(value, tag)) : String(value);
    default:
      if (typeof value === "number") return formatNumber(value, decimalsFor(value, tag));
      return String(value);
  }
}

/** Value and unit as one string, for read-outs. Units make no sense after state names. */
export function formatWithUnit(value, tag) {
  const text = formatValue(value, tag);
  const unit = tag?.unit;
  const unitless = tag?.data_type === "bool" || tag?.data_type === "state" || text === "—";
  return unit && !unitless ? `${text} ${unit}` : text;
}

/** "now", "2 s ago", "5 min ago", "3 h ago", "2 d ago"; a future stamp (clock skew) says so. */
export function formatAge(ageMs) {
  if (typeof ageMs !== "number" || !Number.isFinite(ageMs)) return "—";
  if (ageMs < -2000) return `in ${spanText(-ageMs)} (clock ahead)`;
  if (ageMs < 1000) return "now";
  return `${spanText(ageMs)} ago`;
}

function spanText(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

/**
 * Milliseconds since the epoch from an ISO 8601 string, or NaN. The API sends UTC; a stamp
 * without a zone is read as UTC too rather than as the browser's local time.
 */
export function parseTimestamp(text) {
  if (typeof text !== "string" || text === "") return Number.NaN;
  const zoned = /(Z|[+-]\d\d:?\d\d)$/i.test(text);
  return Date.parse(zoned ? text : `${text}Z`);
}

const pad2 = (n) => String(n).padStart(2, "0");

/** Local wall-clock time "14:03" or "14:03:07". */
export function formatClock(ms, withSeconds = true) {
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** Local "5 Mar". */
export function formatDay(ms) {
  const d = new Date(ms);
  return `${d.getDate()} ${MONTHS[d.getMonth()]}`;
}

/** Local "2024-03-05 14:03:07", the form engineers paste into reports. */
export function formatDateTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatClock(ms)}`;
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}
