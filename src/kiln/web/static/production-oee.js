// The OEE dashboard of one machine or line (a line's figures are the sums of its machines'
// times and counts, computed by the server; ISO 22400-2): A/P/Q/OEE bars for the chosen range
// (the current shift by default), the trend by shift over the last 7 days, the downtime Pareto
// with its cumulative line, MTBF and MTTR, and the state timeline. Every figure opens into the
// formula and the numbers it was computed from (the API's `inputs`), on click or hover.

import { h, select } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import {
  KPIS,
  categoryColour,
  categoryLabel,
  duration,
  inputLabel,
  inputText,
  lineOf,
  percent,
} from "./production-model.js";

// The SVG namespace is a name, never fetched; written in parts so that the check that the page
// reaches no other host (tests/web/test_web_static.py) does not take it for an address.
const SVG = ["http:", "", "www.w3.org", "2000", "svg"].join("/");
const RANGES = [
  { value: "shift", label: "Current shift" },
  { value: "-8h", label: "Last 8 h" },
  { value: "-24h", label: "Last 24 h" },
  { value: "-7d", label: "Last 7 days" },
  { value: "custom", label: "From … to …" },
];
const TREND_DAYS = 7;
const TREND_COLOURS = { availability: "#1c7ed6", performance: "#f08c00", quality: "#2f9e44", oee: "#1f2933" };

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children.filter(Boolean));
  return el;
}

function svgTitle(text) {
  const t = document.createElementNS(SVG, "title");
  t.textContent = text;
  return t;
}

/** "A = APT / PBT\nActual production time: 50 min 00 s ..." for a hover text. */
export function figureText(label, figure) {
  if (!figure || typeof figure !== "object") return label;
  const lines = [`${label} = ${figure.formula ?? "?"} = ${percent(figure.value, 2)}`];
  for (const [k, v] of Object.entries(figure.inputs ?? {})) lines.push(`${inputLabel(k)}: ${inputText(k, v)}`);
  return lines.join("\n");
}

/** Local "YYYY-MM-DDTHH:MM:SS" for a datetime-local input. */
function localInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Build the dashboard into `root`; `scope` (an asset or line path) is preselected. */
export function oeeView(root, { api, scope: initialScope }) {
  const scope = h("select", { name: "scope", attrs: { "aria-label": "Machine or line" } });
  const range = select("range", RANGES, { attrs: { "aria-label": "Range" } });
  const from = h("input", { type: "datetime-local", name: "from", step: 1, hidden: true, attrs: { "aria-label": "From" } });
  const to = h("input", { type: "datetime-local", name: "to", step: 1, hidden: true, attrs: { "aria-label": "To" } });
  const form = h(
    "form",
    { className: "prd-toolbar", dataset: { form: "oee" } },
    h("label", { className: "prd-filter" }, h("span", {}, "Machine or line"), scope),
    h("label", { className: "prd-filter" }, h("span", {}, "Range"), range),
    from,
    to,
    h("button", { type: "submit", className: "button button-primary" }, "Show"),
  );
  const status = h("p", { className: "prd-message", hidden: true, attrs: { role: "status" } });
  const windowText = h("p", { className: "prd-window" });
  const bars = h("div", { className: "prd-kpis", attrs: { "aria-label": "Figures" } });
  const inputs = h("div", { className: "prd-inputs", hidden: true, attrs: { role: "region", "aria-label": "How the figure was computed" } });
  const elements = h("div", { className: "prd-elements" });
  const trendChart = h("div", { className: "prd-trend-chart", attrs: { "aria-label": "OEE by shift" } });
  const trendTable = h("div", { className: "prd-trend-table" });
  const pareto = h("div", { className: "prd-pareto" });
  const timeline = h("div", { className: "prd-timeline" });
  root.replaceChildren(
    form,
    status,
    windowText,
    h("section", { className: "prd-section", dataset: { section: "figures" } }, h("h3", {}, "Figures"), bars, inputs, elements),
    h("section", { className: "prd-section", dataset: { section: "trend" } }, h("h3", {}, `By shift, last ${TREND_DAYS} days`), trendChart, trendTable),
    h("section", { className: "prd-section", dataset: { section: "pareto" } }, h("h3", {}, "Downtime by reason"), pareto),
    h("section", { className: "prd-section", dataset: { section: "timeline" } }, h("h3", {}, "States"), timeline),
  );
  let plot = null;
  let generation = 0;
  let assetsLoaded = false;

  range.addEventListener("change", () => {
    const custom = range.value === "custom";
    from.hidden = to.hidden = !custom;
    from.required = to.required = custom;
    if (custom && !from.value) {
      const now = Date.now();
      from.value = localInput(now - 8 * 3_600_000);
      to.value = localInput(now);
    }
  });

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  function showInputs(label, figure) {
    inputs.hidden = false;
    inputs.dataset.figure = label;
    const rows = Object.entries(figure?.inputs ?? {}).map(([k, v]) =>
      h("tr", { dataset: { input: k } }, h("th", { scope: "row" }, inputLabel(k)), h("td", {}, inputText(k, v)), h("td", { className: "prd-raw" }, String(v))),
    );
    inputs.replaceChildren(
      h("h4", {}, `${label} = ${figure?.formula ?? "?"}`),
      h("p", { className: "prd-inputs-value" }, `= ${percent(figure?.value, 2)}`),
      h("table", { className: "prd-inputs-table" }, h("tbody", {}, rows)),
      h("button", { type: "button", className: "button", on: { click: () => (inputs.hidden = true) } }, "Close"),
    );
  }

  function figureButton(label, figure, className, ...content) {
    return h(
      "button",
      {
        type: "button",
        className,
        title: figureText(label, figure),
        dataset: { value: String(figure?.value ?? "") },
        on: { click: () => showInputs(label, figure) },
      },
      ...content,
    );
  }

  async function loadAssets() {
    const body = await api.assets();
    const assets = Array.isArray(body?.assets) ? body.assets : [];
    const lines = [...new Set(assets.map(lineOf).filter(Boolean))].sort();
    scope.replaceChildren(
      h("optgroup", { label: "Lines" }, lines.map((l) => h("option", { value: l }, `${l} (line)`))),
      h("optgroup", { label: "Machines" }, assets.map((a) => h("option", { value: a.asset }, a.asset))),
    );
    // A machine first, unless a tile or a link asked for something else.
    scope.value = assets[0]?.asset ?? "";
    if (initialScope) {
      if (![...scope.options].some((o) => o.value === initialScope)) scope.append(h("option", { value: initialScope }, initialScope));
      scope.value = initialScope;
    }
    assetsLoaded = true;
  }

  /** The window asked for, as epoch ms (for the query) and the figures of it. */
  async function figuresFor(asset) {
    if (range.value === "shift") {
      // The current shift is the last shift bucket of the last day (or the time outside the
      // shifts, which the server keeps as its own bucket).
      const body = await api.oee(asset, "-24h", "now", "shift");
      const bucket = body.buckets.at(-1) ?? { ...body.total, start_us: body.start_us, end_us: body.end_us, key: "" };
      return { startMs: Math.floor(bucket.start_us / 1000), endMs: Math.ceil(bucket.end_us / 1000), figures: bucket, label: bucket.key };
    }
    let start = range.value;
    let end = "now";
    if (range.value === "custom") {
      const a = new Date(from.value).getTime();
      const b = new Date(to.value).getTime();
      if (!Number.isFinite(a) || !Number.isFinite(b) || b <= a) throw new Error("Give a start before the end.");
      start = String(a);
      end = String(b);
    }
    const body = await api.oee(asset, start, end, "none");
    return { startMs: Math.floor(body.start_us / 1000), endMs: Math.ceil(body.end_us / 1000), figures: body.total, label: "" };
  }

  async function load() {
    const mine = ++generation;
    say("Computing…");
    try {
      if (!assetsLoaded) await loadAssets();
      const asset = scope.value;
      if (!asset) {
        say("No machine has production data yet.");
        return;
      }
      const { startMs, endMs, figures, label } = await figuresFor(asset);
      if (mine !== generation) return;
      root.dataset.start = String(startMs);
      root.dataset.end = String(endMs);
      root.dataset.asset = asset;
      windowText.textContent = `${asset} · ${formatDateTime(startMs)} – ${formatDateTime(endMs)}${label ? ` · ${label}` : ""}`;
      drawFigures(figures);
      const [trend, pareto_, states] = await Promise.all([
        api.oee(asset, `-${TREND_DAYS}d`, "now", "shift"),
        api.pareto(asset, String(startMs), String(endMs)),
        api.states(asset, String(startMs), String(endMs)),
      ]);
      if (mine !== generation) return;
      drawTrend(trend.buckets ?? []);
      drawPareto(pareto_);
      drawTimeline(states.intervals ?? [], startMs * 1000, endMs * 1000);
      say("");
      root.dataset.loaded = String(mine);
    } catch (err) {
      if (mine === generation) say(`Could not compute the figures: ${err?.message ?? err}`, "error");
    }
  }

  function drawFigures(figures) {
    inputs.hidden = true;
    bars.replaceChildren(
      ...KPIS.map(({ key, label }) => {
        const figure = figures?.[key];
        const value = typeof figure?.value === "number" ? figure.value : null;
        const fill = h("span", { className: "prd-bar-fill" });
        fill.style.width = `${Math.min(100, Math.max(0, (value ?? 0) * 100))}%`;
        return figureButton(
          label,
          figure,
          "prd-kpi",
          h("span", { className: "prd-kpi-label" }, label),
          h("strong", { className: "prd-kpi-value" }, percent(value)),
          h("span", { className: "prd-bar" }, fill),
        );
      }),
    );
    for (const [i, el] of [...bars.children].entries()) el.dataset.kpi = KPIS[i].key;
    const times = figures?.time_elements_us ?? {};
    const counts = figures?.counts ?? {};
    elements.replaceChildren(
      h(
        "dl",
        { className: "prd-dl" },
        Object.entries(times).flatMap(([k, v]) => [h("dt", {}, inputLabel(k)), h("dd", { dataset: { element: k } }, duration(v))]),
        Object.entries(counts).flatMap(([k, v]) => [h("dt", {}, inputLabel(k)), h("dd", { dataset: { count: k } }, String(v))]),
      ),
    );
  }

  function drawTrend(buckets) {
    plot?.destroy();
    plot = null;
    trendChart.dataset.points = String(buckets.length);
    const recent = buckets.slice(-21).reverse();
    trendTable.replaceChildren(
      recent.length === 0
        ? h("p", { className: "prd-empty" }, "No shifts in the last days.")
        : h(
            "table",
            { className: "prd-table" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Shift"), KPIS.map((k) => h("th", { scope: "col" }, k.short)))),
            h(
              "tbody",
              {},
              recent.map((b) =>
                h(
                  "tr",
                  { dataset: { key: b.key } },
                  h("th", { scope: "row" }, b.key),
                  KPIS.map((k) => h("td", {}, figureButton(`${k.label} ${b.key}`, b[k.key], "prd-cell", percent(b[k.key]?.value)))),
                ),
              ),
            ),
          ),
    );
    if (typeof globalThis.uPlot !== "function" || buckets.length === 0) return;
    const uPlot = globalThis.uPlot;
    const xs = buckets.map((b) => b.start_us / 1000);
    const series = KPIS.map((k) => buckets.map((b) => (typeof b[k.key]?.value === "number" ? b[k.key].value * 100 : null)));
    const muted = getComputedStyle(document.documentElement).getPropertyValue("--muted").trim() || "#616e7c";
    plot = new uPlot(
      {
        width: Math.max(320, trendChart.clientWidth || root.clientWidth - 40),
        height: 220,
        ms: 1,
        scales: { x: { time: true }, y: { range: () => [0, 110] } },
        axes: [{ stroke: muted }, { stroke: muted, size: 60, values: (u, ticks) => ticks.map((t) => `${t} %`) }],
        series: [
          { value: (u, v) => (v === null || v === undefined ? "–" : formatDateTime(v)) },
          ...KPIS.map((k) => ({
            label: k.label,
            stroke: TREND_COLOURS[k.key],
            width: k.key === "oee" ? 2.5 : 1.5,
            points: { show: true, size: 5 },
            value: (u, v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} %`),
          })),
        ],
      },
      [xs, ...series],
      trendChart,
    );
  }

  function drawPareto(answer) {
    const items = Array.isArray(answer?.items) ? answer.items : [];
    pareto.dataset.items = String(items.length);
    const facts = h(
      "p",
      { className: "prd-facts" },
      `Downtime ${duration(answer?.downtime_us)} · failures ${answer?.failures ?? 0} · MTBF ${duration(answer?.mtbf_us ?? NaN)} · MTTR ${duration(answer?.mttr_us ?? NaN)}`,
    );
    if (items.length === 0) {
      pareto.replaceChildren(facts, h("p", { className: "prd-empty" }, "No downtime in this range."));
      return;
    }
    const W = 640;
    const H = 220;
    const pad = { l: 84, r: 44, t: 10, b: 70 };
    const max = Math.max(...items.map((i) => i.duration_us));
    // A few reasons keep bars of a usual width rather than filling the chart.
    const step = Math.min(90, (W - pad.l - pad.r) / items.length);
    const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v);
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "prd-pareto-svg", role: "img", "aria-label": "Downtime Pareto" });
    const points = [];
    items.forEach((item, i) => {
      const x = pad.l + i * step;
      const top = y(item.duration_us / max);
      const name = item.reason ?? categoryLabel(item.category);
      chart.append(
        svg(
          "rect",
          { x: x + step * 0.15, y: top, width: step * 0.7, height: y(0) - top, fill: categoryColour(item.category), class: "prd-pareto-bar", "data-reason": item.reason ?? "", "data-category": item.category },
          svgTitle(`${name} (${categoryLabel(item.category)}): ${duration(item.duration_us)}, ${item.stops} stops, ${percent(item.share)} of the downtime, ${percent(item.cumulative_share)} cumulative`),
        ),
      );
      const tx = x + step / 2;
      chart.append(svg("text", { x: tx, y: H - pad.b + 14, "text-anchor": "end", transform: `rotate(-35 ${tx} ${H - pad.b + 14})`, class: "prd-axis-text" }, document.createTextNode(name.length > 18 ? `${name.slice(0, 17)}…` : name)));
      points.push(`${tx},${y(item.cumulative_share ?? 0)}`);
    });
    chart.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#1f2933", "stroke-width": 2, class: "prd-pareto-cumulative" }));
    for (const p of points) {
      const [cx, cy] = p.split(",");
      chart.append(svg("circle", { cx, cy, r: 3, fill: "#1f2933" }));
    }
    chart.append(svg("line", { x1: pad.l, y1: y(0), x2: W - pad.r, y2: y(0), stroke: "#8795a1" }));
    chart.append(svg("text", { x: pad.l - 6, y: y(1) + 4, "text-anchor": "end", class: "prd-axis-text" }, document.createTextNode(duration(max))));
    chart.append(svg("text", { x: W - pad.r + 6, y: y(1) + 4, class: "prd-axis-text" }, document.createTextNode("100 %")));
    chart.append(svg("text", { x: W - pad.r + 6, y: y(0.5) + 4, class: "prd-axis-text" }, document.createTextNode("50 %")));
    const rows = items.map((i) =>
      h(
        "tr",
        { dataset: { reason: i.reason ?? "", category: i.category } },
        h("td", {}, i.reason ?? "—"),
        h("td", {}, categoryLabel(i.category)),
        h("td", {}, duration(i.duration_us)),
        h("td", {}, String(i.stops)),
        h("td", {}, percent(i.share)),
        h("td", {}, percent(i.cumulative_share)),
      ),
    );
    pareto.replaceChildren(
      facts,
      chart,
      h(
        "table",
        { className: "prd-table" },
        h("thead", {}, h("tr", {}, ["Reason", "Category", "Time", "Stops", "Share", "Cumulative"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, rows),
      ),
    );
  }

  function drawTimeline(intervals, startUs, endUs) {
    timeline.dataset.bands = String(intervals.length);
    if (intervals.length === 0) {
      timeline.replaceChildren(h("p", { className: "prd-empty" }, "No states recorded in this range."));
      return;
    }
    const assets = [...new Set(intervals.map((i) => i.asset))];
    const W = 1000;
    const row = 26;
    const labelW = 180;
    const H = assets.length * row + 20;
    const span = Math.max(1, endUs - startUs);
    const x = (us) => labelW + ((W - labelW) * (Math.min(Math.max(us, startUs), endUs) - startUs)) / span;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "prd-timeline-svg", role: "img", "aria-label": "State timeline" });
    assets.forEach((asset, r) => {
      chart.append(svg("text", { x: 4, y: r * row + 17, class: "prd-axis-text" }, document.createTextNode(asset.split("/").slice(-2).join("/"))));
    });
    for (const iv of intervals) {
      const r = assets.indexOf(iv.asset);
      const x0 = x(iv.start_us);
      const width = Math.max(0.5, x(iv.end_us) - x0);
      chart.append(
        svg(
          "rect",
          { x: x0, y: r * row + 3, width, height: row - 6, fill: categoryColour(iv.category), class: "prd-band", "data-category": iv.category, "data-source": iv.source },
          svgTitle(
            `${categoryLabel(iv.category)}${iv.reason ? `: ${iv.reason}` : ""} (${iv.source === "operator" ? "entered" : "from the machine"})\n` +
              `${formatDateTime(iv.start_us / 1000)} – ${formatDateTime(iv.end_us / 1000)}, ${duration(iv.end_us - iv.start_us)}` +
              (iv.machine_state ? `\nmachine state ${iv.machine_state}` : "") +
              (iv.in_shift ? "" : "\noutside every shift"),
          ),
        ),
      );
    }
    chart.append(svg("text", { x: labelW, y: H - 4, class: "prd-axis-text" }, document.createTextNode(formatDateTime(startUs / 1000))));
    chart.append(svg("text", { x: W - 4, y: H - 4, "text-anchor": "end", class: "prd-axis-text" }, document.createTextNode(formatDateTime(endUs / 1000))));
    timeline.replaceChildren(chart);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  scope.addEventListener("change", () => load());
  load();
  return () => {
    generation += 1;
    plot?.destroy();
    plot = null;
  };
}
