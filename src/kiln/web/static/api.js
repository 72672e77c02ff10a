// HTTP access to the Kiln API. Every failure becomes an ApiError whose message is fit to show
// an operator: the server's "detail" (which says how to fix it) or what went wrong on the wire.

/** An API call that failed; `status` is 0 when the server could not be reached. */
export class ApiError extends Error {
  constructor(message, status, body = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/**
 * The message for a non-2xx response. FastAPI sends {"detail": "text"} for Kiln's own errors
 * and {"detail": [{"loc": [...], "msg": "..."}]} for request validation errors.
 */
export function errorDetail(status, body, statusText = "") {
  const detail = body && typeof body === "object" ? body.detail : undefined;
  if (typeof detail === "string" && detail !== "") return detail;
  if (Array.isArray(detail) && detail.length > 0) {
    return detail
      .map((item) => {
        if (!item || typeof item !== "object") return String(item);
        const loc = Array.isArray(item.loc) ? item.loc.join(".") : "";
        const msg = typeof item.msg === "string" ? item.msg : JSON.stringify(item);
        return loc ? `${loc}: ${msg}` : msg;
      })
      .join("; ");
  }
  return `HTTP ${status}${statusText ? ` ${statusText}` : ""} with no error detail`;
}

/** The query string for `params`, leaving out null and undefined values. */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== null && value !== undefined) search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** A small client for the JSON API of the server that served this page. */
export class Api {
  #clock;
  #fetch;

  /** `clock` (a ServerClock) learns the server time from each response's Date header. */
  constructor(clock, fetchImpl = (...args) => globalThis.fetch(...args)) {
    this.#clock = clock;
    this.#fetch = fetchImpl;
  }

  /**
   * GET `path` and return {status, body}, whatever the status. Throws ApiError only when there
   * is no usable JSON response at all. An AbortError passes through unchanged.
   */
  async request(path, params = {}, { signal } = {}) {
    const url = path + queryString(params);
    const sent = Date.now();
    let response;
    try {
      response = await this.#fetch(url, { headers: { Accept: "application/json" }, signal });
    } catch (err) {
      if (err?.name === "AbortError") throw err;
      throw new ApiError(`Cannot reach the Kiln server (${url}): ${err?.message ?? err}`, 0);
    }
    const received = Date.now();
    const date = Date.parse(response.headers.get("Date") ?? "");
    this.#clock?.observe(date, sent, received);
    let body = null;
    try {
      body = await response.json();
    } catch (err) {
      if (err?.name === "AbortError") throw err;
      if (response.ok) {
        throw new ApiError(`${url} answered HTTP ${response.status} without valid JSON`, response.status);
      }
    }
    return { status: response.status, ok: response.ok, body, statusText: response.statusText };
  }

  /** GET `path` and return its JSON body; a non-2xx answer throws ApiError with the detail. */
  async get(path, params = {}, options = {}) {
    const { status, ok, body, statusText } = await this.request(path, params, options);
    if (!ok) throw new ApiError(errorDetail(status, body, statusText), status, body);
    return body;
  }
}
