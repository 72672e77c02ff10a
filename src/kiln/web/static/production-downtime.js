// Downtime reasons, for operators at a touch screen (every target at least 48 px): the stops of
// a machine over the chosen range (those without a reason first of all), a reason picked from
// the machine's reason tree with big buttons, an optional comment; "Split" cuts a stop at chosen
// times into 2 to 4 pieces, each with its reason; a stop that has a reason can be given another
// (reassign). The records trail below shows who entered what, when: the server keeps every
// record, and where records overlap the later one counts, once.

import { h, select } from "./admin-dom.js";
import { formatDateTime } from "./format.js";
import { categoryGroup, categoryLabel, duration, evenCuts, isStop, reasonChoices, splitPieces } from "./production-model.js";

const RANGES = [
  { value: "shift", label: "This shift" },
  { value: "-8h", label: "Last 8 h" },
  { value: "-24h", label: "Last 24 h" },
  { value: "-7d", label: "Last 7 days" },
];
const MAX_PIECES = 4;

function localInput(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function stopKey(stop) {
  return `${stop.start_us}-${stop.end_us}`;
}

/** Build the downtime entry into `root`; `can.enter` shows the entry controls. */
export function downtimeView(root, { api, can, asset: initialAsset }) {
  const asset = h("select", { name: "asset", className: "prd-big", attrs: { "aria-label": "Machine" } });
  const range = select("range", RANGES, { className: "prd-big", attrs: { "aria-label": "Range" } });
  const onlyOpen = h("input", { type: "checkbox", name: "open", checked: true });
  const toolbar = h(
    "form",
    { className: "prd-toolbar", dataset: { form: "downtime" } },
    h("label", { className: "prd-filter" }, h("span", {}, "Machine"), asset),
    h("label", { className: "prd-filter" }, h("span", {}, "Range"), range),
    h("label", { className: "prd-check prd-big" }, onlyOpen, h("span", {}, "Only stops without a reason")),
  );
  const status = h("p", { className: "prd-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
  const stopsList = h("div", { className: "prd-stops", attrs: { "aria-label": "Stops" } });
  const editor = h("section", { className: "prd-editor", hidden: true, attrs: { "aria-label": "Reason for the stop" } });
  const trail = h("div", { className: "prd-trail" });
  root.replaceChildren(
    toolbar,
    status,
    h("div", { className: "prd-downtime" }, h("section", { className: "prd-section" }, h("h3", {}, "Stops"), stopsList), editor),
    h("section", { className: "prd-section", dataset: { section: "trail" } }, h("h3", {}, "Records trail"), trail),
  );
  let stops = [];
  let tree = [];
  let selected = null;
  let windowMs = null;
  let generation = 0;

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  async function windowOf(path) {
    if (range.value === "shift") {
      const body = await api.oee(path, "-24h", "now", "shift");
      const last = body.buckets.at(-1);
      return last ? [Math.floor(last.start_us / 1000), Math.ceil(last.end_us / 1000)] : [Math.floor(body.start_us / 1000), Math.ceil(body.end_us / 1000)];
    }
    const body = await api.oee(path, range.value, "now", "none");
    return [Math.floor(body.start_us / 1000), Math.ceil(body.end_us / 1000)];
  }

  async function start() {
    try {
      const body = await api.assets();
      const assets = (body?.assets ?? []).map((a) => a.asset);
      asset.replaceChildren(...assets.map((a) => h("option", { value: a }, a)));
      if (initialAsset && assets.includes(initialAsset)) asset.value = initialAsset;
      if (assets.length === 0) {
        say("No machine has production data yet.");
        return;
      }
    } catch (err) {
      say(`Could not load the machines: ${err?.message ?? err}`, "error");
      return;
    }
    await load();
  }

  async function load({ keep = false } = {}) {
    const mine = ++generation;
    const path = asset.value;
    if (!path) return;
    if (!keep) {
      selected = null;
      editor.hidden = true;
    }
    try {
      windowMs = await windowOf(path);
      const [a, b] = windowMs;
      const [states, reasons, records] = await Promise.all([
        api.states(path, String(a), String(b)),
        api.reasons(path),
        api.records(path, String(a), String(b)),
      ]);
      if (mine !== generation) return;
      tree = reasons?.tree ?? [];
      stops = (states?.intervals ?? []).filter((iv) => iv.asset === path && isStop(iv.category));
      drawStops();
      drawTrail(records?.records ?? []);
      root.dataset.loaded = String(mine);
      if (keep && selected) {
        const again = stops.find((s) => stopKey(s) === stopKey(selected));
        if (again) choose(again);
        else {
          selected = null;
          editor.hidden = true;
        }
      }
    } catch (err) {
      if (mine === generation) say(`Could not load the stops: ${err?.message ?? err}`, "error");
    }
  }

  function drawStops() {
    const shown = onlyOpen.checked ? stops.filter((s) => !s.reason) : stops;
    stopsList.dataset.count = String(shown.length);
    if (shown.length === 0) {
      stopsList.replaceChildren(h("p", { className: "prd-empty" }, onlyOpen.checked ? "Every stop in this range has a reason." : "No stops in this range."));
      return;
    }
    stopsList.replaceChildren(
      ...shown.map((s) =>
        h(
          "button",
          {
            type: "button",
            className: "prd-stop",
            dataset: { start: String(s.start_us), end: String(s.end_us), category: s.category, group: categoryGroup(s.category), reason: s.reason ?? "", source: s.source },
            attrs: { "aria-pressed": String(selected !== null && stopKey(selected) === stopKey(s)) },
            on: { click: () => choose(s) },
          },
          h("span", { className: "prd-stop-time" }, `${formatDateTime(s.start_us / 1000)} – ${formatDateTime(s.end_us / 1000)}`),
          h("span", { className: "prd-stop-length" }, duration(s.end_us - s.start_us)),
          h("span", { className: "prd-stop-cat" }, categoryLabel(s.category)),
          h("span", { className: "prd-stop-reason" }, s.reason ? `${s.reason}${s.source === "operator" ? " (entered)" : ""}` : "no reason"),
        ),
      ),
    );
  }

  function choose(stop) {
    selected = stop;
    for (const b of stopsList.querySelectorAll(".prd-stop")) {
      b.setAttribute("aria-pressed", String(b.dataset.start === String(stop.start_us) && b.dataset.end === String(stop.end_us)));
    }
    if (!can.enter) {
      editor.hidden = true;
      return;
    }
    drawAssign();
  }

  function header() {
    const s = selected;
    return h(
      "header",
      { className: "prd-editor-head" },
      h("h3", {}, `${categoryLabel(s.category)}, ${duration(s.end_us - s.start_us)}`),
      h("p", {}, `${formatDateTime(s.start_us / 1000)} – ${formatDateTime(s.end_us / 1000)}${s.reason ? ` · now: ${s.reason}` : ""}`),
    );
  }

  function reasonButtons(onPick) {
    const choices = reasonChoices(tree);
    if (choices.length === 0) return h("p", { className: "prd-empty" }, "This machine's type has no reason tree: add one to its state model.");
    return h(
      "div",
      { className: "prd-reasons", attrs: { role: "group", "aria-label": "Reasons" } },
      choices.map((c) =>
        h(
          "button",
          {
            type: "button",
            className: "prd-reason",
            dataset: { reason: c.path, group: categoryGroup(c.category), depth: String(c.depth) },
            attrs: { "aria-pressed": "false" },
            title: `${c.path} (${categoryLabel(c.category)})`,
            on: { click: (event) => onPick(c.path, event.currentTarget) },
          },
          h("span", { className: "prd-reason-name" }, c.path.replaceAll("/", " › ")),
          h("span", { className: "prd-reason-cat" }, categoryLabel(c.category)),
        ),
      ),
    );
  }

  function drawAssign() {
    let reason = "";
    const comment = h("textarea", { name: "comment", rows: 2, maxLength: 2000, placeholder: "Comment (optional)", className: "prd-comment" });
    const reassign = Boolean(selected.reason);
    const save = h("button", { type: "button", className: "button button-primary prd-big", disabled: true, dataset: { role: "save" } }, reassign ? "Reassign" : "Save reason");
    const buttons = reasonButtons((path, el) => {
      reason = path;
      for (const b of editor.querySelectorAll(".prd-reason")) b.setAttribute("aria-pressed", String(b === el));
      save.disabled = false;
    });
    save.addEventListener("click", async () => {
      save.disabled = true;
      const s = selected;
      try {
        await api.assign({ asset: asset.value, start: s.start_us, end: s.end_us, reason, comment: comment.value.trim(), action: reassign ? "reassign" : "assign" });
        say(`Saved: ${reason} for the stop from ${formatDateTime(s.start_us / 1000)}.`, "ok");
        await load();
      } catch (err) {
        say(err?.message ?? String(err), "error");
        save.disabled = false;
      }
    });
    editor.hidden = false;
    editor.replaceChildren(
      header(),
      buttons,
      comment,
      h(
        "div",
        { className: "prd-editor-buttons" },
        save,
        h("button", { type: "button", className: "button prd-big", dataset: { role: "split" }, on: { click: () => drawSplit(2) } }, "Split…"),
        h("button", { type: "button", className: "button prd-big", on: { click: () => { selected = null; editor.hidden = true; drawStops(); } } }, "Cancel"),
      ),
    );
  }

  function drawSplit(count) {
    const s = selected;
    const cuts = evenCuts(s.start_us, s.end_us, count);
    const choices = reasonChoices(tree);
    const rows = [];
    for (let i = 0; i < count; i += 1) {
      const end = i < count - 1
        ? h("input", { type: "datetime-local", step: 1, name: `end${i}`, className: "prd-big", value: localInput(cuts[i] / 1000), attrs: { "aria-label": `Piece ${i + 1} ends at` } })
        : h("span", { className: "prd-piece-end" }, `until ${formatDateTime(s.end_us / 1000)}`);
      const reason = h(
        "select",
        { name: `reason${i}`, className: "prd-big", attrs: { "aria-label": `Reason of piece ${i + 1}` } },
        h("option", { value: "" }, "Choose a reason…"),
        choices.map((c) => h("option", { value: c.path }, `${"  ".repeat(c.depth)}${c.path} (${categoryLabel(c.category)})`)),
      );
      const comment = h("input", { type: "text", name: `comment${i}`, className: "prd-big", maxLength: 2000, placeholder: "Comment (optional)", attrs: { "aria-label": `Comment of piece ${i + 1}` } });
      rows.push({ end, reason, comment, el: h("div", { className: "prd-piece", dataset: { piece: String(i + 1) } }, h("strong", {}, `Piece ${i + 1}`), end, reason, comment) });
    }
    const message = h("p", { className: "prd-message", hidden: true, attrs: { role: "alert" } });
    const save = h("button", { type: "button", className: "button button-primary prd-big", dataset: { role: "save-split" } }, `Save ${count} pieces`);
    save.addEventListener("click", async () => {
      const cutUs = rows.slice(0, -1).map((r) => new Date(r.end.value).getTime() * 1000);
      const result = splitPieces(s.start_us, s.end_us, cutUs, rows.map((r) => r.reason.value), rows.map((r) => r.comment.value.trim()));
      if (result.error) {
        message.hidden = false;
        message.dataset.kind = "error";
        message.textContent = result.error;
        return;
      }
      save.disabled = true;
      try {
        await api.split({ asset: asset.value, start: s.start_us, end: s.end_us, pieces: result.pieces });
        say(`Split the stop from ${formatDateTime(s.start_us / 1000)} into ${count} pieces.`, "ok");
        await load();
      } catch (err) {
        message.hidden = false;
        message.dataset.kind = "error";
        message.textContent = err?.message ?? String(err);
        save.disabled = false;
      }
    });
    const counts = h(
      "div",
      { className: "segmented prd-piece-count", attrs: { role: "group", "aria-label": "Pieces" } },
      [2, 3, 4].filter((n) => n <= MAX_PIECES).map((n) =>
        h("button", { type: "button", className: "prd-big", dataset: { pieces: String(n) }, attrs: { "aria-pressed": String(n === count) }, on: { click: () => drawSplit(n) } }, `${n} pieces`),
      ),
    );
    editor.hidden = false;
    editor.replaceChildren(
      header(),
      counts,
      h("div", { className: "prd-pieces" }, rows.map((r) => r.el)),
      message,
      h(
        "div",
        { className: "prd-editor-buttons" },
        save,
        h("button", { type: "button", className: "button prd-big", on: { click: () => drawAssign() } }, "Back"),
      ),
    );
  }

  function drawTrail(records) {
    trail.dataset.count = String(records.length);
    if (records.length === 0) {
      trail.replaceChildren(h("p", { className: "prd-empty" }, "No reasons entered in this range yet."));
      return;
    }
    const sorted = [...records].sort((a, b) => b.entered_us - a.entered_us || b.id - a.id);
    trail.replaceChildren(
      h(
        "table",
        { className: "prd-table" },
        h("thead", {}, h("tr", {}, ["Entered", "By", "Action", "Reason", "Stop part", "Comment"].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          sorted.map((r) =>
            h(
              "tr",
              { dataset: { record: String(r.id), action: r.action, reason: r.reason } },
              h("td", {}, formatDateTime(r.entered_us / 1000)),
              h("td", {}, r.user || "—"),
              h("td", {}, r.action),
              h("td", {}, `${r.reason} (${categoryLabel(r.category)})`),
              h("td", {}, `${formatDateTime(r.start_us / 1000)} – ${formatDateTime(r.end_us / 1000)}`),
              h("td", {}, r.comment || ""),
            ),
          ),
        ),
      ),
    );
  }

  asset.addEventListener("change", () => load());
  range.addEventListener("change", () => load());
  onlyOpen.addEventListener("change", () => drawStops());
  toolbar.addEventListener("submit", (event) => event.preventDefault());
  start();
  return () => {
    generation += 1;
  };
}
