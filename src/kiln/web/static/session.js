// The browser session: sign-in, CSRF, renewal. The server keeps the tokens in HttpOnly cookies
// this code never sees; what it handles is the CSRF token (a readable cookie, kiln_csrf) that
// every state-changing request must echo in X-CSRF-Token, and the timing of renewals.
//
// DOM-free on purpose (fetch, cookie, timers and lock are injectable) so that
// tests/web/web_static_probe.mjs can script it under node.

import { errorDetail } from "./api.js";

export const CSRF_COOKIE = "kiln_csrf";
export const CSRF_HEADER = "X-CSRF-Token";
// Access tokens last 15 min by default; renewing at 10 leaves room for a slow or sleeping tab.
// A 401 still triggers a renewal, so a shorter server setting only costs one failed request.
export const REFRESH_EVERY_MS = 10 * 60_000;
// After a network failure the session may still be good: try again soon instead of signing out.
const RETRY_AFTER_NETWORK_MS = 30_000;

const AUTH = "/api/v1/auth";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The value of cookie `name` in a `document.cookie` string, or "" when there is none. */
export function readCookie(name, cookieText) {
  for (const part of String(cookieText ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return part.slice(eq + 1).trim();
    }
  }
  return "";
}

/** A refused sign-in: `reason` is the server's ("invalid_credentials", "totp_required", ...). */
export class SignInError extends Error {
  constructor(message, status, reason = null) {
    super(message);
    this.name = "SignInError";
    this.status = status;
    this.reason = reason;
  }
}

// Two tabs renewing at once would present the same refresh token twice, and the server revokes
// a session whose refresh token is reused (it presumes theft). A Web Lock makes tabs take turns;
// the second then sends the cookie the first one rotated. Locks exist only in secure contexts
// (HTTPS or localhost): over plain HTTP each tab renews on its own, as before.
function defaultLock() {
  const locks = globalThis.navigator?.locks;
  if (locks && typeof locks.request === "function") {
    return (fn) => locks.request("kiln-session-refresh", fn);
  }
  return (fn) => fn();
}

export class Session {
  #fetch;
  #cookie;
  #setTimer;
  #clearTimer;
  #lock;
  #onExpired;
  #everyMs;
  #nextMs;
  #csrf = "";
  #user = null;
  #refreshing = null;
  #timer = null;

  /**
   * `onExpired()` is called once when a signed-in session can no longer be renewed (the page
   * shows the sign-in form). The other options are seams for tests.
   */
  constructor({
    onExpired = () => {},
    fetchImpl = (...args) => globalThis.fetch(...args),
    readCsrfCookie = () => readCookie(CSRF_COOKIE, globalThis.document?.cookie),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    lock = defaultLock(),
    refreshEveryMs = REFRESH_EVERY_MS,
  } = {}) {
    this.#onExpired = onExpired;
    this.#fetch = fetchImpl;
    this.#cookie = readCsrfCookie;
    this.#setTimer = setTimer;
    this.#clearTimer = clearTimer;
    this.#lock = lock;
    this.#everyMs = refreshEveryMs;
    this.#nextMs = refreshEveryMs;
  }

  /** The signed-in user ({username, tenant, permissions, ...}) or null. */
  get user() {
    return this.#user;
  }

  /**
   * The CSRF token to send. The cookie wins over the remembered answer: another tab may have
   * renewed the session (which rotates the token), and the cookie is what the server compares.
   */
  csrfToken() {
    return this.#cookie() || this.#csrf;
  }

  /**
   * fetch() for the API: adds the CSRF header to state-changing requests, and answers a 401 by
   * renewing the session once and retrying. If renewal is refused, the session has ended
   * (onExpired) and the 401 is returned. An arrow function so it can be handed to Api as is.
   */
  fetch = async (url, init = {}) => {
    const response = await this.#send(url, init);
    if (response.status !== 401 || !(await this.renew())) return response;
    return this.#send(url, init);
  };

  /** Who is signed in, from GET /auth/me (renewing a stale access token); null when nobody. */
  async me() {
    const response = await this.fetch(`${AUTH}/me`, { headers: { Accept: "application/json" } });
    if (response.status === 401) return null;
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error(errorDetail(response.status, body, response.statusText));
    this.#signedIn(body);
    return body;
  }

  /** Sign in; returns the user or throws SignInError with the server's message and reason. */
  async login(username, password, otp = "") {
    const credentials = { username, password };
    if (otp) credentials.otp = otp;
    let response;
    try {
      // #send, not this.fetch: a refused password must not set off a session renewal.
      response = await this.#send(`${AUTH}/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(credentials),
      });
    } catch (err) {
      throw new SignInError(`Cannot reach the Kiln server: ${err?.message ?? err}`, 0);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      // 401 with a reason, or 429 "too many failed logins; try again in N s".
      const reason = typeof body?.reason === "string" ? body.reason : null;
      throw new SignInError(errorDetail(response.status, body, response.statusText), response.status, reason);
    }
    this.#csrf = typeof body?.csrf_token === "string" ? body.csrf_token : "";
    this.#learnLifetime(body);
    this.#signedIn(body?.user ?? null);
    return this.#user;
  }

  /** End the session on the server (which clears the cookies). Never throws. */
  async logout() {
    this.#stopTimer();
    this.#user = null;
    try {
      await this.#send(`${AUTH}/logout`, { method: "POST" });
    } catch {
      // Unreachable server: the cookies stay, but the page still shows the sign-in form and the
      // refresh token dies at its expiry. Nothing better can be done offline.
    }
    this.#csrf = "";
  }

  /**
   * Check the session after a refusal the browser cannot explain (a refused WebSocket handshake
   * hides its HTTP status): "valid" when it still works, "renewed" when the access token had
   * expired and was renewed, "ended" when it is over. Throws when the server is unreachable.
   */
  async revalidate() {
    const response = await this.#send(`${AUTH}/me`, { headers: { Accept: "application/json" } });
    if (response.status !== 401) return "valid";
    return (await this.renew()) ? "renewed" : "ended";
  }

  /**
   * Renew the access token: true when renewed, false when the server refused (the session is
   * over: onExpired is called). A network failure throws, since the session may still be good.
   */
  async renew() {
    const ok = await this.refresh();
    if (!ok) this.#expire();
    return ok;
  }

  /** POST /auth/refresh, once at a time however many callers ask; true when renewed. */
  refresh() {
    this.#refreshing ??= Promise.resolve(this.#lock(() => this.#refreshNow())).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  async #refreshNow() {
    const csrf = this.csrfToken();
    // No CSRF cookie means no session cookies either (they are set and cleared together).
    if (!csrf) return false;
    const response = await this.#fetch(`${AUTH}/refresh`, {
      method: "POST",
      headers: { [CSRF_HEADER]: csrf, Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) return false;
    const body = await response.json().catch(() => null);
    this.#csrf = typeof body?.csrf_token === "string" ? body.csrf_token : "";
    this.#learnLifetime(body);
    if (this.#user !== null) this.#schedule(this.#nextMs);
    return true;
  }

  #send(url, init) {
    const method = (init.method ?? "GET").toUpperCase();
    const headers = { ...(init.headers ?? {}) };
    const csrf = this.csrfToken();
    if (!SAFE_METHODS.has(method) && csrf) headers[CSRF_HEADER] = csrf;
    // same-origin is fetch's default; spelled out because the session lives in those cookies.
    return this.#fetch(url, { ...init, method, headers, credentials: "same-origin" });
  }

  #signedIn(user) {
    this.#user = user;
    this.#schedule(this.#nextMs);
  }

  // The server says how long its access token lasts (expires_in, seconds): renew at two thirds
  // of that when it is shorter than the default period.
  #learnLifetime(body) {
    const ttlS = Number(body?.expires_in);
    this.#nextMs = ttlS > 0 ? Math.min(this.#everyMs, (ttlS * 1000 * 2) / 3) : this.#everyMs;
  }

  #expire() {
    if (this.#user === null) return; // not signed in, or already reported
    this.#user = null;
    this.#stopTimer();
    this.#csrf = "";
    this.#onExpired();
  }

  #schedule(ms) {
    this.#stopTimer();
    this.#timer = this.#setTimer(async () => {
      this.#timer = null;
      try {
        await this.renew(); // a successful renewal schedules the next one
      } catch {
        if (this.#user !== null) this.#schedule(RETRY_AFTER_NETWORK_MS);
      }
    }, ms);
  }

  #stopTimer() {
    if (this.#timer !== null) this.#clearTimer(this.#timer);
    this.#timer = null;
  }
}
