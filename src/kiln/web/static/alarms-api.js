// The alarm API (/api/v1/alarms) as the console calls it. Every request goes through the
// session's fetch (CSRF header, renewal on 401); a refusal throws with the server's detail,
// which says what is wrong (a note this priority requires, an alarm already normal, ...).

import { jsonClient } from "./admin-dom.js";
import { queryString } from "./api.js";
import { alarmUrl } from "./alarms-model.js";

const BASE = "/api/v1/alarms";

/** Drop empty filter values so the server applies its defaults. */
function clean(params) {
  const out = {};
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== null && value !== undefined && value !== "") out[key] = value;
  }
  return out;
}

export class AlarmApi {
  #call;

  constructor(fetchImpl) {
    this.#call = jsonClient(fetchImpl);
  }

  /** GET /alarms: {alarms, now_us, counts}. */
  list(params = {}) {
    return this.#call("GET", BASE, { params: clean(params) });
  }

  /** Acknowledge many at once: {results: [{id, ok, error}]}. */
  ack(ids, note) {
    return this.#call("POST", `${BASE}/ack`, { body: { ids, note: note || null } });
  }

  shelve(id, { seconds, oneShot, note }) {
    return this.#call("POST", alarmUrl(id, "shelve"), {
      body: { duration_s: oneShot ? null : seconds, one_shot: oneShot, note: note || null },
    });
  }

  unshelve(id, note) {
    return this.#call("POST", alarmUrl(id, "unshelve"), { body: { note: note || null } });
  }

  outOfService(id, on, reason) {
    return this.#call("POST", alarmUrl(id, "out-of-service"), { body: { on, reason } });
  }

  reset(id, note) {
    return this.#call("POST", alarmUrl(id, "reset"), { body: { note: note || null } });
  }

  comment(id, comment) {
    return this.#call("POST", alarmUrl(id, "comment"), { body: { comment } });
  }

  /** GET /alarms/journal: {entries, next_before_seq}. */
  journal(params = {}) {
    return this.#call("GET", `${BASE}/journal`, { params: clean(params) });
  }

  /** The address of the journal as CSV under the same filters, for a download link. */
  journalCsvUrl(params = {}) {
    return `${BASE}/journal${queryString({ ...clean(params), format: "csv" })}`;
  }

  /** GET /alarms/kpis: the figures with verdicts and the 10-minute rate series. */
  kpis(params = {}) {
    return this.#call("GET", `${BASE}/kpis`, { params: clean(params) });
  }
}
