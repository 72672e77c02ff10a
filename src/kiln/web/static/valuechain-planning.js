// Material planning: "Run planning" (valuechain:plan) and the proposals it made, a row each
// (kind, material, quantity, release, due, late, state). A row opens into its reason: the
// engine's one-sentence summary, the demands it covers (pegging), and the netting that sized
// it (stock, reservations, safety stock, open supply, lot rules, lead times). A planner
// confirms a proposal (a work order asks for the line it runs on) or dismisses it.

import { h } from "./admin-dom.js";
import { badge } from "./valuechain-orders.js";
import { qty, stateLabel } from "./valuechain-model.js";

const KIND_LABELS = { work_order: "Work order", purchase_order: "Purchase order" };
const PEG_LABELS = { sales_order: "Sales order", proposal: "Parent's proposal" };

function explanation(p) {
  const e = p.explanation ?? {};
  const pegs = e.pegging ?? [];
  const facts = [
    ["Needed on", e.need],
    ["Stock on hand", qty(e.stock_on_hand)],
    ["Reserved", qty(e.reserved)],
    ["Safety stock", qty(e.safety_stock)],
    ["Open supply", `${qty(e.open_supply_quantity)}${e.open_supply?.length ? ` (${e.open_supply.join(", ")})` : ""}`],
    ["Planned before", qty(e.planned_before)],
    ["Gross requirement", qty(e.gross_requirement)],
    ["Projected available", qty(e.projected_available)],
    ["Net requirement", qty(e.net_requirement)],
    ["Lot rule", (e.lot_rules ?? []).map(stateLabel).join(" then ") || "—"],
    ["Order of the day", `${e.split ?? 1} of ${e.splits ?? 1}`],
    ["Lead times (days)", `safety ${e.safety_lead_days ?? 0}, purchasing ${e.purchasing_lead_days ?? 0}, supplier ${e.supplier_lead_days ?? 0}, manufacturing ${e.manufacturing_lead_days ?? 0}`],
    ["Release the lead times ask for", e.planned_release],
  ];
  if (p.supplier) facts.unshift(["Supplier", p.supplier]);
  return h(
    "div",
    { className: "vc-explain-body" },
    h("p", { className: "vc-summary" }, p.summary ?? ""),
    h("h4", {}, "Demands it covers"),
    pegs.length === 0
      ? h("p", { className: "vc-empty" }, "None: reservations and safety stock.")
      : h(
          "table",
          { className: "vc-table vc-pegging" },
          h("thead", {}, h("tr", {}, ["Demand", "Id", "Quantity", "Needed"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, pegs.map((g) => h("tr", { dataset: { peg: g.id } }, h("td", {}, PEG_LABELS[g.kind] ?? g.kind), h("td", {}, g.id), h("td", {}, qty(g.quantity)), h("td", {}, g.needed)))),
        ),
    h("h4", {}, "How it was sized"),
    h("dl", { className: "vc-dl" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")])),
  );
}

/** Build the planning tab into `root`. */
export function planningView(root, { api, permissions }) {
  const held = new Set(permissions ?? []);
  const canPlan = held.has("valuechain:plan");
  const run = h("button", { type: "button", className: "button button-primary", dataset: { role: "run" }, hidden: !canPlan }, "Run planning");
  const filter = h(
    "select",
    { name: "state" },
    h("option", { value: "proposed" }, "Undecided"),
    h("option", { value: "" }, "All"),
    h("option", { value: "confirmed" }, "Confirmed"),
    h("option", { value: "dismissed" }, "Dismissed"),
  );
  const lines = h("datalist", { id: "vc-lines" });
  const status = h("p", { className: "vc-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
  const list = h("div", { className: "vc-proposals" });
  root.replaceChildren(
    h("div", { className: "vc-toolbar" }, run, h("label", { className: "vc-field" }, h("span", {}, "Show"), filter)),
    status,
    lines,
    list,
  );
  let proposals = [];
  let stopped = false;
  let generation = 0;
  const open = new Set(); // the proposals whose reason is shown, kept across reloads

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  async function load() {
    const mine = ++generation;
    try {
      const body = await api.proposals();
      if (stopped || mine !== generation) return;
      proposals = body?.proposals ?? [];
    } catch (err) {
      if (stopped || mine !== generation) return;
      say(`Could not load the proposals: ${err?.message ?? err}`, "error");
      return;
    }
    render();
  }

  function render() {
    const shown = proposals.filter((p) => !filter.value || p.state === filter.value);
    if (shown.length === 0) {
      list.replaceChildren(h("p", { className: "vc-empty" }, proposals.length ? "No proposal in this state." : "No proposals yet: run planning."));
      list.dataset.loaded = String(generation);
      return;
    }
    const head = ["", "Kind", "Material", "Quantity", "Release", "Due", "Late", "State", ""];
    list.replaceChildren(
      h(
        "table",
        { className: "vc-table vc-proposal-table" },
        h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { scope: "col", attrs: i === 0 || i === 8 ? { "aria-label": i === 0 ? "Reason" : "Actions" } : {} }, t)))),
        h("tbody", {}, shown.flatMap(rows)),
      ),
    );
    list.dataset.loaded = String(generation);
  }

  function rows(p) {
    const isOpen = open.has(p.id);
    const explain = h("tr", { className: "vc-explain", dataset: { proposal: p.id }, hidden: !isOpen }, h("td", { colSpan: 9 }, isOpen ? explanation(p) : null));
    const toggle = h(
      "button",
      {
        type: "button",
        className: "vc-expand",
        title: "Why this proposal",
        attrs: { "aria-expanded": String(isOpen), "aria-label": `Why ${p.id}` },
        on: {
          click: () => {
            const now = !open.has(p.id);
            if (now) open.add(p.id);
            else open.delete(p.id);
            toggle.setAttribute("aria-expanded", String(now));
            explain.hidden = !now;
            explain.firstChild.replaceChildren(...(now ? [explanation(p)] : []));
          },
        },
      },
      "▸",
    );
    const actions = h("td", { className: "vc-actions" });
    if (canPlan && p.state === "proposed") {
      actions.append(
        h("button", { type: "button", className: "button button-primary", dataset: { action: "confirm" }, on: { click: () => confirmIt(p, actions) } }, p.kind === "work_order" ? "Confirm…" : "Confirm"),
        h("button", { type: "button", className: "button", dataset: { action: "dismiss" }, on: { click: () => dismissIt(p) } }, "Dismiss"),
      );
    } else if (p.order_id) {
      actions.append(h("span", { className: "vc-muted" }, `Order ${p.order_id}`));
    }
    const row = h(
      "tr",
      { className: "vc-proposal", dataset: { proposal: p.id, kind: p.kind, state: p.state, late: String(Boolean(p.late)) } },
      h("td", {}, toggle),
      h("td", {}, KIND_LABELS[p.kind] ?? p.kind),
      h("td", {}, p.material),
      h("td", { className: "vc-num" }, qty(p.quantity)),
      h("td", {}, p.release),
      h("td", {}, p.due),
      h("td", {}, p.late ? h("span", { className: "vc-late" }, "Late") : "—"),
      h("td", {}, badge(p.state)),
      actions,
    );
    return [row, explain];
  }

  async function confirmIt(p, cell) {
    if (p.kind !== "work_order") {
      await decide(() => api.confirm(p.id), (r) => `Proposal confirmed: purchase order ${r?.order_id} is a draft to send.`);
      return;
    }
    // A work order runs on a line: ask for it beside the buttons.
    if (cell.querySelector("form")) return;
    const input = h("input", { name: "line", required: true, maxLength: 512, autocomplete: "off", spellcheck: false, attrs: { list: "vc-lines", "aria-label": `Line for ${p.id}` } });
    const form = h(
      "form",
      { className: "vc-line-form", dataset: { form: "confirm-line" } },
      h("label", { className: "vc-field" }, h("span", {}, "Line"), input),
      h("button", { type: "submit", className: "button button-primary" }, "Create work order"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await decide(() => api.confirm(p.id, input.value.trim()), (r) => `Proposal confirmed: work order ${r?.order_id} is planned on ${input.value.trim()}.`);
    });
    cell.append(form);
    input.focus();
  }

  async function dismissIt(p) {
    await decide(() => api.dismiss(p.id), () => `Proposal ${p.id} dismissed: planning will not propose it again.`);
  }

  async function decide(fn, done) {
    try {
      const result = await fn();
      say(done(result), "ok");
    } catch (err) {
      say(err?.message ?? String(err), "error");
    }
    await load();
  }

  run.addEventListener("click", async () => {
    run.disabled = true;
    say("Planning…");
    try {
      const r = await api.planRun();
      const parts = [`${r.proposals} proposals for ${r.today}`];
      if (r.run) parts.push(`run ${r.run}`);
      if (r.late) parts.push(`${r.late} late`);
      say([parts.join(", "), ...(r.notes ?? [])].join(". "), r.notes?.length ? "error" : "ok");
    } catch (err) {
      say(err?.message ?? String(err), "error");
    } finally {
      run.disabled = false;
    }
    await load();
  });
  filter.addEventListener("change", render);

  // The lines production knows, as suggestions for a work order's line.
  if (held.has("values:read") && canPlan) {
    api.productionAssets().then(
      (body) => {
        const found = new Set();
        for (const a of body?.assets ?? []) found.add(a.line || String(a.asset ?? "").split("/").slice(0, -1).join("/"));
        lines.replaceChildren(...[...found].filter(Boolean).sort().map((l) => h("option", { value: l })));
      },
      () => {},
    );
  }
  load();
  return () => {
    stopped = true;
    generation += 1;
  };
}
