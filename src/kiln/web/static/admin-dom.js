// Small DOM and HTTP helpers for the Administration pages. Text always goes in as textContent,
// never as HTML: user names, paths and audit details come from other people.

import { errorDetail } from "./api.js";

/**
 * An element: `h("td", {className: "x", dataset: {path: p}}, "text", child)`. Attributes that
 * are properties (className, type, value, checked, disabled, hidden) are set as properties,
 * `dataset` and `attrs` as attributes, `on` as event listeners (never inline handlers).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const { dataset, attrs, on, ...rest } = props ?? {};
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined && value !== null) el[key] = value;
  }
  for (const [key, value] of Object.entries(dataset ?? {})) el.dataset[key] = value;
  for (const [key, value] of Object.entries(attrs ?? {})) el.setAttribute(key, value);
  for (const [event, fn] of Object.entries(on ?? {})) el.addEventListener(event, fn);
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** A labelled form field around `input`. */
export function field(label, input) {
  return h("label", { className: "adm-field" }, h("span", {}, label), input);
}

export function input(name, props = {}) {
  return h("input", { name, type: "text", autocomplete: "off", spellcheck: false, ...props });
}

export function select(name, options, props = {}) {
  return h(
    "select",
    { name, ...props },
    options.map((o) => (typeof o === "string" ? h("option", { value: o }, o) : h("option", { value: o.value }, o.label))),
  );
}

export function button(text, onClick, className = "adm-button") {
  return h("button", { type: "button", className, on: { click: onClick } }, text);
}

/** A table with a header row; `rows` are arrays of cells (text or nodes). */
export function table(headers, rows, { empty = "Nothing here yet.", className = "" } = {}) {
  if (rows.length === 0) return h("p", { className: "adm-empty" }, empty);
  return h(
    "div",
    { className: "adm-table-wrap" },
    h(
      "table",
      { className: `adm-table ${className}`.trim() },
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        rows.map((row) => {
          const cells = Array.isArray(row) ? row : row.cells;
          const tr = h("tr", { dataset: Array.isArray(row) ? {} : row.dataset ?? {} });
          tr.append(...cells.map((c) => h("td", {}, c ?? "")));
          return tr;
        }),
      ),
    ),
  );
}

/** A pill, e.g. a state or a role; `kind` picks its colour (good, warn, bad, idle). */
export function pill(text, kind = "idle") {
  return h("span", { className: "adm-pill", dataset: { kind } }, text);
}

/** "2026-01-01 08:00:00" in the browser's zone, or "—" for nothing. */
export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

/** A value of a detail object in a few words: nested objects as "key: value" pairs. */
export function brief(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(brief).join(", ");
  if (typeof value === "object") {
    return Object.entries(value)
      .map(([k, v]) => {
        const record = typeof v === "object" && v !== null && !Array.isArray(v);
        return `${k}: ${record ? `{${brief(v)}}` : brief(v)}`;
      })
      .join(", ");
  }
  return String(value);
}

/** The fields of a form as an object of trimmed strings. */
export function formValues(form) {
  const out = {};
  for (const [key, value] of new FormData(form).entries()) {
    if (typeof value === "string") out[key] = value.trim();
  }
  return out;
}

/** An API call that failed, with the server's message (which says how to fix the request). */
export class AdminError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "AdminError";
    this.status = status;
  }
}

/**
 * JSON over the session's fetch (which adds the CSRF header and renews an expired token):
 * returns the decoded body, null for 204, and throws AdminError with the server's detail.
 */
export function jsonClient(fetchImpl) {
  return async (method, path, { body, params } = {}) => {
    let url = path;
    if (params) {
      const search = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) {
        if (v !== null && v !== undefined && v !== "") search.set(k, String(v));
      }
      const text = search.toString();
      if (text) url += `?${text}`;
    }
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetchImpl(url, init);
    } catch (err) {
      throw new AdminError(`Cannot reach the Kiln server: ${err?.message ?? err}`, 0);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      throw new AdminError(errorDetail(response.status, data, response.statusText), response.status);
    }
    return data;
  };
}

/** A message line under a form: `show(text, kind)`, empty text hides it. */
export function messageLine() {
  const el = h("p", { className: "adm-message", hidden: true, attrs: { role: "status" } });
  el.show = (text, kind = "info") => {
    el.textContent = text;
    el.dataset.kind = kind;
    el.hidden = text === "";
  };
  return el;
}

/**
 * The box that shows a new secret once: the token to copy, the warning that it will not be
 * shown again, and "Done", which removes it from the page.
 */
export function secretBox(title, token, note) {
  const value = h("input", {
    className: "adm-secret-value",
    type: "text",
    value: token,
    readOnly: true,
    spellcheck: false,
    attrs: { "aria-label": title },
  });
  const copy = button("Copy", async () => {
    value.select();
    try {
      await navigator.clipboard.writeText(token);
      copy.textContent = "Copied";
    } catch {
      // No clipboard outside secure contexts: the text is selected for Ctrl+C instead.
      copy.textContent = "Selected: press Ctrl+C";
    }
  });
  const box = h(
    "div",
    { className: "adm-secret", attrs: { role: "alert" } },
    h("strong", {}, title),
    h("p", {}, note),
    h("div", { className: "adm-secret-row" }, value, copy),
  );
  const done = button("Done, I have stored it", () => box.remove(), "adm-button adm-primary");
  box.append(done);
  return box;
}

/**
 * Run `fn` (an API change) and report in `message`: `done` (text, or a function of fn's result)
 * on success, the server's reason on failure. Resolves to {ok, result}.
 */
export async function act(message, fn, done = "") {
  message.show("Working…");
  try {
    const result = await fn();
    message.show(typeof done === "function" ? done(result) : done, "ok");
    return { ok: true, result };
  } catch (err) {
    message.show(err?.message ?? String(err), "error");
    return { ok: false, result: undefined };
  }
}

/** A section's heading with an explanation under it. */
export function heading(title, note) {
  return h("header", { className: "adm-head" }, h("h2", {}, title), note ? h("p", { className: "adm-note" }, note) : null);
}

/** A titled form that calls `onSubmit(values, form)`; the browser's own checks run first. */
export function form(title, fields, submitText, onSubmit, { name = "" } = {}) {
  const el = h(
    "form",
    { className: "adm-form", method: "post", dataset: { form: name } },
    h("h3", {}, title),
    h("div", { className: "adm-form-fields" }, fields),
    h("button", { type: "submit", className: "adm-button adm-primary" }, submitText),
  );
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(formValues(el), el);
  });
  return el;
}
