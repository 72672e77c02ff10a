// The plant overview board: a tile per machine the production engine follows, coloured by its
// state now, with its OEE and A/P/Q for the current shift so far, the running order and how
// long it has been in this state (GET /production/live, every REFRESH_MS: the engine publishes
// within 2 s of a change). A tile opens the OEE dashboard of its machine.

import { h } from "./admin-dom.js";
import { categoryGroup, categoryLabel, duration, percent } from "./production-model.js";

export const REFRESH_MS = 2_000;

function tile(item, nowUs, onOpen) {
  const name = item.asset.split("/").at(-1);
  const since = typeof item.since_us === "number" ? duration(nowUs - item.since_us) : "—";
  const apq = [
    ["A", item.availability],
    ["P", item.performance],
    ["Q", item.quality],
  ];
  return h(
    "button",
    {
      type: "button",
      className: "prd-tile",
      dataset: { asset: item.asset, category: item.category ?? "none", group: categoryGroup(item.category), oee: String(item.oee ?? "") },
      title: `${item.asset}: open its OEE dashboard`,
      on: { click: () => onOpen(item.asset) },
    },
    h("span", { className: "prd-tile-name" }, name),
    h("span", { className: "prd-tile-path" }, item.asset),
    h("span", { className: "prd-tile-state" }, categoryLabel(item.category), h("span", { className: "prd-tile-since" }, since)),
    h("strong", { className: "prd-tile-oee", dataset: { kpi: "oee" } }, percent(item.oee)),
    h(
      "span",
      { className: "prd-tile-apq" },
      apq.map(([k, v]) => h("span", { dataset: { kpi: k } }, `${k} ${percent(v, 0)}`)),
    ),
    h("span", { className: "prd-tile-order" }, item.order ? `Order ${item.order}` : "No order running"),
    h("span", { className: "prd-tile-shift" }, item.shift ? `Shift ${item.shift}` : ""),
  );
}

/** Build the board into `root`; `openAsset(path)` shows a machine's dashboard. */
export function boardView(root, { api, openAsset }) {
  const status = h("p", { className: "prd-message", hidden: true, attrs: { role: "status" } });
  const grid = h("div", { className: "prd-board", attrs: { "aria-label": "Machines" } });
  const legend = h(
    "ul",
    { className: "prd-legend", attrs: { "aria-label": "Colours" } },
    ["running", "setup", "planned_stop", "technical", "material", "micro_stop", "starved", "unknown"].map((c) =>
      h("li", { dataset: { group: categoryGroup(c) } }, c === "starved" ? "Starved / blocked" : c === "material" ? "Material, operator, planning" : categoryLabel(c)),
    ),
  );
  root.replaceChildren(legend, status, grid);
  let timer = 0;
  let stopped = false;

  async function load() {
    clearTimeout(timer);
    let body;
    try {
      body = await api.live();
      if (stopped) return;
      status.hidden = true;
    } catch (err) {
      if (stopped) return;
      status.hidden = false;
      status.dataset.kind = "error";
      status.textContent = `Could not load the machines: ${err?.message ?? err}`;
      timer = setTimeout(load, REFRESH_MS);
      return;
    }
    const items = Array.isArray(body?.assets) ? body.assets : [];
    const nowUs = typeof body?.time_us === "number" ? body.time_us : Date.now() * 1000;
    grid.replaceChildren(...items.map((item) => tile(item, nowUs, openAsset)));
    grid.dataset.loaded = "true";
    if (items.length === 0) {
      grid.replaceChildren(h("p", { className: "prd-empty" }, "No machine has a state model yet: give its asset type one in the plant file (production.types)."));
    }
    timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
