// The value chain in the page: the orders board (sales, work and purchase orders), material
// planning with the reasons of its proposals, the stock by location, a lot's genealogy as a
// graph and recalls, as tabs of a view that replaces the plant while open (as Production does).
// Offered to users with valuechain:read. A partner's user (a customer's or a supplier's) gets
// the partner portal instead: their own orders and lots, and the genealogy of those when the
// enterprise shares it; no enterprise tab. What each may change follows the permissions
// GET /auth/me lists; the server checks every request again.

import { h } from "./admin-dom.js";
import { ValuechainApi } from "./valuechain-api.js";
import { genealogyView } from "./valuechain-genealogy.js";
import { isPartner } from "./valuechain-model.js";
import { ordersView } from "./valuechain-orders.js";
import { planningView } from "./valuechain-planning.js";
import { recallView } from "./valuechain-recall.js";
import { lotsView, stockView } from "./valuechain-stock.js";

const ENTERPRISE_TABS = [
  { id: "orders", label: "Orders" },
  { id: "planning", label: "Planning" },
  { id: "stock", label: "Inventory" },
  { id: "genealogy", label: "Genealogy" },
  { id: "recall", label: "Recall", needs: "valuechain:plan" },
];
const PARTNER_TABS = [
  { id: "orders", label: "Your orders" },
  { id: "lots", label: "Your lots" },
  { id: "genealogy", label: "Genealogy" },
];

export class ValuechainPage {
  #root;
  #plant;
  #toggle;
  #api;
  #openOrder;
  #user = null;
  #partner = null; // null until GET /organisations has answered for this user
  #tab = "orders";
  #lot = ""; // the lot the genealogy tab shows
  #stop = null;
  #generation = 0;

  /**
   * `root` is the view's container, `plant` the view it replaces, `toggle` the header button;
   * `fetchImpl` the session's fetch; `openOrder(id)` shows a production work order (or null
   * when the user cannot read production's).
   */
  constructor({ root, plant, toggle }, { fetchImpl, openOrder = null }) {
    this.#root = root;
    this.#plant = plant;
    this.#toggle = toggle;
    this.#openOrder = openOrder;
    this.#api = new ValuechainApi(fetchImpl);
    toggle.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
  }

  get isOpen() {
    return !this.#root.hidden;
  }

  get #held() {
    return new Set(this.#user?.permissions ?? []);
  }

  signedIn(user) {
    this.#user = user;
    this.#partner = null;
    this.#toggle.hidden = !this.#held.has("valuechain:read");
    if (this.#toggle.hidden) this.close();
  }

  signedOut() {
    this.#user = null; // first: closing must not show the plant again
    this.close();
    this.#toggle.hidden = true;
    this.#partner = null;
    this.#lot = "";
    this.#tab = "orders";
    this.#root.replaceChildren();
  }

  async open(tab = null) {
    if (this.#user === null || this.#toggle.hidden) return;
    this.#plant.hidden = true;
    this.#root.hidden = false;
    this.#toggle.setAttribute("aria-pressed", "true");
    const mine = ++this.#generation;
    if (this.#partner === null) {
      this.#root.replaceChildren(h("p", { className: "vc-message", attrs: { role: "status" } }, "Loading the value chain…"));
      try {
        const body = await this.#api.organisations();
        if (mine !== this.#generation || this.#user === null) return;
        this.#partner = isPartner(this.#user, body?.organisations);
        this.#root.dataset.partner = String(this.#partner);
      } catch (err) {
        if (mine !== this.#generation) return;
        this.#root.replaceChildren(h("p", { className: "vc-message", dataset: { kind: "error" }, attrs: { role: "alert" } }, `Could not load the value chain: ${err?.message ?? err}`));
        return;
      }
    }
    if (!this.isOpen) return;
    this.#show(tab ?? this.#tab);
  }

  /** Back to the plant view (`showPlant: false` when another view takes the place). */
  close({ showPlant = true } = {}) {
    this.#generation += 1;
    this.#stop?.();
    this.#stop = null;
    if (this.#root.hidden) return;
    this.#root.hidden = true;
    this.#root.replaceChildren();
    this.#toggle.setAttribute("aria-pressed", "false");
    if (showPlant && this.#user !== null) this.#plant.hidden = false;
  }

  #tabs() {
    const held = this.#held;
    const list = this.#partner ? PARTNER_TABS : ENTERPRISE_TABS;
    return list.filter((t) => !t.needs || held.has(t.needs));
  }

  #show(id) {
    const tabs = this.#tabs();
    const tab = tabs.find((t) => t.id === id) ?? tabs[0];
    this.#stop?.();
    this.#stop = null;
    this.#tab = tab.id;
    const nav = h(
      "nav",
      { className: "vc-tabs", attrs: { "aria-label": this.#partner ? "Partner portal" : "Value chain" } },
      tabs.map((t) =>
        h(
          "button",
          {
            type: "button",
            className: "vc-tab",
            dataset: { tab: t.id },
            attrs: { "aria-current": t.id === tab.id ? "page" : "false" },
            on: { click: () => this.#show(t.id) },
          },
          t.label,
        ),
      ),
    );
    const title = this.#partner
      ? h("p", { className: "vc-portal-note" }, "Partner portal: the orders and lots of your organisation.")
      : null;
    const pane = h("section", { className: "vc-pane", dataset: { pane: tab.id } });
    this.#root.replaceChildren(h("div", { className: "vc-shell" }, title, nav, pane));
    const ctx = { api: this.#api, permissions: [...this.#held], partner: this.#partner };
    const traceLot = (lot) => {
      this.#lot = lot;
      this.#show("genealogy");
    };
    if (tab.id === "orders") this.#stop = ordersView(pane, ctx);
    else if (tab.id === "planning") this.#stop = planningView(pane, ctx);
    else if (tab.id === "stock") this.#stop = stockView(pane, { ...ctx, traceLot });
    else if (tab.id === "lots") this.#stop = lotsView(pane, { ...ctx, traceLot });
    else if (tab.id === "recall") this.#stop = recallView(pane, ctx);
    else {
      this.#stop = genealogyView(pane, {
        ...ctx,
        lot: this.#lot,
        onLot: (lot) => {
          this.#lot = lot;
        },
        openOrder: this.#held.has("values:read") ? this.#openOrder : null,
      });
    }
  }
}
