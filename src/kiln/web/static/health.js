// The health view: GET /api/v1/health told in words a person reads. Problems come first with
// their reason in full; every part gets one plain line; the raw figures wait behind "Details".

import { formatClock } from "./format.js";

const HEADLINE = { ok: "Healthy", degraded: "Degraded", failed: "Failed" };
const RANK = { failed: 0, degraded: 1, unknown: 2, ok: 3 };
const STATE_WORDS = { ok: "working", degraded: "degraded", failed: "not working", unknown: "state unknown" };

/** Names people use for the subsystems the server reports. */
export const PART_NAMES = {
  bus: "Message bus",
  historian: "Historian",
  model: "Asset model",
  declarations: "Plant configuration",
  identity: "Users and sign-in",
  audit: "Audit log",
  ingest: "HTTP ingest",
  sim: "Virtual factory",
  connectors: "Device connections",
  alarms: "Alarms",
  production: "Production",
  edge: "Edge buffer",
};

function count(n, one, many = `${one}s`) {
  const v = Number(n);
  if (!Number.isFinite(v)) return "";
  return `${v.toLocaleString("en")} ${v === 1 ? one : many}`;
}

/** A figure fit to read: whole numbers grouped, fractions to three significant digits. */
export function plainNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return Number(value.toPrecision(3)).toLocaleString("en", { maximumFractionDigits: 6 });
}

/** "rollup_seconds_sum" -> "rollup seconds sum". */
function plainKey(key) {
  return String(key).replaceAll("_", " ");
}

/**
 * The problems in one part's report, each a sentence: a connector that is not connected (with
 * its reason), an error the part recorded, points it dropped.
 */
export function problemsOf(name, sub) {
  const detail = sub?.detail && typeof sub.detail === "object" ? sub.detail : {};
  const out = [];
  if (name === "connectors") {
    for (const [conn, info] of Object.entries(detail)) {
      if (!info || typeof info !== "object" || info.state === "connected") continue;
      const reason = info.reason ?? info.last_problem;
      out.push(`${conn} (${info.type ?? "connector"}) is ${info.state ?? "in an unknown state"}${reason ? `: ${reason}` : ""}`);
    }
  }
  for (const key of ["last_error", "error", "reason"]) {
    if (typeof detail[key] === "string" && detail[key] !== "") out.push(detail[key]);
  }
  const subscribers = detail.subscribers && typeof detail.subscribers === "object" ? detail.subscribers : {};
  for (const [who, info] of Object.entries(subscribers)) {
    if (Number(info?.dropped_points) > 0) out.push(`${count(info.dropped_points, "value")} dropped on the way to ${who}`);
  }
  return out;
}

/** One plain line saying what a part does now, from the figures it reports. */
export function summaryOf(name, sub) {
  const d = sub?.detail && typeof sub.detail === "object" ? sub.detail : {};
  switch (name) {
    case "bus":
      return `${count(d.published_points, "value")} passed on`;
    case "historian": {
      const queued = Number(d.queue_points) > 0 ? `, ${count(d.queue_points, "value")} waiting` : "";
      return `${count(d.series, "series", "series")}, ${count(d.points, "value")} stored${queued}`;
    }
    case "model":
      return `${count(d.assets, "asset")}, ${count(d.tags, "tag")}`;
    case "declarations":
      return `${count(d.types, "type")} and ${count(d.assets, "asset")} from the configuration`;
    case "identity":
      return `${count(d.users, "user")}, ${count(d.sessions, "session")} open`;
    case "audit":
      return `${count(d.records, "record")} kept`;
    case "ingest":
      return `${count(d.accepted_points, "value")} accepted`;
    case "sim":
      return `${count(d.tags, "tag")} at ${plainNumber(d.rate_hz)} per second`;
    case "connectors": {
      const all = Object.values(d).filter((c) => c && typeof c === "object");
      const up = all.filter((c) => c.state === "connected").length;
      return all.length === 0 ? "none configured" : `${up} of ${count(all.length, "connection")} up`;
    }
    default:
      return "";
  }
}

function detailRows(detail, prefix = "") {
  const rows = [];
  for (const [key, value] of Object.entries(detail ?? {})) {
    const label = prefix ? `${prefix} › ${plainKey(key)}` : plainKey(key);
    if (value && typeof value === "object" && !Array.isArray(value)) rows.push(...detailRows(value, label));
    else if (Array.isArray(value)) rows.push([label, value.length === 0 ? "none" : value.join(", ")]);
    else rows.push([label, value === null ? "none" : plainNumber(value)]);
  }
  return rows;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Render a health report into `panel` ({dot, text, summary, list, checked}). `error` replaces
 * the report when the server did not give one.
 */
export function renderHealth(panel, body, error, { signedIn = false, unreachable = false } = {}) {
  const { dot, text, summary, list, checked } = panel;
  const version = typeof body?.version === "string" ? `Kiln ${body.version} · ` : "";
  checked.textContent = `${version}checked at ${formatClock(Date.now())}, again every 10 s`;
  if (error !== null) {
    dot.dataset.status = "unreachable";
    text.textContent = unreachable ? "Server unreachable" : "Health unknown";
    summary.textContent = unreachable
      ? "The page cannot reach the Kiln server. It keeps trying."
      : "The server did not give a health report.";
    list.replaceChildren(el("li", "health-error", error));
    return;
  }
  const status = body.status in HEADLINE ? body.status : "unknown";
  const subsystems = body.subsystems && typeof body.subsystems === "object" ? body.subsystems : {};
  const parts = Object.entries(subsystems).map(([name, sub]) => {
    const state = String(sub?.status ?? "unknown");
    return { name, sub, state: state in RANK ? state : "unknown", problems: problemsOf(name, sub) };
  });
  const troubled = parts.filter((p) => p.state !== "ok" || p.problems.length > 0);
  dot.dataset.status = status;
  text.textContent = troubled.length > 0 && status !== "ok" ? `${HEADLINE[status]}: ${plainCount(troubled)}` : (HEADLINE[status] ?? `Status ${body.status}`);

  if (parts.length === 0) {
    summary.textContent = signedIn
      ? "The server reported no parts."
      : "Sign in to see how each part of the platform is doing.";
    list.replaceChildren();
    return;
  }
  summary.textContent =
    troubled.length === 0
      ? `All ${parts.length} parts are working.`
      : `${plainCount(troubled)} ${troubled.length === 1 ? "needs" : "need"} attention${troubled.length < parts.length ? "; the rest are working" : ""}.`;
  parts.sort((a, b) => {
    const ta = troubled.includes(a) ? 0 : 1;
    const tb = troubled.includes(b) ? 0 : 1;
    return ta - tb || RANK[a.state] - RANK[b.state];
  });
  list.replaceChildren(...parts.map((p) => partItem(p, troubled.includes(p))));
}

function plainCount(troubled) {
  return troubled.length === 1 ? "1 part" : `${troubled.length} parts`;
}

function partItem({ name, sub, state, problems }, trouble) {
  const item = el("li", trouble ? "health-part trouble" : "health-part");
  item.dataset.part = name;
  const head = el("div", "health-head");
  const subDot = el("span", "dot");
  subDot.dataset.status = state;
  head.append(subDot, el("span", "health-name", PART_NAMES[name] ?? plainKey(name)));
  head.append(el("span", "health-state", STATE_WORDS[state]));
  item.append(head);
  for (const problem of problems) item.append(el("p", "health-problem", problem));
  const line = summaryOf(name, sub);
  if (line) item.append(el("p", "health-line", line));
  const rows = detailRows(sub?.detail);
  if (rows.length > 0) {
    const more = el("details", "health-more");
    more.append(el("summary", "", "Details"));
    const dl = el("dl", "health-figures");
    for (const [key, value] of rows) dl.append(el("dt", "", key), el("dd", "", value));
    more.append(dl);
    item.append(more);
  }
  return item;
}
