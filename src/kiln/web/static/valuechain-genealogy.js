// A lot's genealogy as a graph drawn in SVG by the page itself: the lot and what went into it
// (backward) or where it went (forward), a column per step, an arrow per genealogy edge in the
// direction the material moved. Each node shows the lot's material, quantity and state, and the
// step that reached it: its kind, its order and when it happened (the edge's time). Clicking a
// node (or Enter on it) re-centres the graph on that lot, so one can walk back to a raw material
// and forward again to every customer. The table under the graph says the same for screen
// readers, and links a step's production order to the Production page. A partner sees the
// genealogy of its own lots only when the enterprise shares it; otherwise a note says so.

import { h } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import { badge } from "./valuechain-orders.js";
import { graphLayout, qty, stateLabel } from "./valuechain-model.js";

const SVG = ["http:", "", "www.w3.org", "2000", "svg"].join("/");
const DIRECTIONS = [
  { id: "backward", label: "What went into it" },
  { id: "forward", label: "Where it went" },
];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children.filter(Boolean));
  return el;
}

function cut(text, most = 26) {
  const s = String(text ?? "");
  return s.length > most ? `${s.slice(0, most - 1)}…` : s;
}

function timeOf(us) {
  return typeof us === "number" ? formatDateTime(us / 1000) : "—";
}

/** The step that reached a node: the edge's kind, order and time; the lot's own for the start. */
function step(node) {
  const via = node.via;
  if (via) return { kind: via.kind, order: via.order_id ?? null, time: via.time_us, quantity: via.quantity };
  return { kind: "start", order: node.lot?.order_id ?? null, time: node.lot?.created_us, quantity: null };
}

/** Build the genealogy tab into `root`; `lot` is the lot to open on, `onLot(id)` remembers it. */
export function genealogyView(root, { api, lot, onLot, openOrder, partner }) {
  const input = h("input", { name: "lot", required: true, maxLength: 64, autocomplete: "off", spellcheck: false, value: lot ?? "", attrs: { list: "vc-lot-ids" } });
  const lotList = h("datalist", { id: "vc-lot-ids" });
  let direction = "backward";
  const dirButtons = DIRECTIONS.map((d) =>
    h(
      "button",
      {
        type: "button",
        dataset: { direction: d.id },
        attrs: { "aria-pressed": String(d.id === direction) },
        on: {
          click: () => {
            direction = d.id;
            for (const b of dirButtons) b.setAttribute("aria-pressed", String(b.dataset.direction === direction));
            if (input.value.trim()) trace(input.value.trim());
          },
        },
      },
      d.label,
    ),
  );
  const form = h(
    "form",
    { className: "vc-toolbar", dataset: { form: "trace" } },
    h("label", { className: "vc-field" }, h("span", {}, "Lot"), input),
    h("div", { className: "segmented vc-direction", attrs: { role: "group", "aria-label": "Direction" } }, dirButtons),
    h("button", { type: "submit", className: "button button-primary" }, "Trace"),
  );
  const status = h("p", { className: "vc-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
  const graph = h("div", { className: "vc-graph" });
  const steps = h("div", { className: "vc-steps" });
  root.replaceChildren(form, lotList, status, graph, steps);
  let stopped = false;
  let generation = 0;

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  async function trace(lotId) {
    const mine = ++generation;
    input.value = lotId;
    onLot(lotId);
    say(`Tracing ${lotId}…`);
    let body;
    try {
      body = await api.genealogy(lotId, direction);
    } catch (err) {
      if (stopped || mine !== generation) return;
      graph.replaceChildren();
      steps.replaceChildren();
      delete graph.dataset.start;
      if (err?.status === 403) {
        say(
          partner
            ? "The genealogy of your lots is not shared with your organisation. Ask the enterprise to share it if you need to trace them."
            : "Your roles do not include reading genealogy.",
          "info",
        );
        graph.dataset.notShared = "true";
      } else if (err?.status === 404) {
        say(`No lot ${lotId}${partner ? " among yours" : ""}.`, "error");
      } else {
        say(`Could not trace ${lotId}: ${err?.message ?? err}`, "error");
      }
      return;
    }
    if (stopped || mine !== generation) return;
    const count = body.nodes?.length ?? 0;
    say(
      `${lotId}: ${count - 1} lot${count === 2 ? "" : "s"} ${direction === "backward" ? "went into it" : "came of it"}` +
        `${body.truncated ? " (the walk stopped at its bound: not all are shown)" : ""}. Click a lot to centre on it.`,
    );
    draw(body);
  }

  function draw(body) {
    const layout = graphLayout(body);
    const { nodeWidth: w, nodeHeight: nh } = layout;
    const marker = svg(
      "marker",
      { id: "vc-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "vc-arrow" }),
    );
    const edges = layout.edges.map((e) => {
      // Material moves from source to target: backward, the source stands left of its target.
      const [x1, y1, x2, y2] = e.from.x < e.to.x ? [e.x1, e.y1, e.x2, e.y2] : [e.from.x, e.y1, e.to.x + w, e.y2];
      const mid = (x1 + x2) / 2;
      const path = svg("path", {
        d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
        class: "vc-edge",
        "marker-end": "url(#vc-arrow)",
        "data-source": e.edge.source,
        "data-target": e.edge.target,
      });
      const title = svg("title");
      title.textContent = `${e.edge.source} → ${e.edge.target}: ${stateLabel(e.edge.kind)} ${qty(e.edge.quantity)}${e.edge.order_id ? `, order ${e.edge.order_id}` : ""}, ${timeOf(e.edge.time_us)}`;
      path.append(title);
      return path;
    });
    const nodes = layout.nodes.map((n) => {
      const l = n.lot ?? {};
      const s = step(n);
      const lines = [
        `${l.material ?? "?"} · ${qty(l.quantity)} ${l.unit ?? ""}`,
        `${stateLabel(l.state ?? "unknown")}${s.kind === "start" ? "" : ` · ${stateLabel(s.kind)}`}`,
        s.order ? `Order ${s.order}` : "No order",
        timeOf(s.time),
      ];
      const g = svg(
        "g",
        {
          class: "vc-node",
          transform: `translate(${n.x},${n.y})`,
          tabindex: 0,
          role: "button",
          "data-lot": n.id,
          "data-depth": n.depth,
          "data-state": l.state ?? "unknown",
          "data-start": String(n.depth === 0),
          "aria-label": `${n.id}: ${lines.join(", ")}. Centre on it`,
        },
        svg("rect", { width: w, height: nh, rx: 6, class: "vc-node-box" }),
        svg("text", { x: 10, y: 18, class: "vc-node-id" }),
        ...lines.map((_, i) => svg("text", { x: 10, y: 36 + i * 15, class: "vc-node-text" })),
      );
      const texts = g.querySelectorAll("text");
      texts[0].textContent = cut(n.id);
      lines.forEach((t, i) => {
        texts[i + 1].textContent = cut(t, 30);
      });
      const recentre = () => {
        if (n.depth !== 0) trace(n.id);
      };
      g.addEventListener("click", recentre);
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          recentre();
        }
      });
      return g;
    });
    const picture = svg(
      "svg",
      {
        class: "vc-graph-svg",
        viewBox: `0 0 ${layout.width} ${layout.height}`,
        width: layout.width,
        height: layout.height,
        // A group, not an image: an image's children are hidden from screen readers, and each
        // lot here is a button.
        role: "group",
        "aria-label": `Genealogy of ${body.start}, ${body.direction}`,
      },
      svg("defs", {}, marker),
      ...edges,
      ...nodes,
    );
    graph.replaceChildren(picture);
    graph.dataset.start = body.start;
    graph.dataset.direction = body.direction;
    graph.dataset.nodes = String(layout.nodes.length);
    delete graph.dataset.notShared;
    steps.replaceChildren(stepTable(body));
  }

  function stepTable(body) {
    const head = ["Lot", "Material", "Quantity", "State", "Step", "Depth", "Order", "When"];
    return h(
      "table",
      { className: "vc-table vc-step-table" },
      h("caption", {}, "The lots of the graph, with the step that reached each"),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        (body.nodes ?? []).map((n) => {
          const s = step(n);
          const order = !s.order
            ? "—"
            : openOrder
              ? h("button", { type: "button", className: "vc-link", dataset: { order: s.order }, title: "Open production's work orders", on: { click: () => openOrder(s.order) } }, s.order)
              : s.order;
          return h(
            "tr",
            { dataset: { lot: n.id } },
            h("td", {}, n.depth === 0 ? h("strong", {}, n.id) : h("button", { type: "button", className: "vc-link", on: { click: () => trace(n.id) } }, n.id)),
            h("td", {}, n.lot?.material ?? "—"),
            h("td", { className: "vc-num" }, `${qty(n.lot?.quantity)} ${n.lot?.unit ?? ""}`),
            h("td", {}, n.lot ? badge(n.lot.state) : "—"),
            h("td", {}, s.kind === "start" ? "the lot traced" : `${stateLabel(s.kind)}${s.quantity ? ` ${qty(s.quantity)}` : ""}`),
            h("td", { className: "vc-num" }, String(n.depth)),
            h("td", {}, order),
            h("td", {}, timeOf(s.time)),
          );
        }),
      ),
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (value) trace(value);
  });
  api.lots().then(
    (body) => {
      if (!stopped) lotList.replaceChildren(...(body?.lots ?? []).map((l) => h("option", { value: l.id }, `${l.material} · ${l.state}`)));
    },
    () => {},
  );
  if (lot) trace(lot);
  return () => {
    stopped = true;
    generation += 1;
  };
}
