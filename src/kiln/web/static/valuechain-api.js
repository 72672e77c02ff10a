// The value chain API as its pages call it (kiln.api.routers.valuechain and .lots, and
// production's work orders). Every request goes through the session's fetch (CSRF header,
// renewal on 401); a refusal throws with the server's detail and its status, so a page can
// tell "not shared with you" (403) from a failure.

import { jsonClient } from "./admin-dom.js";

const V = "/api/v1";
const id = encodeURIComponent;

export class ValuechainApi {
  #call;

  constructor(fetchImpl) {
    this.#call = jsonClient(fetchImpl);
  }

  organisations() {
    return this.#call("GET", `${V}/organisations`);
  }

  salesOrders() {
    return this.#call("GET", `${V}/sales-orders`, { params: { limit: 1000 } });
  }

  purchaseOrders() {
    return this.#call("GET", `${V}/purchase-orders`, { params: { limit: 1000 } });
  }

  /** Production's work orders (values:read): {orders: [{id, product, line, quantity, state, due_us}]}. */
  workOrders() {
    return this.#call("GET", `${V}/orders`, { params: { limit: 1000 } });
  }

  salesAction(orderId, action, expectedVersion) {
    return this.#call("POST", `${V}/sales-orders/${id(orderId)}/actions`, { body: { action, expected_version: expectedVersion } });
  }

  purchaseAction(orderId, action, expectedVersion) {
    return this.#call("POST", `${V}/purchase-orders/${id(orderId)}/actions`, { body: { action, expected_version: expectedVersion } });
  }

  /** A goods receipt: {line_no, quantity, lot_id, location, supplier_lot?}. */
  receive(orderId, receipt) {
    return this.#call("POST", `${V}/purchase-orders/${id(orderId)}/receipts`, { body: receipt });
  }

  planRun() {
    return this.#call("POST", `${V}/planning/runs`, { body: {} });
  }

  proposals() {
    return this.#call("GET", `${V}/planning/proposals`, { params: { limit: 1000 } });
  }

  confirm(proposalId, line = null) {
    return this.#call("POST", `${V}/planning/proposals/${id(proposalId)}/confirm`, { body: line ? { line } : {} });
  }

  dismiss(proposalId) {
    return this.#call("POST", `${V}/planning/proposals/${id(proposalId)}/dismiss`);
  }

  inventory() {
    return this.#call("GET", `${V}/inventory`);
  }

  /** Lots, at `location` and below it when given. */
  lots(location = null) {
    return this.#call("GET", `${V}/lots`, { params: { location, limit: 1000 } });
  }

  genealogy(lotId, direction) {
    return this.#call("GET", `${V}/lots/${id(lotId)}/genealogy`, { params: { direction, max_nodes: 200 } });
  }

  /** A recall: a preview without `hold`, the holds placed with it (and a reason). */
  recall(lots, { hold = false, reason = null } = {}) {
    const body = { lots, hold };
    if (reason) body.reason = reason;
    return this.#call("POST", `${V}/recalls`, { body });
  }

  /** Production's assets, for the lines a work order may run on. */
  productionAssets() {
    return this.#call("GET", `${V}/production/assets`);
  }
}
