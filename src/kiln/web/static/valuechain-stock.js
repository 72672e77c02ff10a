// Stock: the inventory by location (GET /inventory) as a tree of location paths, each location
// with its quantity per material and held stock marked; a location opens into its lots (there
// and below it). A partner's portal has no inventory (it is the enterprise's) but lists the
// lots it supplied or received. A lot's id opens its genealogy.

import { h } from "./admin-dom.js";
import { badge } from "./valuechain-orders.js";
import { locationTree, qty } from "./valuechain-model.js";

function lotTable(lots, traceLot, { partner = false } = {}) {
  if (lots.length === 0) return h("p", { className: "vc-empty" }, "No lots.");
  const head = ["Lot", "Material", "Quantity", "State", "Location", partner ? "Order" : "Supplier / customer", "Held because"];
  return h(
    "table",
    { className: "vc-table vc-lots" },
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      lots.map((lot) =>
        h(
          "tr",
          { className: "vc-lot", dataset: { lot: lot.id, state: lot.state } },
          h("td", {}, h("button", { type: "button", className: "vc-link", title: "Its genealogy", on: { click: () => traceLot(lot.id) } }, lot.id)),
          h("td", {}, lot.material),
          h("td", { className: "vc-num" }, `${qty(lot.quantity)} ${lot.unit}`),
          h("td", {}, badge(lot.state)),
          h("td", {}, lot.location),
          h("td", {}, partner ? lot.purchase_order ?? lot.sales_order ?? "—" : [lot.supplier, lot.customer].filter(Boolean).join(" → ") || "—"),
          h("td", {}, lot.hold_reason ?? ""),
        ),
      ),
    ),
  );
}

/** The inventory tab (the enterprise's) into `root`; `traceLot(id)` opens a genealogy. */
export function stockView(root, { api, traceLot }) {
  const status = h("p", { className: "vc-message", hidden: true, attrs: { role: "status" } });
  const tree = h("div", { className: "vc-locations", attrs: { role: "list", "aria-label": "Locations" } });
  const detail = h("section", { className: "vc-location-lots", attrs: { "aria-live": "polite" } });
  const refresh = h("button", { type: "button", className: "button", on: { click: () => load() } }, "Refresh");
  root.replaceChildren(h("div", { className: "vc-toolbar" }, refresh), status, h("div", { className: "vc-stock" }, tree, detail));
  let stopped = false;
  let selected = null;
  let generation = 0;

  async function load() {
    const mine = ++generation;
    let rows;
    try {
      rows = (await api.inventory())?.inventory ?? [];
    } catch (err) {
      if (stopped || mine !== generation) return;
      status.hidden = false;
      status.dataset.kind = "error";
      status.textContent = `Could not load the inventory: ${err?.message ?? err}`;
      return;
    }
    if (stopped || mine !== generation) return;
    status.hidden = true;
    const nodes = locationTree(rows);
    if (nodes.length === 0) {
      tree.replaceChildren(h("p", { className: "vc-empty" }, "No stock on hand."));
    } else {
      tree.replaceChildren(...nodes.map(locationRow));
    }
    tree.dataset.loaded = String(mine);
    if (selected) openLocation(selected);
  }

  function locationRow(node) {
    const amounts = node.rows.map((r) =>
      h(
        "li",
        { className: "vc-stock-row", dataset: { material: r.material, state: r.state } },
        h("span", { className: "vc-stock-material" }, r.material),
        h("span", { className: "vc-num" }, `${qty(r.quantity)} ${r.unit}`),
        h("span", { className: "vc-muted" }, `${r.lots} lot${r.lots === 1 ? "" : "s"}`),
        r.state === "held" ? h("span", { className: "vc-held", title: "Held: it may not be used or shipped" }, "Held") : null,
      ),
    );
    const button = h(
      "button",
      {
        type: "button",
        className: "vc-location-button",
        attrs: { "aria-pressed": String(selected === node.path), "aria-label": `${node.path}: its lots` },
        on: { click: () => openLocation(node.path) },
      },
      h("span", { className: "vc-location-name" }, node.name),
      h("span", { className: "vc-muted" }, `${node.lots} lot${node.lots === 1 ? "" : "s"}`),
      node.held ? h("span", { className: "vc-held" }, "Held stock") : null,
    );
    const el = h(
      "div",
      { className: "vc-location", dataset: { location: node.path, held: String(node.held) }, attrs: { role: "listitem" } },
      button,
      amounts.length ? h("ul", { className: "vc-stock-rows" }, amounts) : null,
    );
    el.style.setProperty("--vc-depth", String(node.depth));
    return el;
  }

  async function openLocation(path) {
    selected = path;
    for (const b of tree.querySelectorAll(".vc-location")) {
      b.querySelector("button")?.setAttribute("aria-pressed", String(b.dataset.location === path));
    }
    detail.replaceChildren(h("h3", {}, `Lots at ${path}`), h("p", { className: "vc-muted" }, "Loading…"));
    try {
      const lots = ((await api.lots(path))?.lots ?? []).filter((l) => l.state === "available" || l.state === "held");
      if (stopped || selected !== path) return;
      detail.replaceChildren(h("h3", {}, `Lots at ${path}`), lotTable(lots, traceLot));
      detail.dataset.location = path;
    } catch (err) {
      if (stopped || selected !== path) return;
      detail.replaceChildren(h("p", { className: "vc-message", dataset: { kind: "error" } }, `Could not load the lots: ${err?.message ?? err}`));
    }
  }

  load();
  return () => {
    stopped = true;
  };
}

/** A partner's lots (the ones it supplied or received) into `root`. */
export function lotsView(root, { api, traceLot }) {
  const box = h("div", { className: "vc-partner-lots" });
  root.replaceChildren(box);
  let stopped = false;
  api.lots().then(
    (body) => {
      if (stopped) return;
      box.replaceChildren(lotTable(body?.lots ?? [], traceLot, { partner: true }));
      box.dataset.loaded = "true";
    },
    (err) => {
      if (!stopped) box.replaceChildren(h("p", { className: "vc-message", dataset: { kind: "error" } }, `Could not load your lots: ${err?.message ?? err}`));
    },
  );
  return () => {
    stopped = true;
  };
}
