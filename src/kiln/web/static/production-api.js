// The production API as the production pages call it (kiln.api.routers.production, and the
// SPC route). Every request goes through the session's fetch (CSRF header, renewal on 401); a
// refusal throws with the server's detail, which says what is wrong and how to ask instead.

import { jsonClient } from "./admin-dom.js";

const V = "/api/v1";

export class ProductionApi {
  #call;

  constructor(fetchImpl) {
    this.#call = jsonClient(fetchImpl);
  }

  /** {assets: [{asset, shift, category, since_us, order, oee, availability, ...}], time_us} */
  live(asset = "") {
    return this.#call("GET", `${V}/production/live`, { params: { asset } });
  }

  /** {assets: [{asset, type, line, micro_stop_s, signals}]} */
  assets() {
    return this.#call("GET", `${V}/production/assets`);
  }

  reasons(asset) {
    return this.#call("GET", `${V}/production/reasons`, { params: { asset } });
  }

  records(asset, start, end) {
    return this.#call("GET", `${V}/production/records`, { params: { asset, start, end } });
  }

  oee(asset, start, end, by = "none") {
    return this.#call("GET", `${V}/oee`, { params: { asset, start, end, by } });
  }

  pareto(asset, start, end, group = "reason") {
    return this.#call("GET", `${V}/oee/pareto`, { params: { asset, start, end, group } });
  }

  states(asset, start, end) {
    return this.#call("GET", `${V}/states`, { params: { asset, start, end } });
  }

  assign({ asset, start, end, reason, comment, action }) {
    return this.#call("POST", `${V}/states/reasons`, { body: { asset, start, end, reason, comment, action } });
  }

  split({ asset, start, end, pieces }) {
    return this.#call("POST", `${V}/states/split`, { body: { asset, start, end, pieces } });
  }

  orders(params = {}) {
    return this.#call("GET", `${V}/orders`, { params });
  }

  order(id) {
    return this.#call("GET", `${V}/orders/${encodeURIComponent(id)}`);
  }

  createOrder(order) {
    return this.#call("POST", `${V}/orders`, { body: order });
  }

  orderAction(id, action, { comment = "", expectedVersion = null } = {}) {
    return this.#call("POST", `${V}/orders/${encodeURIComponent(id)}/${action}`, {
      body: { comment, expected_version: expectedVersion },
    });
  }

  products() {
    return this.#call("GET", `${V}/products`);
  }

  /** Tags, for the SPC tag picker: {tags: [{path, data_type, unit, spec, ...}], truncated}. */
  tags(prefix = "", limit = 1000) {
    return this.#call("GET", `${V}/tags`, { params: { prefix, limit } });
  }

  /** A control chart over a tag's history (kiln.production.spc_tags.chart_over_history). */
  spc(params) {
    return this.#call("GET", `${V}/spc`, { params });
  }
}

/** A time for the API: µs since the epoch from a Date or ms, as the routes accept. */
export function toUs(ms) {
  return Math.round(Number(ms) * 1000);
}
