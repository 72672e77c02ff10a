// Tenants (organisations) and the subtrees an owner shares, read-only, with its partners.

import { act, button, field, form, h, heading, input, messageLine, select, table, when } from "./admin-dom.js";

const TENANTS = "/api/v1/tenants";
const SHARES = "/api/v1/shares";

/** Tenants: list and create (with a first administrator); shares: list, create, withdraw. */
export function tenantsView(body, { call, user }) {
  const message = messageLine();
  const tenantList = h("div", { className: "adm-list" });
  const shareList = h("div", { className: "adm-list" });
  const forms = h("div", { className: "adm-forms" });
  body.append(
    heading("Tenants", "Owners run plants and own parts of the namespace; partners (suppliers, customers) own none and see only what an owner shares with them."),
    message,
    tenantList,
    h("h3", { className: "adm-subhead" }, "Shared with partners"),
    shareList,
    forms,
  );

  const change = (fn, done) =>
    act(message, fn, done)
      .then(({ ok }) => ok && load())
      .catch((err) => message.show(err.message, "error"));

  async function load() {
    const [{ tenants }, { shares }] = await Promise.all([call("GET", TENANTS), call("GET", SHARES)]);
    tenantList.replaceChildren(
      table(
        ["Tenant", "Kind", "Namespace roots", "Created"],
        tenants.map((t) => ({
          dataset: { tenant: t.name },
          cells: [h("strong", {}, t.name), t.kind, t.roots.length ? t.roots.join(", ") : "—", when(t.created_at)],
        })),
      ),
    );
    shareList.replaceChildren(
      table(
        ["Owner", "Partner", "Subtree", "Permission", ""],
        shares.map((s) => ({
          dataset: { partner: s.partner, resource: s.resource_id },
          cells: [
            s.owner,
            h("strong", {}, s.partner),
            h("code", {}, s.resource_id),
            s.permission,
            s.owner === user.tenant
              ? button("Withdraw", () =>
                  change(
                    () =>
                      call("DELETE", `${TENANTS}/${encodeURIComponent(s.partner)}/shares`, {
                        params: { resource_id: s.resource_id, kind: s.kind },
                      }),
                    `Withdrew ${s.resource_id} from ${s.partner}.`,
                  ),
                )
              : "",
          ],
        })),
        { empty: "Nothing is shared." },
      ),
    );
    const partners = tenants.filter((t) => t.kind === "partner").map((t) => t.name);
    const partnerInput = partners.length
      ? select("partner", partners)
      : input("partner", { required: true, placeholder: "partner tenant name" });
    forms.replaceChildren(
      form(
        "Create a tenant",
        [
          field("Name", input("name", { required: true, maxLength: 64, placeholder: "lowercase, e.g. supplier-a" })),
          field("Kind", select("kind", ["owner", "partner"])),
          field("Namespace roots (owner; comma-separated)", input("roots", { placeholder: "e.g. globex" })),
          field("First administrator (optional)", input("admin_username", { maxLength: 64 })),
          field("Their password", input("admin_password", { type: "password", autocomplete: "new-password" })),
        ],
        "Create tenant",
        (v) =>
          change(
            () =>
              call("POST", TENANTS, {
                body: {
                  name: v.name,
                  kind: v.kind,
                  roots: v.roots ? v.roots.split(",").map((r) => r.trim()).filter(Boolean) : [],
                  admin_username: v.admin_username || null,
                  admin_password: v.admin_password || null,
                },
              }),
            `Created tenant ${v.name}.`,
          ),
        { name: "create-tenant" },
      ),
      form(
        "Share a subtree with a partner",
        [
          field("Partner", partnerInput),
          field("Subtree of your namespace", input("resource_id", { required: true, placeholder: "e.g. acme/plant1/packaging" })),
        ],
        "Share read-only",
        (v) =>
          change(
            () => call("POST", `${TENANTS}/${encodeURIComponent(v.partner)}/shares`, { body: { resource_id: v.resource_id } }),
            `Shared ${v.resource_id} with ${v.partner}, read-only.`,
          ),
        { name: "create-share" },
      ),
    );
  }

  load().catch((err) => message.show(err.message, "error"));
}
