// The work-orders board: a column per state (planned, released, running, paused, completed),
// a card per order with its product, line, quantity, progress (good units counted while it ran
// over the quantity, GET /orders/{id}) and due time. The buttons on a card are the actions its
// state allows that the signed-in user may take (release and cancel are the planner's; start,
// pause, resume and complete the operator's); planners also get a form to create an order.

import { h } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import { ORDER_COLUMNS, lineOf, orderActions, orderProgress, percent } from "./production-model.js";

export const REFRESH_MS = 5_000;
const COLUMN_LABELS = { planned: "Planned", released: "Released", running: "Running", paused: "Paused", completed: "Completed" };
const ACTION_LABELS = { release: "Release", start: "Start", pause: "Pause", resume: "Resume", complete: "Complete", cancel: "Cancel" };
// Progress is asked for the orders that have run; completed ones only while they are recent.
const PROGRESS_STATES = new Set(["running", "paused", "completed"]);
const COMPLETED_SHOWN = 20;

/** Build the board into `root`; `permissions` decide the buttons and the form. */
export function ordersView(root, { api, permissions }) {
  const held = new Set(permissions ?? []);
  const status = h("p", { className: "prd-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
  const board = h("div", { className: "prd-orders" });
  const formBox = h("div", { className: "prd-order-form-box" });
  root.replaceChildren(formBox, status, board);
  let timer = 0;
  let stopped = false;
  let generation = 0;
  const progressCache = new Map(); // id -> {version, progress}

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  async function createForm() {
    if (!held.has("production:plan")) return;
    let products = [];
    let lines = [];
    try {
      const [p, a] = await Promise.all([api.products(), api.assets()]);
      products = p?.products ?? [];
      lines = [...new Set((a?.assets ?? []).map(lineOf).filter(Boolean))].sort();
    } catch (err) {
      say(`Could not load products and lines: ${err?.message ?? err}`, "error");
    }
    const field = (label, el) => h("label", { className: "prd-filter" }, h("span", {}, label), el);
    const form = h(
      "form",
      { className: "prd-order-form", dataset: { form: "order-create" } },
      h("h3", {}, "New work order"),
      field("Order number", h("input", { name: "id", required: true, maxLength: 64, autocomplete: "off", spellcheck: false })),
      field("Product", h("select", { name: "product", required: true }, products.map((p) => h("option", { value: p.code }, `${p.code} · ${p.name}`)))),
      field("Line", h("select", { name: "line", required: true }, lines.map((l) => h("option", { value: l }, l)))),
      field("Quantity", h("input", { name: "quantity", type: "number", min: 1, step: "any", required: true })),
      field("Due", h("input", { name: "due", type: "datetime-local", step: 60 })),
      field("State", h("select", { name: "state" }, h("option", { value: "planned" }, "Planned"), h("option", { value: "released" }, "Released"))),
      field("Comment", h("input", { name: "comment", maxLength: 2000, autocomplete: "off" })),
      h("button", { type: "submit", className: "button button-primary" }, "Create order"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = Object.fromEntries(new FormData(form).entries());
      const order = { id: v.id.trim(), product: v.product, line: v.line, quantity: Number(v.quantity), state: v.state, comment: String(v.comment ?? "").trim() };
      if (v.due) order.due = new Date(v.due).toISOString();
      try {
        await api.createOrder(order);
        say(`Order ${order.id} created (${order.state}).`, "ok");
        form.reset();
        await load();
      } catch (err) {
        say(err?.message ?? String(err), "error");
      }
    });
    formBox.replaceChildren(h("details", { className: "prd-order-new" }, h("summary", { className: "button" }, "New work order…"), form));
  }

  async function progressOf(order) {
    if (!PROGRESS_STATES.has(order.state)) return null;
    const cached = progressCache.get(order.id);
    // A completed order's counts no longer change; a running one's do.
    if (cached && cached.version === order.version && order.state === "completed") return cached.progress;
    try {
      const body = await api.order(order.id);
      progressCache.set(order.id, { version: order.version, progress: body?.progress ?? null });
      return body?.progress ?? null;
    } catch {
      return cached?.progress ?? null;
    }
  }

  async function load() {
    clearTimeout(timer);
    const mine = ++generation;
    let orders;
    try {
      const body = await api.orders({ limit: 500 });
      orders = (body?.orders ?? []).filter((o) => ORDER_COLUMNS.includes(o.state));
    } catch (err) {
      if (!stopped && mine === generation) {
        say(`Could not load the orders: ${err?.message ?? err}`, "error");
        timer = setTimeout(load, REFRESH_MS);
      }
      return;
    }
    const byState = Object.fromEntries(ORDER_COLUMNS.map((s) => [s, []]));
    for (const o of orders) byState[o.state].push(o);
    byState.completed = byState.completed.sort((a, b) => b.updated_us - a.updated_us).slice(0, COMPLETED_SHOWN);
    const shown = ORDER_COLUMNS.flatMap((s) => byState[s]);
    const progress = new Map(await Promise.all(shown.map(async (o) => [o.id, await progressOf(o)])));
    if (stopped || mine !== generation) return;
    board.replaceChildren(
      ...ORDER_COLUMNS.map((state) =>
        h(
          "section",
          { className: "prd-column", dataset: { state } },
          h("h3", {}, COLUMN_LABELS[state], h("span", { className: "prd-count" }, String(byState[state].length))),
          byState[state].length === 0 ? h("p", { className: "prd-empty" }, "None") : byState[state].map((o) => card(o, progress.get(o.id))),
        ),
      ),
    );
    board.dataset.loaded = String(mine);
    timer = setTimeout(load, REFRESH_MS);
  }

  function card(order, progress) {
    const share = orderProgress(progress, order.quantity);
    const fill = h("span", { className: "prd-bar-fill" });
    fill.style.width = `${(share ?? 0) * 100}%`;
    const good = progress?.counts?.good;
    const actions = orderActions(order.state, [...held]);
    return h(
      "article",
      { className: "prd-order", dataset: { order: order.id, state: order.state, version: String(order.version) } },
      h("header", {}, h("strong", {}, order.id), h("span", { className: "prd-order-product" }, order.product)),
      h("p", { className: "prd-order-line" }, order.line),
      h("p", { className: "prd-order-qty" }, `${typeof good === "number" ? `${good} of ` : ""}${order.quantity}`),
      h("span", { className: "prd-bar", title: share === null ? "Not run yet" : `${percent(share)} of the quantity is good` }, fill),
      progress?.oee ? h("p", { className: "prd-order-oee", title: progress.oee.formula }, `OEE ${percent(progress.oee.value)}`) : null,
      h("p", { className: "prd-order-due" }, order.due_us ? `Due ${formatDateTime(order.due_us / 1000)}` : "No due date"),
      actions.length
        ? h(
            "div",
            { className: "prd-order-actions" },
            actions.map((a) =>
              h("button", { type: "button", className: `button prd-big${a === "cancel" ? "" : " button-primary"}`, dataset: { action: a }, on: { click: () => act(order, a) } }, ACTION_LABELS[a]),
            ),
          )
        : null,
    );
  }

  async function act(order, action) {
    if (action === "cancel" && !confirm(`Cancel order ${order.id}? A cancelled order cannot be started again.`)) return;
    try {
      await api.orderAction(order.id, action, { expectedVersion: order.version });
      say(`Order ${order.id}: ${action} done.`, "ok");
    } catch (err) {
      say(err?.message ?? String(err), "error");
    }
    await load();
  }

  createForm();
  load();
  return () => {
    stopped = true;
    generation += 1;
    clearTimeout(timer);
  };
}
