// The KPIs tab: the alarm-system figures of EEMUA 191 / ISA-18.2 with their verdicts, and the
// alarm rate per 10 minutes on a uPlot chart with the flood threshold (more than 10 alarms in
// 10 minutes, EEMUA 191 / ISA-18.2 §16.5) drawn across it.
//
// The figures are read generically from the server's JSON (kiln.alarms.kpis to_json): any
// object carrying a "verdict" is a figure, so a KPI added there shows here without a change.

import { h, select } from "./admin-dom.js";
import { formatDateTime } from "./format.js";

export const FLOOD_PER_10_MIN = 10;

const RANGES = [
  { value: "-1h", label: "Last hour" },
  { value: "-8h", label: "Last 8 h" },
  { value: "-24h", label: "Last 24 h" },
  { value: "-7d", label: "Last 7 days" },
  { value: "-30d", label: "Last 30 days" },
];

/** "peak_10_minute_rate" -> "Peak 10 minute rate". */
export function kpiLabel(key) {
  const text = String(key).replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The figures of a KPI report: [{key, label, value, unit, verdict, target}] for every object
 * with a "verdict", at any depth (its key path names it).
 */
export function kpiFigures(report, path = []) {
  const out = [];
  if (!report || typeof report !== "object" || Array.isArray(report)) return out;
  for (const [key, value] of Object.entries(report)) {
    if (!value || typeof value !== "object" || Array.isArray(value)) continue;
    if (typeof value.verdict === "string") {
      out.push({
        key: [...path, key].join("."),
        label: typeof value.label === "string" ? value.label : kpiLabel(key),
        value: value.value,
        unit: typeof value.unit === "string" ? value.unit : "",
        verdict: value.verdict,
        target: value.target ?? value.guidance ?? null,
        manageable: value.maximum_manageable ?? null,
        note: [value.rule, value.source].filter((t) => typeof t === "string" && t).join(" · "),
      });
    } else out.push(...kpiFigures(value, [...path, key]));
  }
  return out;
}

/**
 * The 10-minute rate series [[start_us, count], ...]: `series.ten_minute` (kiln.alarms.kpis),
 * else the first such list under a "ten_minute" key at any depth, or [].
 */
export function rateSeries(report) {
  if (Array.isArray(report?.series?.ten_minute)) return report.series.ten_minute.filter(isPair);
  const seen = new Set();
  const walk = (node) => {
    if (!node || typeof node !== "object" || seen.has(node)) return null;
    seen.add(node);
    for (const [key, value] of Object.entries(node)) {
      if (/ten_minute|10_?min/i.test(key) && Array.isArray(value) && value.every(isPair)) return value;
    }
    for (const value of Object.values(node)) {
      const found = walk(value);
      if (found) return found;
    }
    return null;
  };
  return walk(report) ?? [];
}

function isPair(item) {
  if (Array.isArray(item)) return item.length >= 2 && typeof item[0] === "number" && typeof item[1] === "number";
  return item && typeof item === "object" && typeof (item.start_us ?? item.t) === "number";
}

/** A pair or {start_us, count} as [ms, count]. */
function point(item) {
  if (Array.isArray(item)) return [item[0] / 1000, item[1]];
  return [(item.start_us ?? item.t) / 1000, item.count ?? item.value ?? 0];
}

/** The alarms now (shelved, out of service, ...) and the top bad actors, when the report has them. */
function extraLists(report) {
  const out = [];
  const now = report?.now;
  if (now && typeof now === "object") {
    out.push(
      h(
        "section",
        { className: "alm-kpi-now", dataset: { section: "now" } },
        h("h3", {}, "Now"),
        h(
          "ul",
          {},
          Object.entries(now).map(([k, v]) => h("li", { dataset: { count: k } }, `${kpiLabel(k)}: ${v}`)),
        ),
      ),
    );
  }
  const top = report?.bad_actors?.top_10;
  if (Array.isArray(top) && top.length > 0) {
    out.push(
      h(
        "section",
        { className: "alm-kpi-top", dataset: { section: "bad-actors" } },
        h("h3", {}, "Top bad actors"),
        h(
          "ol",
          {},
          top.map((a) => h("li", {}, `${a.alarm_id}: ${a.count}${typeof a.percent === "number" ? ` (${Number(a.percent.toPrecision(3))} %)` : ""}`)),
        ),
      ),
    );
  }
  return out;
}

function formatFigure(value, unit) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return `${Number(value.toPrecision(4))}${unit ? ` ${unit}` : ""}`;
  if (Array.isArray(value)) return `${value.length}`;
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => `${k} ${typeof v === "number" ? Number(v.toPrecision(3)) : v}`)
      .join(" · ");
  }
  return String(value);
}

/** Build the KPI view into `root`; `asset()` gives the asset selected in the tree. */
export function kpisView(root, { api, asset }) {
  const range = select("start", RANGES, { value: "-24h" });
  range.value = "-24h";
  const scope = h("input", { type: "search", name: "asset", value: "", placeholder: "whole plant", autocomplete: "off" });
  const positions = h("input", { type: "number", name: "positions", min: 1, max: 1000, value: 1 });
  const status = h("p", { className: "alm-message", hidden: true, attrs: { role: "status" } });
  const figures = h("div", { className: "alm-kpis" });
  const chart = h("div", { className: "alm-rate-chart", attrs: { "aria-label": "Alarms per 10 minutes" } });
  const extras = h("div", { className: "alm-kpi-extras" });
  const form = h(
    "form",
    { className: "alm-filters", dataset: { form: "kpis" } },
    h("label", { className: "alm-filter" }, h("span", {}, "Range"), range),
    h("label", { className: "alm-filter" }, h("span", {}, "Asset"), scope),
    h("label", { className: "alm-filter" }, h("span", {}, "Operator positions"), positions),
    h("button", { type: "submit", className: "button button-primary" }, "Show"),
    asset() ? h("button", { type: "button", className: "button", on: { click: () => { scope.value = asset(); load(); } } }, "Selected asset") : null,
  );
  root.replaceChildren(
    form,
    status,
    figures,
    h("section", { className: "alm-rate" }, h("h3", {}, "Alarms per 10 minutes"), chart),
    extras,
  );
  let plot = null;
  let generation = 0;

  async function load() {
    const mine = ++generation;
    status.hidden = false;
    status.dataset.kind = "info";
    status.textContent = "Computing the KPIs…";
    let report;
    try {
      report = await api.kpis({ start: range.value, end: "now", asset: scope.value.trim(), positions: positions.value });
    } catch (err) {
      if (mine !== generation) return;
      status.dataset.kind = "error";
      status.textContent = `Could not compute the KPIs: ${err?.message ?? err}`;
      return;
    }
    if (mine !== generation) return;
    status.hidden = true;
    const list = kpiFigures(report);
    figures.replaceChildren(
      ...list.map((f) =>
        h(
          "div",
          { className: "alm-kpi", dataset: { kpi: f.key, verdict: f.verdict }, title: f.note },
          h("span", { className: "alm-kpi-label" }, f.label),
          h("strong", { className: "alm-kpi-value" }, formatFigure(f.value, f.unit)),
          h("span", { className: "alm-kpi-verdict" }, f.verdict.replaceAll("_", " ")),
          f.target !== null
            ? h(
                "span",
                { className: "alm-kpi-target" },
                `target ${formatFigure(f.target, f.unit)}${f.manageable !== null ? ` · manageable ${formatFigure(f.manageable, f.unit)}` : ""}`,
              )
            : null,
        ),
      ),
    );
    if (list.length === 0) figures.replaceChildren(h("p", { className: "alm-empty" }, "No figures in this range."));
    extras.replaceChildren(...extraLists(report));
    draw(rateSeries(report).map(point));
  }

  function draw(points) {
    plot?.destroy();
    plot = null;
    chart.dataset.points = String(points.length);
    chart.dataset.total = String(points.reduce((sum, p) => sum + p[1], 0));
    if (typeof globalThis.uPlot !== "function") return;
    const uPlot = globalThis.uPlot;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const muted = getComputedStyle(document.documentElement).getPropertyValue("--muted").trim() || "#616e7c";
    const opts = {
      width: Math.max(300, chart.clientWidth || root.clientWidth - 40),
      height: 220,
      ms: 1,
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, Math.max(FLOOD_PER_10_MIN + 2, hi + 1)] } },
      axes: [{ stroke: muted }, { stroke: muted, size: 40 }],
      series: [
        { value: (u, v) => (v === null || v === undefined ? "–" : formatDateTime(v)) },
        { label: "Alarms", stroke: "#1d5fa8", fill: "#1d5fa833", width: 1.5, paths: uPlot.paths.stepped({ align: 1 }) },
      ],
      legend: { show: false },
      hooks: {
        // The flood threshold: above this line an operator cannot keep up (EEMUA 191).
        draw: [
          (u) => {
            const y = u.valToPos(FLOOD_PER_10_MIN, "y", true);
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = "#c92a2a";
            ctx.setLineDash([6, 4]);
            ctx.lineWidth = 1;
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.restore();
          },
        ],
      },
    };
    plot = new uPlot(opts, [xs, ys], chart);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  load();
  return {
    refresh: load,
    stop: () => {
      generation += 1;
      plot?.destroy();
      plot = null;
    },
  };
}
