// Production in the page: the plant overview board, the OEE dashboard, downtime reasons, the
// work-orders board and SPC charts, as tabs of a view that replaces the plant while open (as
// the alarm console does). Offered to users who may read values; what each may change follows
// the permissions GET /auth/me lists (production:enter for reasons and running orders,
// production:plan for creating and releasing them). The server checks every request again.

import { h } from "./admin-dom.js";
import { ProductionApi } from "./production-api.js";
import { boardView } from "./production-board.js";
import { downtimeView } from "./production-downtime.js";
import { oeeView } from "./production-oee.js";
import { ordersView } from "./production-orders.js";
import { spcView } from "./production-spc.js";

const TABS = [
  { id: "board", label: "Overview" },
  { id: "oee", label: "OEE" },
  { id: "downtime", label: "Downtime" },
  { id: "orders", label: "Work orders" },
  { id: "spc", label: "SPC" },
];

export class ProductionPage {
  #root;
  #plant;
  #toggle;
  #api;
  #user = null;
  #tab = "board";
  #asset = null; // the machine or line the OEE and downtime tabs show
  #stop = null;

  /**
   * `root` is the view's container, `plant` the view it replaces, `toggle` the header button
   * that opens and closes it; `fetchImpl` the session's fetch.
   */
  constructor({ root, plant, toggle }, { fetchImpl }) {
    this.#root = root;
    this.#plant = plant;
    this.#toggle = toggle;
    this.#api = new ProductionApi(fetchImpl);
    toggle.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
  }

  get isOpen() {
    return !this.#root.hidden;
  }

  signedIn(user) {
    this.#user = user;
    this.#toggle.hidden = !this.#held.has("values:read");
    if (this.#toggle.hidden) this.close();
  }

  signedOut() {
    this.#user = null; // first: closing must not show the plant again
    this.close();
    this.#toggle.hidden = true;
    this.#asset = null;
    this.#root.replaceChildren();
  }

  get #held() {
    return new Set(this.#user?.permissions ?? []);
  }

  open(tab = null) {
    if (this.#user === null || this.#toggle.hidden) return;
    this.#plant.hidden = true;
    this.#root.hidden = false;
    this.#toggle.setAttribute("aria-pressed", "true");
    this.#show(tab ?? this.#tab);
  }

  /** Back to the plant view (`showPlant: false` when another view takes the place). */
  close({ showPlant = true } = {}) {
    this.#stop?.();
    this.#stop = null;
    if (this.#root.hidden) return;
    this.#root.hidden = true;
    this.#root.replaceChildren();
    this.#toggle.setAttribute("aria-pressed", "false");
    if (showPlant && this.#user !== null) this.#plant.hidden = false;
  }

  #show(id) {
    const tab = TABS.find((t) => t.id === id) ?? TABS[0];
    this.#stop?.();
    this.#stop = null;
    this.#tab = tab.id;
    const tabs = h(
      "nav",
      { className: "prd-tabs", attrs: { "aria-label": "Production" } },
      TABS.map((t) =>
        h(
          "button",
          {
            type: "button",
            className: "prd-tab",
            dataset: { tab: t.id },
            attrs: { "aria-current": t.id === tab.id ? "page" : "false" },
            on: { click: () => this.#show(t.id) },
          },
          t.label,
        ),
      ),
    );
    const pane = h("section", { className: "prd-pane", dataset: { pane: tab.id } });
    this.#root.replaceChildren(h("div", { className: "prd-shell" }, tabs, pane));
    const held = this.#held;
    const ctx = { api: this.#api };
    if (tab.id === "board") {
      this.#stop = boardView(pane, {
        ...ctx,
        openAsset: (asset) => {
          this.#asset = asset;
          this.#show("oee");
        },
      });
    } else if (tab.id === "oee") {
      this.#stop = oeeView(pane, { ...ctx, scope: this.#asset });
    } else if (tab.id === "downtime") {
      this.#stop = downtimeView(pane, { ...ctx, asset: this.#asset, can: { enter: held.has("production:enter") } });
    } else if (tab.id === "orders") {
      this.#stop = ordersView(pane, { ...ctx, permissions: [...held] });
    } else {
      this.#stop = spcView(pane, ctx);
    }
  }
}
