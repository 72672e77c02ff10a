// The console's one question box: a modal <dialog> asking for a note, a shelving duration or a
// reason before an action is sent. A native dialog keeps the keyboard right for free (focus
// stays inside, Escape cancels, Enter submits); the answer is the form's values or null.

import { h } from "./admin-dom.js";

/**
 * Ask with a modal form. `fields` are {name, label, kind: "text"|"note"|"choice", required,
 * choices: [{value, label}], value}; resolves to {name: value} or null when cancelled. `check`
 * may return an error text that keeps the dialog open.
 */
export function ask({ title, intro = "", fields, submit, check = () => "" }) {
  return new Promise((resolve) => {
    const message = h("p", { className: "message", hidden: true, attrs: { role: "alert" } });
    const inputs = fields.map((f) => fieldFor(f));
    const cancel = h("button", { type: "button", className: "button" }, "Cancel");
    const ok = h("button", { type: "submit", className: "button button-primary", dataset: { role: "submit" } }, submit);
    const form = h(
      "form",
      { className: "dialog-form alm-dialog-form", method: "dialog" },
      h("h2", { id: "alm-dialog-title" }, title),
      intro ? h("p", { className: "alm-dialog-intro" }, intro) : null,
      inputs.map((i) => i.node),
      message,
      h("div", { className: "dialog-buttons" }, cancel, ok),
    );
    const dialog = h("dialog", { className: "dialog alm-dialog", attrs: { "aria-labelledby": "alm-dialog-title" } }, form);
    let answered = false;
    const finish = (values) => {
      if (answered) return;
      answered = true;
      dialog.close();
      dialog.remove();
      resolve(values);
    };
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", () => finish(null)); // Escape
    dialog.addEventListener("close", () => finish(null));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const values = Object.fromEntries(inputs.map((i) => [i.name, i.read()]));
      const problem = check(values);
      if (problem) {
        message.textContent = problem;
        message.dataset.kind = "error";
        message.hidden = false;
        return;
      }
      finish(values);
    });
    document.body.append(dialog);
    dialog.showModal();
    inputs[0]?.focus();
  });
}

function fieldFor({ name, label, kind = "text", required = false, choices = [], value = "" }) {
  if (kind === "choice") {
    const radios = choices.map((c, i) =>
      h("input", {
        type: "radio",
        name,
        value: c.value,
        checked: value ? c.value === value : i === 0,
        attrs: { "aria-label": c.label },
      }),
    );
    const node = h(
      "fieldset",
      { className: "alm-choices", dataset: { field: name } },
      h("legend", {}, label),
      radios.map((r, i) => h("label", { className: "alm-choice", dataset: { choice: choices[i].value } }, r, h("span", {}, choices[i].label))),
    );
    return {
      name,
      node,
      read: () => radios.find((r) => r.checked)?.value ?? "",
      focus: () => (radios.find((r) => r.checked) ?? radios[0])?.focus(),
    };
  }
  const input =
    kind === "note"
      ? h("textarea", { name, rows: 3, required, maxLength: 1000, value })
      : h("input", { name, type: "text", required, maxLength: 500, autocomplete: "off", value });
  const node = h("label", { className: "field", dataset: { field: name } }, h("span", {}, label), input);
  return { name, node, read: () => input.value.trim(), focus: () => input.focus() };
}
