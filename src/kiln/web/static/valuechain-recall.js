// Recall (valuechain:plan): pick the suspect lots, "Preview" walks everything they reached
// (POST /recalls without hold; nothing changes) and lists the customers and shipments to
// notify, the open orders to stop and the stock to quarantine. "Hold stock" places the holds,
// and asks for the reason first: it is written on every held lot and in the audit trail.

import { h } from "./admin-dom.js";
import { lotIds } from "./valuechain-model.js";

function list(title, name, items, render = (x) => x) {
  return h(
    "section",
    { className: "vc-recall-part", dataset: { part: name } },
    h("h4", {}, title, h("span", { className: "vc-count" }, String(items.length))),
    items.length === 0 ? h("p", { className: "vc-empty" }, "None") : h("ul", {}, items.map((x) => h("li", { dataset: { item: typeof x === "string" ? x : x.shipment ?? "" } }, render(x)))),
  );
}

/** Build the recall tab into `root`. */
export function recallView(root, { api }) {
  const lots = h("textarea", { name: "lots", rows: 2, required: true, spellcheck: false, placeholder: "LOT-1, LOT-2" });
  const choices = h("select", { name: "pick", attrs: { "aria-label": "Add a lot" } }, h("option", { value: "" }, "Add a lot…"));
  const preview = h("button", { type: "submit", className: "button button-primary", dataset: { role: "preview" } }, "Preview");
  const form = h(
    "form",
    { className: "vc-recall-form", dataset: { form: "recall" } },
    h("label", { className: "vc-field vc-field-wide" }, h("span", {}, "Suspect lots (commas or spaces between them)"), lots),
    choices,
    preview,
  );
  const status = h("p", { className: "vc-message", hidden: true, attrs: { role: "status", "aria-live": "polite" } });
  const result = h("div", { className: "vc-recall-result" });
  root.replaceChildren(form, status, result);
  let stopped = false;

  function say(text, kind = "info") {
    status.textContent = text;
    status.dataset.kind = kind;
    status.hidden = text === "";
  }

  function show(r, { held }) {
    const reason = h("input", { name: "reason", required: true, maxLength: 400, autocomplete: "off", attrs: { "aria-describedby": "vc-hold-note" } });
    const hold = h(
      "form",
      { className: "vc-hold-form", dataset: { form: "hold" } },
      h("label", { className: "vc-field vc-field-wide" }, h("span", {}, "Reason for the hold (required)"), reason),
      h("button", { type: "submit", className: "button vc-danger", dataset: { role: "hold" } }, "Hold stock"),
      h("p", { id: "vc-hold-note", className: "vc-muted" }, `Holds the ${r.quarantine.length} lot(s) to quarantine; nothing else changes.`),
    );
    hold.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        reason.focus();
        return;
      }
      try {
        const done = await api.recall(r.lots, { hold: true, reason: text });
        const refused = done.holds_refused ?? [];
        say(
          `Held ${done.holds_placed.length} lot(s)${refused.length ? `; ${refused.length} refused: ${refused.map((x) => `${x.lot} (${x.reason})`).join(", ")}` : ""}.`,
          refused.length ? "error" : "ok",
        );
        show(done, { held: true });
      } catch (err) {
        say(err?.message ?? String(err), "error");
      }
    });
    result.replaceChildren(
      h("p", { className: "vc-muted" }, `${r.reached} lot(s) reached from ${r.lots.join(", ")}${r.truncated ? " — the walk stopped at its bound: the lists may be short" : ""}.`),
      h(
        "div",
        { className: "vc-recall-grid" },
        list("Customers to notify", "customers", r.customers),
        list("Shipments", "shipments", r.shipments, (s) => `${s.shipment} to ${s.customer}: ${s.lots.join(", ")}`),
        list("Orders to stop", "orders", r.orders_to_stop, (o) => ((r.orders_state_unknown ?? []).includes(o) ? `${o} (state unknown to production)` : o)),
        list("Stock to quarantine", "quarantine", r.quarantine),
        list("Already held", "held", [...(r.held ?? []), ...(r.holds_placed ?? [])]),
        r.unknown?.length ? list("Lots not on record", "unknown", r.unknown) : null,
      ),
      held || r.quarantine.length === 0 ? null : hold,
    );
    result.dataset.loaded = held ? "held" : "preview";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = lotIds(lots.value);
    if (ids.length === 0) return;
    preview.disabled = true;
    say("Walking forward from the lots…");
    try {
      const r = await api.recall(ids);
      say(`Preview of a recall of ${ids.join(", ")}: nothing has changed yet.`);
      show(r, { held: false });
    } catch (err) {
      say(err?.message ?? String(err), "error");
      result.replaceChildren();
    } finally {
      preview.disabled = false;
    }
  });
  choices.addEventListener("change", () => {
    const ids = lotIds(lots.value);
    if (choices.value && !ids.includes(choices.value)) lots.value = [...ids, choices.value].join(", ");
    choices.value = "";
  });
  api.lots().then(
    (body) => {
      if (stopped) return;
      for (const l of body?.lots ?? []) choices.append(h("option", { value: l.id }, `${l.id} · ${l.material} · ${l.state}`));
    },
    () => {},
  );
  return () => {
    stopped = true;
  };
}
