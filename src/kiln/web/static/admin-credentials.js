// API keys for integrations and credentials for devices. Each secret is shown once, in a box
// the person closes; the server keeps only its hash, and the lists show no secret.

import { act, button, field, form, h, heading, input, messageLine, pill, secretBox, table, when } from "./admin-dom.js";

const KEYS = "/api/v1/keys";
const DEVICES = "/api/v1/devices";

function keyState(k, now) {
  if (k.revoked_at) return pill("revoked", "idle");
  if (Date.parse(k.expires_at) <= now) return pill("expired", "warn");
  return pill("active", "good");
}

/** API keys: yours (or, as an administrator, another user's), create one for you, revoke. */
export function apiKeysView(body, { call, user }) {
  const message = messageLine();
  const secret = h("div", { className: "adm-secret-slot" });
  const list = h("div", { className: "adm-list" });
  const forms = h("div", { className: "adm-forms" });
  let owner = user.username;
  const ownerInput = input("owner", { value: owner, maxLength: 64, attrs: { "aria-label": "Owner of the keys" } });
  const ownerForm = h(
    "form",
    { className: "adm-inline", method: "get", dataset: { form: "key-owner" } },
    h("span", {}, "Keys of"),
    ownerInput,
    h("button", { type: "submit", className: "adm-button" }, "Show"),
  );
  ownerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    owner = ownerInput.value.trim() || user.username;
    load().catch((err) => message.show(err.message, "error"));
  });
  body.append(
    heading("API keys", "Keys let programs (Grafana, an ERP) act with some of their owner's permissions. A new key is created for you; a key is shown once, when it is made."),
    ownerForm,
    message,
    secret,
    list,
    forms,
  );

  async function load() {
    const params = owner === user.username ? {} : { username: owner };
    const { keys } = await call("GET", KEYS, { params });
    const now = Date.now();
    list.replaceChildren(
      table(
        ["Name", "Id", "Owner", "Permissions", "Scope", "Expires", "Last used", "State", ""],
        keys.map((k) => ({
          dataset: { key: k.id, name: k.name },
          cells: [
            h("strong", {}, k.name),
            h("code", {}, k.id),
            k.owner,
            k.permissions.join(", "),
            k.scope ?? "—",
            when(k.expires_at),
            when(k.last_used_at),
            keyState(k, now),
            k.revoked_at
              ? ""
              : button("Revoke", () =>
                  act(message, () => call("DELETE", `${KEYS}/${encodeURIComponent(k.id)}`), `Revoked key ${k.name}; it is refused from now on.`)
                    .then(({ ok }) => ok && load())
                    .catch((err) => message.show(err.message, "error")),
                ),
          ],
        })),
        { empty: `${owner} has no API keys.` },
      ),
    );
  }

  const boxes = (user.permissions ?? []).map((p) =>
    h("label", { className: "adm-check" }, h("input", { type: "checkbox", name: "permissions", value: p }), p),
  );
  forms.append(
    form(
      "Create an API key for you",
      [
        field("Name", input("name", { required: true, maxLength: 64, placeholder: "e.g. grafana" })),
        h("fieldset", { className: "adm-checks" }, h("legend", {}, "Permissions (some of yours)"), boxes),
        field("Scope (empty: all of yours)", input("scope", { placeholder: "e.g. acme/plant1" })),
        field("Valid for (days)", input("days", { type: "number", min: "1", max: "3650", required: true, attrs: { value: "90" } })),
      ],
      "Create key",
      (v, el) => {
        const permissions = new FormData(el).getAll("permissions");
        act(message, () =>
          call("POST", KEYS, { body: { name: v.name, permissions, scope: v.scope || null, expires_in_days: Number(v.days) } }),
        )
          .then(({ ok, result }) => {
            if (!ok) return undefined;
            message.show(`Created key ${result.key.name}.`, "ok");
            secret.replaceChildren(
              secretBox(`API key ${result.key.name}`, result.token, "Copy it now: Kiln keeps only its hash and will not show it again. Send it as Authorization: Bearer <key>."),
            );
            el.reset();
            owner = user.username;
            ownerInput.value = owner;
            return load();
          })
          .catch((err) => message.show(err.message, "error"));
      },
      { name: "create-key" },
    ),
  );
  load().catch((err) => message.show(err.message, "error"));
}

/** Device credentials of the tenant: create one (shown once) for a namespace prefix, revoke. */
export function devicesView(body, { call, user }) {
  const message = messageLine();
  const secret = h("div", { className: "adm-secret-slot" });
  const list = h("div", { className: "adm-list" });
  const forms = h("div", { className: "adm-forms" });
  body.append(
    heading("Devices", `Credentials of devices and edge gateways of tenant ${user.tenant}. A device may only ingest, and only below its prefix.`),
    message,
    secret,
    list,
    forms,
  );

  async function load() {
    const { devices } = await call("GET", DEVICES);
    list.replaceChildren(
      table(
        ["Device", "Prefix", "Created", "State", ""],
        devices.map((d) => ({
          dataset: { device: d.name },
          cells: [
            h("strong", {}, d.name),
            h("code", {}, d.prefix),
            when(d.created_at),
            d.revoked_at ? pill("revoked", "idle") : pill("active", "good"),
            d.revoked_at
              ? ""
              : button("Revoke", () =>
                  act(message, () => call("DELETE", `${DEVICES}/${encodeURIComponent(d.name)}`), `Revoked device ${d.name}.`)
                    .then(({ ok }) => ok && load())
                    .catch((err) => message.show(err.message, "error")),
                ),
          ],
        })),
        { empty: "No device credentials yet." },
      ),
    );
  }

  forms.append(
    form(
      "Create a device credential",
      [
        field("Name", input("name", { required: true, maxLength: 64, placeholder: "e.g. press7" })),
        field("Prefix it may publish to", input("prefix", { required: true, placeholder: "e.g. acme/plant1/press/line1/press7" })),
      ],
      "Create credential",
      (v, el) => {
        act(message, () => call("POST", DEVICES, { body: { name: v.name, prefix: v.prefix } }))
          .then(({ ok, result }) => {
            if (!ok) return undefined;
            message.show(`Created device ${result.device.name}.`, "ok");
            secret.replaceChildren(
              secretBox(`Credential of ${result.device.name}`, result.token, "Copy it now into the device: Kiln keeps only its hash and will not show it again."),
            );
            el.reset();
            return load();
          })
          .catch((err) => message.show(err.message, "error"));
      },
      { name: "create-device" },
    ),
  );
  load().catch((err) => message.show(err.message, "error"));
}
