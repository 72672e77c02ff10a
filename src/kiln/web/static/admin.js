// Administration in the page: users and roles, API keys and device credentials, tenants and
// partner shares, connectors, and the audit log. Every change goes through the same API routes
// as scripts use, so the server checks and audits it the same way; the page only decides which
// sections to offer from the permissions GET /auth/me lists (the server refuses the rest).

import { h, jsonClient } from "./admin-dom.js";
import { apiKeysView, devicesView } from "./admin-credentials.js";
import { auditView, connectorsView } from "./admin-system.js";
import { tenantsView } from "./admin-tenants.js";
import { rolesView, usersView } from "./admin-users.js";

const SECTIONS = [
  { id: "users", label: "Users", needs: "users:manage", view: usersView },
  { id: "roles", label: "Roles", needs: "users:manage", view: rolesView },
  { id: "keys", label: "API keys", needs: "users:manage", view: apiKeysView },
  { id: "devices", label: "Devices", needs: "users:manage", view: devicesView },
  { id: "tenants", label: "Tenants", needs: "users:manage", view: tenantsView },
  { id: "connectors", label: "Connectors", needs: "system:read", view: connectorsView },
  { id: "audit", label: "Audit log", needs: "audit:read", view: auditView },
];

/** The sections `user` may open, from the permissions GET /auth/me lists. */
export function adminSections(user) {
  const held = new Set(user?.permissions ?? []);
  return SECTIONS.filter((s) => held.has(s.needs));
}

export class AdminPage {
  #root;
  #toggle;
  #plant;
  #call;
  #user = null;
  #sections = [];
  #current = null;
  #stopCurrent = null;

  /**
   * `root` is the admin view's container, `toggle` the header button that opens and closes it,
   * `plant` the operator view it replaces while open; `fetchImpl` the session's fetch.
   */
  constructor({ root, toggle, plant }, { fetchImpl }) {
    this.#root = root;
    this.#toggle = toggle;
    this.#plant = plant;
    this.#call = jsonClient(fetchImpl);
    toggle.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
  }

  get isOpen() {
    return !this.#root.hidden;
  }

  /** Offer the entry when the user may open at least one section. */
  signedIn(user) {
    this.#user = user;
    this.#sections = adminSections(user);
    this.#toggle.hidden = this.#sections.length === 0;
    if (this.#sections.length === 0) this.close();
  }

  signedOut() {
    this.#user = null; // first: closing must not show the plant again
    this.close();
    this.#sections = [];
    this.#toggle.hidden = true;
    this.#root.replaceChildren();
  }

  open(sectionId = null) {
    if (this.#sections.length === 0) return;
    this.#plant.hidden = true;
    this.#root.hidden = false;
    this.#toggle.textContent = "Plant";
    this.#toggle.setAttribute("aria-pressed", "true");
    this.#show(sectionId ?? this.#current ?? this.#sections[0].id);
  }

  close() {
    this.#stopCurrent?.();
    this.#stopCurrent = null;
    if (this.#root.hidden) return;
    this.#root.hidden = true;
    this.#root.replaceChildren(); // secrets shown once must not linger in the page
    this.#toggle.textContent = "Administration";
    this.#toggle.setAttribute("aria-pressed", "false");
    if (this.#user !== null) this.#plant.hidden = false;
  }

  #show(id) {
    const section = this.#sections.find((s) => s.id === id) ?? this.#sections[0];
    this.#stopCurrent?.();
    this.#current = section.id;
    const tabs = h(
      "nav",
      { className: "adm-tabs", attrs: { "aria-label": "Administration" } },
      this.#sections.map((s) =>
        h(
          "button",
          {
            type: "button",
            className: "adm-tab",
            dataset: { section: s.id },
            attrs: { "aria-current": s.id === section.id ? "page" : "false" },
            on: { click: () => this.#show(s.id) },
          },
          s.label,
        ),
      ),
    );
    const body = h("section", { className: "adm-body", dataset: { section: section.id } });
    this.#root.replaceChildren(h("div", { className: "adm-shell" }, tabs, body));
    const ctx = { call: this.#call, user: this.#user };
    this.#stopCurrent = section.view(body, ctx) ?? null;
  }
}
