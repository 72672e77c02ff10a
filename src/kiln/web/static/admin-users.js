// Users of the tenant with their roles and scopes, and the roles themselves.

import { act, button, field, form, h, heading, input, messageLine, pill, select, table, when } from "./admin-dom.js";

const USERS = "/api/v1/users";
const ROLES = "/api/v1/roles";

function scopeText(scope) {
  return scope ?? "whole tenant";
}

/** The users view: list, create, roles (assign, remove), disable or enable, set a password. */
export function usersView(body, { call, user }) {
  const message = messageLine();
  const list = h("div", { className: "adm-list" });
  const forms = h("div", { className: "adm-forms" });
  body.append(
    heading("Users", `People of tenant ${user.tenant}. A role may be limited to a part of the namespace (its scope).`),
    message,
    list,
    forms,
  );

  async function load() {
    const [{ users }, { roles }] = await Promise.all([call("GET", USERS), call("GET", ROLES)]);
    render(users, roles.map((r) => r.name));
  }

  const change = (fn, done) => act(message, fn, done)
      .then(({ ok }) => ok && load())
      .catch((err) => message.show(err.message, "error"));

  function render(users, roleNames) {
    const rows = users.map((u) => ({
      dataset: { username: u.username },
      cells: [
        h("strong", {}, u.username),
        h(
          "span",
          { className: "adm-chips" },
          u.roles.length === 0 ? h("span", { className: "adm-muted" }, "no role") : null,
          u.roles.map((r) =>
            h(
              "span",
              { className: "adm-chip", dataset: { role: r.role, scope: r.scope ?? "" } },
              `${r.role} · ${scopeText(r.scope)}`,
              h(
                "button",
                {
                  type: "button",
                  className: "adm-chip-remove",
                  title: `Remove role ${r.role} (${scopeText(r.scope)}) from ${u.username}`,
                  attrs: { "aria-label": `Remove role ${r.role} from ${u.username}` },
                  on: {
                    click: () =>
                      change(
                        () => call("DELETE", `${USERS}/${encodeURIComponent(u.username)}/roles`, { params: { role: r.role, scope: r.scope } }),
                        `Removed role ${r.role} from ${u.username}.`,
                      ),
                  },
                },
                "×",
              ),
            ),
          ),
        ),
        u.disabled ? pill("disabled", "bad") : pill("active", "good"),
        u.totp_enabled ? "on" : "off",
        when(u.last_login_at),
        button(u.disabled ? "Enable" : "Disable", () =>
          change(
            () => call("PUT", `${USERS}/${encodeURIComponent(u.username)}/disabled`, { body: { disabled: !u.disabled } }),
            `${u.username} is ${u.disabled ? "enabled" : "disabled"}.`,
          ),
        ),
      ],
    }));
    list.replaceChildren(
      table(["User", "Roles and scopes", "Status", "TOTP", "Last sign-in", ""], rows, { className: "adm-users" }),
    );
    const names = users.map((u) => u.username);
    forms.replaceChildren(
      form(
        "Create a user",
        [
          field("User name", input("username", { required: true, maxLength: 64 })),
          field("Password", input("password", { type: "password", required: true, autocomplete: "new-password" })),
          field("Role", select("role", roleNames)),
          field("Scope (empty: whole tenant)", input("scope", { placeholder: "e.g. acme/plant1/packaging" })),
        ],
        "Create user",
        (v, el) =>
          change(async () => {
            await call("POST", USERS, { body: { username: v.username, password: v.password, roles: [v.role], scope: v.scope || null } });
            el.reset();
          }, `Created user ${v.username}.`),
        { name: "create-user" },
      ),
      form(
        "Assign a role",
        [
          field("User", select("username", names)),
          field("Role", select("role", roleNames)),
          field("Scope (empty: whole tenant)", input("scope", { placeholder: "e.g. acme/plant1" })),
        ],
        "Assign",
        (v) =>
          change(
            () => call("POST", `${USERS}/${encodeURIComponent(v.username)}/roles`, { body: { role: v.role, scope: v.scope || null } }),
            `Gave ${v.username} the role ${v.role} (${scopeText(v.scope || null)}).`,
          ),
        { name: "assign-role" },
      ),
      form(
        "Set a password",
        [
          field("User", select("username", names)),
          field("New password", input("password", { type: "password", required: true, autocomplete: "new-password" })),
        ],
        "Set password",
        (v, el) =>
          change(async () => {
            await call("PUT", `${USERS}/${encodeURIComponent(v.username)}/password`, { body: { new_password: v.password } });
            el.reset();
          }, `Password of ${v.username} set; their other sessions have ended.`),
        { name: "set-password" },
      ),
    );
  }

  load().catch((err) => message.show(err.message, "error"));
}

/** The roles view: built-in and custom roles with their permissions, and a new custom role. */
export function rolesView(body, { call, user }) {
  const message = messageLine();
  const list = h("div", { className: "adm-list" });
  const forms = h("div", { className: "adm-forms" });
  body.append(
    heading("Roles", `Built-in roles and the custom roles of tenant ${user.tenant}: named sets of permissions.`),
    message,
    list,
    forms,
  );

  async function load() {
    const { roles } = await call("GET", ROLES);
    const all = [...new Set(roles.flatMap((r) => r.permissions))].sort();
    list.replaceChildren(
      table(
        ["Role", "Kind", "Permissions"],
        roles.map((r) => ({
          dataset: { role: r.name },
          cells: [h("strong", {}, r.name), r.builtin ? "built-in" : "custom", r.permissions.join(", ")],
        })),
      ),
    );
    const boxes = all.map((p) =>
      h("label", { className: "adm-check" }, h("input", { type: "checkbox", name: "permissions", value: p }), p),
    );
    forms.replaceChildren(
      form(
        "Create a role",
        [field("Name", input("name", { required: true, maxLength: 64 })), h("fieldset", { className: "adm-checks" }, h("legend", {}, "Permissions"), boxes)],
        "Create role",
        (v, el) => {
          const permissions = new FormData(el).getAll("permissions");
          act(message, () => call("POST", ROLES, { body: { name: v.name, permissions } }), `Created role ${v.name}.`)
            .then(({ ok }) => ok && load())
            .catch((err) => message.show(err.message, "error"));
        },
        { name: "create-role" },
      ),
    );
  }

  load().catch((err) => message.show(err.message, "error"));
}
