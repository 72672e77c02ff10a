// The SPC chart of a tag: the plotted statistic (subgroup mean, individual, proportion, count
// or rate) with its centre line and control limits (uPlot), the points that broke a run rule
// in red with the rule numbers beside them (Nelson's eight, or the Western Electric set), and
// capability against the tag's specification limits (Cp, Cpk with sigma from R-bar/d2; Pp, Ppk
// with the overall sigma). The server computes everything (GET /api/v1/spc, answered by
// kiln.production.spc_tags.chart_over_history); the page only draws it.

import { h, select } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import { SPC_CHARTS, spcColumns } from "./production-model.js";

const RANGES = [
  { value: "-8h", label: "Last 8 h" },
  { value: "-24h", label: "Last 24 h" },
  { value: "-7d", label: "Last 7 days" },
  { value: "-30d", label: "Last 30 days" },
];
const NUMERIC = new Set(["float", "int", "double", "number"]);
const CAPABILITY = [
  ["cp", "Cp"],
  ["cpk", "Cpk"],
  ["pp", "Pp"],
  ["ppk", "Ppk"],
  ["mean", "Mean"],
  ["sigma_within", "σ within"],
  ["sigma_overall", "σ overall"],
  ["lsl", "LSL"],
  ["usl", "USL"],
];

const ATTRIBUTES = new Set(["p", "np", "c", "u"]);
const SIZED = new Set(["p", "np", "u"]);

/** The query of an attributes chart: a counter charted per window (minutes), n a fixed whole
 * number or comma-separated tags (counters when the charted tag is one). */
export function attributeParams(kind, isCounter, minutes, size) {
  const out = {};
  const windowS = Number(minutes) * 60;
  if (isCounter) {
    out.counter = "true";
    // A counter's increase is taken per time window; other attributes charts chart each value.
    if (Number.isFinite(windowS) && windowS > 0) out.subgroup_s = String(windowS);
  }
  const n = String(size ?? "").trim();
  if (!SIZED.has(kind) || n === "") return out;
  if (/^[0-9]+$/.test(n)) out.sample_size = n;
  else out[isCounter ? "sample_size_counters" : "sample_size_tags"] = n.split(",").map((t) => t.trim()).filter(Boolean).join(",");
  return out;
}

function num(v, digits = 4) {
  return typeof v === "number" && Number.isFinite(v) ? String(Number(v.toPrecision(digits))) : "—";
}

/** Build the SPC page into `root`. */
export function spcView(root, { api }) {
  const tag = h("input", { name: "tag", type: "text", required: true, autocomplete: "off", spellcheck: false, placeholder: "a tag path", attrs: { list: "prd-spc-tags", "aria-label": "Tag" } });
  const tagList = h("datalist", { id: "prd-spc-tags" });
  const chart = select("chart", SPC_CHARTS, { attrs: { "aria-label": "Chart" } });
  const subgroup = h("input", { name: "subgroup", type: "number", min: 2, max: 25, value: 5, hidden: true, attrs: { "aria-label": "Subgroup size" } });
  // Attributes charts (p, np, c, u): a counter tag is charted by its increase per window; n
  // (p, np, u) is a fixed number or the tags (counters) that give it.
  const counter = h("input", { name: "counter", type: "checkbox", attrs: { "aria-label": "The tag is a counter" } });
  const windowMin = h("input", { name: "window", type: "number", min: 1, max: 1440, step: "any", value: 10, attrs: { "aria-label": "Window, minutes" } });
  const sampleSize = h("input", { name: "sample_size", type: "text", autocomplete: "off", spellcheck: false, placeholder: "e.g. 50, or …/good_count,…/scrap_count", attrs: { list: "prd-spc-tags", "aria-label": "Sample size n" } });
  const range = select("range", RANGES, { attrs: { "aria-label": "Range" } });
  range.value = "-24h";
  const rules = select("rules", [{ value: "nelson", label: "Nelson rules" }, { value: "weco", label: "Western Electric rules" }], { attrs: { "aria-label": "Rules" } });
  const form = h(
    "form",
    { className: "prd-toolbar", dataset: { form: "spc" } },
    h("label", { className: "prd-filter prd-filter-wide" }, h("span", {}, "Tag"), tag, tagList),
    h("label", { className: "prd-filter" }, h("span", {}, "Chart"), chart),
    h("label", { className: "prd-filter", hidden: true, dataset: { for: "subgroup" } }, h("span", {}, "Subgroup size"), subgroup),
    h("label", { className: "prd-check", hidden: true, dataset: { for: "attributes" } }, counter, h("span", {}, "Counter (its increase per window)")),
    h("label", { className: "prd-filter", hidden: true, dataset: { for: "window" } }, h("span", {}, "Window, minutes"), windowMin),
    h("label", { className: "prd-filter prd-filter-wide", hidden: true, dataset: { for: "sized" } }, h("span", {}, "Sample size n (number or tags)"), sampleSize),
    h("label", { className: "prd-filter" }, h("span", {}, "Range"), range),
    h("label", { className: "prd-filter" }, h("span", {}, "Rules"), rules),
    h("button", { type: "submit", className: "button button-primary" }, "Draw"),
  );
  const status = h("p", { className: "prd-message", hidden: true, attrs: { role: "status" } });
  const limits = h("p", { className: "prd-facts" });
  const plotBox = h("div", { className: "prd-spc-chart", attrs: { "aria-label": "Control chart" } });
  const violations = h("ol", { className: "prd-spc-violations", attrs: { "aria-label": "Rule violations" } });
  const capability = h("dl", { className: "prd-dl prd-capability", attrs: { "aria-label": "Capability" } });
  root.replaceChildren(
    form,
    status,
    h("section", { className: "prd-section" }, limits, plotBox),
    h("div", { className: "prd-spc-lower" }, h("section", { className: "prd-section" }, h("h3", {}, "Rule violations"), violations), h("section", { className: "prd-section" }, h("h3", {}, "Capability"), capability)),
  );
  let plot = null;
  let generation = 0;

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  chart.addEventListener("change", () => {
    const sized = chart.value === "xbar_r" || chart.value === "xbar_s";
    subgroup.hidden = !sized;
    subgroup.closest("label").hidden = !sized;
    const attributes = ATTRIBUTES.has(chart.value);
    for (const label of form.querySelectorAll('[data-for="attributes"]')) label.hidden = !attributes;
    form.querySelector('[data-for="sized"]').hidden = !SIZED.has(chart.value);
    form.querySelector('[data-for="window"]').hidden = !(attributes && counter.checked);
  });
  counter.addEventListener("change", () => chart.dispatchEvent(new Event("change")));

  async function loadTags() {
    try {
      const body = await api.tags("", 1000);
      const numeric = (body?.tags ?? []).filter((t) => NUMERIC.has(t.data_type));
      tagList.replaceChildren(...numeric.map((t) => h("option", { value: t.path }, t.spec ? `${t.path} (spec ${t.spec.lsl ?? "–"} … ${t.spec.usl ?? "–"})` : t.path)));
      // A first chart without typing: the first tag with specification limits (the virtual
      // factory's fill weights), as an X-bar-R chart of five.
      const specified = numeric.find((t) => t.spec);
      if (specified && !tag.value.trim()) {
        tag.value = specified.path;
        chart.value = "xbar_r";
        chart.dispatchEvent(new Event("change"));
        load();
      }
    } catch {
      // The list only helps typing: a path typed in full works without it.
    }
  }

  async function load() {
    const mine = ++generation;
    const path = tag.value.trim();
    if (!path) return;
    say("Charting…");
    const params = { tag: path, chart: chart.value, start: range.value, end: "now", rules: rules.value };
    if (!subgroup.hidden) params.subgroup = subgroup.value;
    if (ATTRIBUTES.has(chart.value)) Object.assign(params, attributeParams(chart.value, counter.checked, windowMin.value, sampleSize.value));
    let answer;
    try {
      answer = await api.spc(params);
    } catch (err) {
      if (mine === generation) say(`Could not chart ${path}: ${err?.message ?? err}`, "error");
      return;
    }
    if (mine !== generation) return;
    if (!answer?.points?.length) say("No subgroups in this range: widen it, or check that the tag has values.");
    else if (answer.truncated) say("The range holds more values than one chart reads: its end is left out. Narrow the range.", "error");
    else say("");
    draw(answer);
  }

  function draw(answer) {
    const points = Array.isArray(answer?.points) ? answer.points : [];
    const flagged = points.filter((p) => Array.isArray(p.rules) && p.rules.length > 0);
    const l = answer?.limits;
    limits.textContent = l ? `CL ${num(l.cl)} · UCL ${num(l.ucl)} · LCL ${num(l.lcl)} · ${points.length} subgroups` : `${points.length} subgroups, too few for limits yet`;
    plotBox.dataset.points = String(points.length);
    plotBox.dataset.violations = String(flagged.length);
    violations.replaceChildren(
      ...(flagged.length === 0
        ? [h("li", { className: "prd-empty" }, "No rule is broken.")]
        : flagged.map((p) =>
            h(
              "li",
              { className: "prd-spc-violation", dataset: { time: String(p.time_us), rules: p.rules.join(",") } },
              `${formatDateTime(p.time_us / 1000)}: ${num(p.value)} breaks rule${p.rules.length > 1 ? "s" : ""} ${p.rules.join(", ")}`,
            ),
          )),
    );
    const cap = answer?.capability;
    capability.replaceChildren(
      ...(cap
        ? CAPABILITY.flatMap(([k, label]) => [h("dt", {}, label), h("dd", { dataset: { cap: k } }, num(cap[k], 3))])
        : [h("dt", {}, "Capability"), h("dd", {}, "None: the tag has no specification limits, the chart counts attributes, or there are too few values.")]),
    );
    plot?.destroy();
    plot = null;
    if (typeof globalThis.uPlot !== "function" || points.length === 0) return;
    const uPlot = globalThis.uPlot;
    const data = spcColumns(answer);
    const muted = getComputedStyle(document.documentElement).getPropertyValue("--muted").trim() || "#616e7c";
    const dashed = [6, 4];
    const ruleText = new Map(flagged.map((p) => [p.time_us / 1000, p.rules.join(",")]));
    plot = new uPlot(
      {
        width: Math.max(320, plotBox.clientWidth || root.clientWidth - 40),
        height: 300,
        ms: 1,
        scales: { x: { time: true } },
        axes: [{ stroke: muted }, { stroke: muted, size: 60 }],
        series: [
          { value: (u, v) => (v === null || v === undefined ? "–" : formatDateTime(v)) },
          { label: answer.chart ?? "value", stroke: "#1d5fa8", width: 1.5, points: { show: true, size: 5 } },
          { label: "CL", stroke: "#2f9e44", width: 1, dash: dashed, points: { show: false } },
          { label: "UCL", stroke: "#c92a2a", width: 1, dash: dashed, points: { show: false } },
          { label: "LCL", stroke: "#c92a2a", width: 1, dash: dashed, points: { show: false } },
          { label: "Violation", stroke: "#c92a2a", fill: "#c92a2a", width: 0, paths: () => null, points: { show: true, size: 11, fill: "#c92a2a", stroke: "#c92a2a" } },
        ],
        hooks: {
          // The rule numbers beside each red point.
          draw: [
            (u) => {
              const ctx = u.ctx;
              ctx.save();
              ctx.fillStyle = "#c92a2a";
              ctx.font = `${Math.round(12 * devicePixelRatio)}px system-ui, sans-serif`;
              const [xs, , , , , marks] = u.data;
              for (let i = 0; i < xs.length; i += 1) {
                if (marks[i] === null || marks[i] === undefined) continue;
                const x = u.valToPos(xs[i], "x", true);
                const y = u.valToPos(marks[i], "y", true);
                // Left of the point near the right edge, where the label would be cut off.
                const text = ruleText.get(xs[i]) ?? "";
                const right = x + 8 * devicePixelRatio + ctx.measureText(text).width > u.bbox.left + u.bbox.width;
                ctx.textAlign = right ? "right" : "left";
                ctx.fillText(text, x + (right ? -8 : 8) * devicePixelRatio, y - 8 * devicePixelRatio);
              }
              ctx.restore();
            },
          ],
        },
      },
      data,
      plotBox,
    );
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  loadTags();
  return () => {
    generation += 1;
    plot?.destroy();
    plot = null;
  };
}
