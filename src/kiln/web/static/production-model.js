// What the production pages share and can compute without a DOM: the colours and names of the
// state categories, figures as percentages, durations, the work-order state table and the
// pieces of a split stop. Pure, so that node can check it as well as the browser.

/**
 * Category -> [label, colour group]. The group picks the colour in production.css: running
 * green, setup blue, planned stops grey, unplanned stops red (orange for the ones caused by
 * people or material), micro-stops yellow, starved/blocked purple, unknown dark.
 */
export const CATEGORIES = {
  running: ["Running", "running"],
  setup: ["Setup", "setup"],
  planned_stop: ["Planned stop", "planned"],
  planned_maintenance: ["Planned maintenance", "planned"],
  technical: ["Technical stop", "down"],
  quality: ["Quality stop", "down"],
  material: ["Material stop", "loss"],
  operator: ["Operator stop", "loss"],
  planning: ["Planning stop", "loss"],
  micro_stop: ["Micro-stop", "micro"],
  blocked: ["Blocked", "neighbour"],
  starved: ["Starved", "neighbour"],
  unknown: ["Unknown stop", "unknown"],
};

// The fills of the timeline and the Pareto (SVG cannot read a CSS class from data alone).
export const GROUP_COLOURS = {
  running: "#2f9e44",
  setup: "#1c7ed6",
  planned: "#adb5bd",
  down: "#c92a2a",
  loss: "#e8590c",
  micro: "#f0c419",
  neighbour: "#7048e8",
  unknown: "#343a40",
  none: "#dee2e6",
};

export function categoryLabel(category) {
  return CATEGORIES[category]?.[0] ?? (category ? String(category) : "No data");
}

export function categoryGroup(category) {
  return CATEGORIES[category]?.[1] ?? "none";
}

export function categoryColour(category) {
  return GROUP_COLOURS[categoryGroup(category)];
}

/**
 * The line of a followed asset: the engine's answer (its nearest ancestor at level line), or
 * its parent when the engine gives none, as the engine itself falls back to.
 */
export function lineOf(asset) {
  if (typeof asset?.line === "string" && asset.line) return asset.line;
  return String(asset?.asset ?? "").split("/").slice(0, -1).join("/");
}

/** Time a machine counts as stopped (everything but running). */
export function isStop(category) {
  return typeof category === "string" && category !== "running";
}

/** A ratio as "83.3 %", or "—" when there is none (no planned time, nothing produced). */
export function percent(value, decimals = 1) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "—";
  return `${(value * 100).toFixed(decimals)} %`;
}

/** A duration in µs as "1 h 05 min", "12 min 30 s" or "45 s". */
export function duration(us) {
  if (typeof us !== "number" || !Number.isFinite(us)) return "—";
  const s = Math.max(0, Math.round(us / 1e6));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${String(sec).padStart(2, "0")} s`;
  return `${sec} s`;
}

/** An input of a figure in words: times as durations, ratios and counts as numbers. */
export function inputText(name, value) {
  if (name.endsWith("_us")) return duration(value);
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(3);
  return String(value);
}

/** "planned_busy_time_us" -> "Planned busy time". */
export function inputLabel(name) {
  const text = String(name).replace(/_us$/, "").replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export const KPIS = [
  { key: "availability", label: "Availability", short: "A" },
  { key: "performance", label: "Performance", short: "P" },
  { key: "quality", label: "Quality", short: "Q" },
  { key: "oee", label: "OEE", short: "OEE" },
];

// --- work orders -------------------------------------------------------------------------

export const ORDER_COLUMNS = ["planned", "released", "running", "paused", "completed"];

// The order state machine (kiln.production.orders.TRANSITIONS) and who may act (the API's
// ACTION_PERMISSION): the page offers what the server would accept; the server checks again.
export const ORDER_ACTIONS = {
  planned: ["release", "cancel"],
  released: ["start", "cancel"],
  running: ["pause", "complete"],
  paused: ["resume", "complete", "cancel"],
  completed: [],
  cancelled: [],
};

export const ACTION_NEEDS = {
  release: "production:plan",
  cancel: "production:plan",
  start: "production:enter",
  pause: "production:enter",
  resume: "production:enter",
  complete: "production:enter",
};

/** The actions on an order in `state` that a holder of `permissions` may take. */
export function orderActions(state, permissions) {
  const held = new Set(permissions ?? []);
  return (ORDER_ACTIONS[state] ?? []).filter((a) => held.has(ACTION_NEEDS[a]));
}

/** Good units over the ordered quantity, between 0 and 1 (null before the order ran). */
export function orderProgress(progress, quantity) {
  const good = progress?.counts?.good;
  if (typeof good !== "number" || !(quantity > 0)) return null;
  return Math.min(1, Math.max(0, good / quantity));
}

// --- downtime ------------------------------------------------------------------------------

/** Every reason of a tree that carries a category (what may be entered), parents first. */
export function reasonChoices(tree, depth = 0) {
  const out = [];
  for (const node of tree ?? []) {
    if (node.category) out.push({ path: node.path, name: node.name, category: node.category, depth });
    out.push(...reasonChoices(node.children, depth + 1));
  }
  return out;
}

/**
 * Cut times splitting [start, end) into `count` equal pieces (whole seconds, in µs): the
 * starting point a person then moves.
 */
export function evenCuts(startUs, endUs, count) {
  const cuts = [];
  for (let i = 1; i < count; i += 1) {
    const at = startUs + ((endUs - startUs) * i) / count;
    cuts.push(Math.round(at / 1e6) * 1e6);
  }
  return cuts;
}

/**
 * The split request's pieces from the cut times (µs) and a reason and comment per piece; an
 * error text instead when the cuts are not strictly inside the stop and in order.
 */
export function splitPieces(startUs, endUs, cuts, reasons, comments = []) {
  if (reasons.length !== cuts.length + 1) return { error: "Give every piece a reason." };
  let previous = startUs;
  for (const [i, cut] of cuts.entries()) {
    if (!Number.isFinite(cut) || cut <= previous || cut >= endUs) {
      return { error: `Cut ${i + 1} must lie after the previous one and before the stop ends.` };
    }
    previous = cut;
  }
  if (reasons.some((r) => !r)) return { error: "Give every piece a reason." };
  const pieces = reasons.map((reason, i) => {
    const piece = { reason, comment: comments[i] ?? "" };
    if (i < cuts.length) piece.end = cuts[i];
    return piece;
  });
  return { pieces };
}

// --- SPC -----------------------------------------------------------------------------------

export const SPC_CHARTS = [
  { value: "imr", label: "Individuals (I-MR)" },
  { value: "xbar_r", label: "X̄-R" },
  { value: "xbar_s", label: "X̄-S" },
  { value: "p", label: "p (proportion)" },
  { value: "np", label: "np (count defective)" },
  { value: "c", label: "c (defects)" },
  { value: "u", label: "u (defects per unit)" },
];

/** uPlot's columns from the SPC answer: x in ms, the statistic, CL, UCL, LCL, violations. */
export function spcColumns(answer) {
  const points = Array.isArray(answer?.points) ? answer.points : [];
  const xs = [];
  const value = [];
  const cl = [];
  const ucl = [];
  const lcl = [];
  const flagged = [];
  for (const p of points) {
    xs.push(p.time_us / 1000);
    value.push(p.value);
    cl.push(p.limits?.cl ?? null);
    ucl.push(p.limits?.ucl ?? null);
    lcl.push(p.limits?.lcl ?? null);
    flagged.push(Array.isArray(p.rules) && p.rules.length > 0 ? p.value : null);
  }
  return [xs, value, cl, ucl, lcl, flagged];
}
