// The value chain pages' own rules, kept free of the DOM so that node can run them: which
// orders are open or late, what their lines add up to, which buttons a state and a user's
// permissions allow, the location tree of the stock, the genealogy graph's layout and who is
// a partner. The server decides all of this again; these only decide what to offer.

// Open states: the ones an order can still move out of towards delivery (trade.py, orders.py).
export const OPEN_STATES = {
  sales: ["draft", "confirmed", "in_production"],
  purchase: ["draft", "sent", "confirmed", "partially_received"],
  work: ["planned", "released", "running", "paused"],
};

export const STATES = {
  sales: ["draft", "confirmed", "in_production", "shipped", "closed", "cancelled"],
  purchase: ["draft", "sent", "confirmed", "partially_received", "received", "closed", "cancelled"],
  work: ["planned", "released", "running", "paused", "completed", "cancelled"],
};

// The actions the board offers, each with the permission the route asks for. Only the state
// machines' transitions (kiln.valuechain.trade) that a planner takes from the board: the rest
// (start_production, ship, close; receipts move a purchase order by themselves) happen elsewhere.
export const SALES_ACTIONS = { draft: ["confirm", "cancel"], confirmed: ["cancel"], in_production: ["cancel"] };
export const PURCHASE_ACTIONS = { draft: ["send", "cancel"], sent: ["cancel"], confirmed: ["cancel"] };
export const RECEIVABLE = ["sent", "confirmed", "partially_received"];

/** A state name for people: "partially_received" -> "partially received". */
export function stateLabel(state) {
  return String(state ?? "").replaceAll("_", " ");
}

/** The colour family of a state badge: open work, done, stopped or not started. */
export function stateKind(state) {
  if (["shipped", "received", "closed", "completed", "confirmed"].includes(state)) return "good";
  if (state === "cancelled" || state === "dismissed") return "bad";
  if (["draft", "planned", "proposed"].includes(state)) return "idle";
  return "warn";
}

/** The local calendar day of `date` (default now) as YYYY-MM-DD, how the API writes dates. */
export function isoDay(date = new Date()) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** Decimal strings added as numbers, shown without float noise ("0.30000000000000004"). */
export function sum(values) {
  const total = values.reduce((acc, v) => acc + Number(v ?? 0), 0);
  return Number(total.toFixed(6));
}

export function qty(value) {
  const n = Number(value);
  return Number.isFinite(n) ? String(Number(n.toFixed(6))) : "—";
}

function earliest(days) {
  const known = days.filter(Boolean).sort();
  return known.length ? known[0] : null;
}

/**
 * One row of the orders board from a sales order: what is still to ship and when, late when an
 * open line's promised date (else its due date) is before `today`.
 */
export function salesRow(order, today) {
  const open = OPEN_STATES.sales.includes(order.state);
  const lines = (order.lines ?? []).map((l) => {
    const done = sum((l.shipments ?? []).map((s) => s.quantity));
    return { ...l, done, rest: Math.max(0, Number(l.quantity) - done) };
  });
  const pending = lines.filter((l) => l.rest > 0);
  const due = earliest((open ? pending : lines).map((l) => l.due));
  const promised = earliest((open ? pending : lines).map((l) => l.promised));
  const late = open && pending.some((l) => (l.promised ?? l.due) < today);
  return {
    kind: "sales",
    id: order.id,
    party: order.customer,
    materials: [...new Set(lines.map((l) => l.material))],
    ordered: sum(lines.map((l) => l.quantity)),
    done: sum(lines.map((l) => l.done)),
    open: open ? sum(pending.map((l) => l.rest)) : 0,
    state: order.state,
    version: order.version,
    due,
    promised,
    late,
  };
}

/** One row from a purchase order: late when an open line's promised date is before `today`. */
export function purchaseRow(order, today) {
  const open = OPEN_STATES.purchase.includes(order.state);
  const lines = (order.lines ?? []).map((l) => {
    const done = sum((l.receipts ?? []).map((r) => r.quantity));
    return { ...l, done, rest: Math.max(0, Number(l.quantity) - done) };
  });
  const pending = lines.filter((l) => l.rest > 0);
  return {
    kind: "purchase",
    id: order.id,
    party: order.supplier,
    materials: [...new Set(lines.map((l) => l.material))],
    ordered: sum(lines.map((l) => l.quantity)),
    done: sum(lines.map((l) => l.done)),
    open: open ? sum(pending.map((l) => l.rest)) : 0,
    state: order.state,
    version: order.version,
    due: null,
    promised: earliest((open ? pending : lines).map((l) => l.promised)),
    late: open && pending.some((l) => l.promised < today),
    lines,
  };
}

/** One row from a production work order (GET /orders): due is a time, late once it passed. */
export function workRow(order, nowMs) {
  const open = OPEN_STATES.work.includes(order.state);
  const dueMs = typeof order.due_us === "number" ? order.due_us / 1000 : null;
  return {
    kind: "work",
    id: order.id,
    party: order.line,
    materials: [order.product],
    ordered: Number(order.quantity),
    done: null, // counted by production while it runs: the Production page shows it
    open: open ? Number(order.quantity) : 0,
    state: order.state,
    version: order.version,
    due: dueMs === null ? null : isoDay(new Date(dueMs)),
    promised: null,
    late: open && dueMs !== null && dueMs < nowMs,
  };
}

/** Whether a row passes the board's filter: "open", "late", "all" or one state name. */
export function passes(row, filter) {
  if (filter === "all") return true;
  if (filter === "open") return OPEN_STATES[row.kind].includes(row.state);
  if (filter === "late") return row.late;
  return row.state === filter;
}

/** The buttons a sales or purchase order offers to a user holding `permissions`. */
export function orderActions(kind, state, permissions) {
  const held = new Set(permissions ?? []);
  const out = [];
  if (held.has("valuechain:plan")) {
    const table = kind === "sales" ? SALES_ACTIONS : kind === "purchase" ? PURCHASE_ACTIONS : {};
    out.push(...(table[state] ?? []));
  }
  if (kind === "purchase" && held.has("valuechain:enter") && RECEIVABLE.includes(state)) out.push("receive");
  return out;
}

/**
 * The stock by location as a tree by path prefix: a node per location that holds stock and
 * per level above it, in path order, each with its depth, its own rows and whether any of its
 * stock (or below it) is held.
 */
export function locationTree(rows) {
  const nodes = new Map();
  const node = (path) => {
    if (!nodes.has(path)) nodes.set(path, { path, name: path.split("/").at(-1), depth: path.split("/").length - 1, rows: [], held: false, lots: 0 });
    return nodes.get(path);
  };
  for (const row of rows) {
    const parts = row.location.split("/");
    for (let i = 1; i <= parts.length; i += 1) {
      const n = node(parts.slice(0, i).join("/"));
      n.lots += row.lots;
      if (row.state === "held") n.held = true;
    }
    node(row.location).rows.push(row);
  }
  return [...nodes.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Where the genealogy graph draws its nodes: a column per depth (what went into the lot to the
 * left of it when walking backward, where it went to the right when walking forward), the
 * nodes of a column in the order the walk reached them. Edges join drawn nodes only.
 */
export function graphLayout(trace, { colWidth = 240, rowHeight = 120, nodeWidth = 190, nodeHeight = 96, pad = 20 } = {}) {
  const backward = trace.direction !== "forward";
  const nodes = trace.nodes ?? [];
  const maxDepth = nodes.reduce((m, n) => Math.max(m, n.depth), 0);
  const perColumn = new Map();
  const placed = new Map();
  for (const n of nodes) {
    const column = backward ? maxDepth - n.depth : n.depth;
    const row = perColumn.get(column) ?? 0;
    perColumn.set(column, row + 1);
    placed.set(n.id, { ...n, column, row, x: pad + column * colWidth, y: pad + row * rowHeight });
  }
  const rows = Math.max(1, ...perColumn.values());
  const edges = [];
  const seen = new Set();
  for (const e of trace.edges ?? []) {
    const a = placed.get(e.source);
    const b = placed.get(e.target);
    const key = `${e.source}>${e.target}>${e.transaction_id}`;
    if (!a || !b || seen.has(key)) continue;
    seen.add(key);
    edges.push({ edge: e, from: a, to: b, x1: a.x + nodeWidth, y1: a.y + nodeHeight / 2, x2: b.x, y2: b.y + nodeHeight / 2 });
  }
  return {
    nodes: [...placed.values()],
    edges,
    width: pad * 2 + maxDepth * colWidth + nodeWidth,
    height: pad * 2 + (rows - 1) * rowHeight + nodeHeight,
    nodeWidth,
    nodeHeight,
  };
}

/**
 * Whether the signed-in user is a partner's (a customer's or supplier's): GET /organisations
 * answers a partner with only its own non-enterprise organisations, all of its tenant; the
 * enterprise's users see the enterprise (when declared) or other tenants' partners. A tenant
 * with no organisation in sight is the enterprise's only when it is the default tenant
 * (where the enterprise lives until one is declared).
 */
export function isPartner(user, organisations) {
  const tenant = user?.tenant ?? "default";
  const orgs = organisations ?? [];
  if (orgs.some((o) => o.kind === "enterprise")) return false;
  if (orgs.some((o) => o.tenant !== tenant)) return false;
  return tenant !== "default";
}

/** Lot ids typed into a box: separated by commas, spaces or new lines, each once. */
export function lotIds(text) {
  return [...new Set(String(text ?? "").split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean))];
}
