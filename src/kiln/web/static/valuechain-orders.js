// The orders board: a column each for sales, work (production's) and purchase orders, a card
// per order with its party, materials, what is open and done, its state, its due or promised
// date, and a mark when it is late. The filter shows open, late, all or one state. The buttons
// are the actions the state allows and the user may take: a planner confirms or cancels a sales
// order and sends a purchase order; whoever books stock records a goods receipt. A partner sees
// its own sales or purchase orders, without buttons. The board does not poll: a form half
// filled in must not vanish under a refresh; "Refresh" and every action load it again.

import { h } from "./admin-dom.js";
import { STATES, isoDay, orderActions, passes, purchaseRow, qty, salesRow, stateKind, stateLabel, workRow } from "./valuechain-model.js";

const COLUMNS = [
  { kind: "sales", label: "Sales orders", party: "Customer" },
  { kind: "work", label: "Work orders", party: "Line" },
  { kind: "purchase", label: "Purchase orders", party: "Supplier" },
];
const ACTION_LABELS = { confirm: "Confirm", cancel: "Cancel", send: "Send", receive: "Goods receipt…" };

export function badge(state) {
  return h("span", { className: "vc-badge", dataset: { kind: stateKind(state), state } }, stateLabel(state));
}

/** Build the board into `root`. */
export function ordersView(root, { api, permissions, partner }) {
  const held = new Set(permissions ?? []);
  const states = [...new Set(Object.values(STATES).flat())];
  const filter = h(
    "select",
    { name: "filter" },
    h("option", { value: "open" }, "Open orders"),
    h("option", { value: "late" }, "Late orders"),
    h("option", { value: "all" }, "All orders"),
    h("optgroup", { label: "In one state" }, states.map((s) => h("option", { value: s }, stateLabel(s)))),
  );
  const refresh = h("button", { type: "button", className: "button" }, "Refresh");
  const status = h("p", { className: "vc-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
  const board = h("div", { className: "vc-board" });
  root.replaceChildren(
    h("div", { className: "vc-toolbar" }, h("label", { className: "vc-field" }, h("span", {}, "Show"), filter), refresh),
    status,
    board,
  );
  let rows = { sales: [], work: [], purchase: [] };
  let notes = {};
  let stopped = false;
  let generation = 0;

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  async function load() {
    const mine = ++generation;
    const today = isoDay();
    const nowMs = Date.now();
    const [sales, purchase, work] = await Promise.allSettled([
      api.salesOrders(),
      api.purchaseOrders(),
      partner ? Promise.resolve({ orders: [] }) : api.workOrders(),
    ]);
    if (stopped || mine !== generation) return;
    notes = {};
    const take = (result, kind, toRow) => {
      if (result.status === "fulfilled") return (result.value?.orders ?? []).map(toRow);
      notes[kind] = result.reason?.status === 403 ? "Your roles do not include reading these." : `Could not load them: ${result.reason?.message ?? result.reason}`;
      return [];
    };
    rows = {
      sales: take(sales, "sales", (o) => salesRow(o, today)),
      work: take(work, "work", (o) => workRow(o, nowMs)),
      purchase: take(purchase, "purchase", (o) => purchaseRow(o, today)),
    };
    render();
  }

  function render() {
    const wanted = filter.value;
    // A partner has one side of the trade: only the columns it has orders in.
    const columns = partner ? COLUMNS.filter((c) => c.kind !== "work" && rows[c.kind].length > 0) : COLUMNS;
    if (columns.length === 0) {
      board.replaceChildren(h("p", { className: "vc-empty" }, "No orders of yours are on record."));
    } else {
      board.replaceChildren(
        ...columns.map((c) => {
          const shown = rows[c.kind].filter((r) => passes(r, wanted));
          return h(
            "section",
            { className: "vc-column", dataset: { kind: c.kind }, attrs: { "aria-label": c.label } },
            h("h3", {}, c.label, h("span", { className: "vc-count" }, String(shown.length))),
            notes[c.kind] ? h("p", { className: "vc-empty" }, notes[c.kind]) : null,
            shown.length === 0 && !notes[c.kind] ? h("p", { className: "vc-empty" }, "None") : shown.map((r) => card(r, c)),
          );
        }),
      );
    }
    board.dataset.loaded = String(generation);
  }

  function card(row, column) {
    const actions = partner ? [] : orderActions(row.kind, row.state, [...held]);
    const dates = [];
    if (row.due) dates.push(h("span", { dataset: { date: "due" } }, `Due ${row.due}`));
    if (row.promised) dates.push(h("span", { dataset: { date: "promised" } }, `Promised ${row.promised}`));
    const amounts = row.done === null ? `${qty(row.ordered)} ordered` : `${qty(row.open)} open · ${qty(row.done)} done of ${qty(row.ordered)}`;
    const el = h(
      "article",
      { className: "vc-order", dataset: { order: row.id, kind: row.kind, state: row.state, late: String(row.late) } },
      h("header", {}, h("strong", { className: "vc-order-id" }, row.id), badge(row.state)),
      h("p", { className: "vc-order-party" }, `${column.party}: ${row.party}`),
      h("p", { className: "vc-order-materials" }, row.materials.join(", ")),
      h("p", { className: "vc-order-qty" }, amounts),
      h("p", { className: "vc-order-dates" }, dates.length ? dates : "No date", row.late ? h("span", { className: "vc-late", title: "Its date has passed and it is still open" }, "Late") : null),
    );
    if (actions.length) {
      const box = h("div", { className: "vc-order-actions" });
      for (const a of actions) {
        box.append(
          h(
            "button",
            { type: "button", className: `button${a === "cancel" ? "" : " button-primary"}`, dataset: { action: a }, on: { click: () => act(row, a, el) } },
            ACTION_LABELS[a],
          ),
        );
      }
      el.append(box);
    }
    return el;
  }

  async function act(row, action, el) {
    if (action === "receive") {
      el.querySelector(".vc-receipt")?.remove();
      el.append(receiptForm(row));
      el.querySelector(".vc-receipt input[name='quantity']")?.focus();
      return;
    }
    if (action === "cancel" && !confirm(`Cancel ${row.kind} order ${row.id}? It cannot be reopened.`)) return;
    try {
      if (row.kind === "sales") await api.salesAction(row.id, action, row.version);
      else await api.purchaseAction(row.id, action, row.version);
      say(`Order ${row.id}: ${action} done.`, "ok");
    } catch (err) {
      say(err?.message ?? String(err), "error");
    }
    await load();
  }

  function receiptForm(row) {
    const open = row.lines.filter((l) => l.rest > 0);
    const field = (label, input) => h("label", { className: "vc-field" }, h("span", {}, label), input);
    const first = open[0] ?? row.lines[0];
    const form = h(
      "form",
      { className: "vc-receipt", dataset: { form: "receipt" }, attrs: { "aria-label": `Goods receipt for ${row.id}` } },
      field("Line", h("select", { name: "line_no" }, (open.length ? open : row.lines).map((l) => h("option", { value: String(l.line_no) }, `${l.line_no}: ${l.material} (${qty(l.rest)} open)`)))),
      field("Quantity", h("input", { name: "quantity", type: "number", min: "0", step: "any", required: true, value: first ? String(first.rest) : "" })),
      field("New lot", h("input", { name: "lot_id", required: true, maxLength: 64, autocomplete: "off", spellcheck: false })),
      field("Location", h("input", { name: "location", required: true, maxLength: 512, autocomplete: "off", spellcheck: false })),
      field("Supplier's lot", h("input", { name: "supplier_lot", maxLength: 128, autocomplete: "off", spellcheck: false })),
      h(
        "div",
        { className: "vc-form-buttons" },
        h("button", { type: "submit", className: "button button-primary" }, "Book receipt"),
        h("button", { type: "button", className: "button", on: { click: () => form.remove() } }, "Close"),
      ),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const v = Object.fromEntries([...new FormData(form).entries()].map(([k, x]) => [k, String(x).trim()]));
      const receipt = { line_no: Number(v.line_no), quantity: v.quantity, lot_id: v.lot_id, location: v.location };
      if (v.supplier_lot) receipt.supplier_lot = v.supplier_lot;
      try {
        await api.receive(row.id, receipt);
        say(`Received ${v.quantity} on ${row.id} as lot ${v.lot_id}.`, "ok");
        await load();
      } catch (err) {
        say(err?.message ?? String(err), "error");
      }
    });
    return form;
  }

  filter.addEventListener("change", render);
  refresh.addEventListener("click", load);
  load();
  return () => {
    stopped = true;
    generation += 1;
  };
}
