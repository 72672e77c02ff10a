// Live values over the WebSocket /api/v1/live, with automatic reconnection.
// A malformed message is counted and ignored: one bad frame must not stop the HMI.

/** Connection states reported to `onState`. */
export const LiveState = Object.freeze({
  IDLE: "idle",
  CONNECTING: "connecting",
  LIVE: "live",
  RETRYING: "retrying",
});

const SCALAR_TYPES = new Set(["number", "string", "boolean"]);

// Close codes the server uses for refusals (src/kiln/api/routers/live.py).
export const CLOSE_UNAUTHORIZED = 4401; // no or expired access cookie: renew, then reconnect
export const CLOSE_POLICY = 1008; // not allowed (values:read) or a bad prefix: retrying won't help

/** True when `entry` has the fields the UI relies on. */
export function isValidEntry(entry) {
  return (
    entry !== null &&
    typeof entry === "object" &&
    typeof entry.path === "string" &&
    entry.path !== "" &&
    typeof entry.source_ts === "string" &&
    typeof entry.quality === "string" &&
    (entry.value === null || SCALAR_TYPES.has(typeof entry.value))
  );
}

/** True when `alarm` (an alarm changed, sent after its journal commit) can be shown. */
export function isValidAlarm(alarm) {
  return (
    alarm !== null &&
    typeof alarm === "object" &&
    typeof alarm.id === "string" &&
    alarm.id !== "" &&
    typeof alarm.asset === "string" &&
    typeof alarm.state === "string" &&
    typeof alarm.priority === "string"
  );
}

/**
 * Parse one frame. Returns {values, rejected, detail}, and `alarms` for an {"alarms": [...]}
 * frame: the valid value entries, the valid changed alarms, how many entries (or the whole frame, as 1)
 * were unusable, and a server error text if the frame carried one.
 */
export function parseLiveMessage(text) {
  const nothing = { values: [], rejected: 1, detail: null };
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return nothing;
  }
  if (message === null || typeof message !== "object" || Array.isArray(message)) return nothing;
  if (Array.isArray(message.alarms)) {
    const alarms = message.alarms.filter(isValidAlarm);
    return { values: [], alarms, rejected: message.alarms.length - alarms.length, detail: null };
  }
  if (!Array.isArray(message.values)) {
    // The server reports a refused subscription as {"detail": "..."} before closing.
    if (typeof message.detail === "string") return { values: [], rejected: 0, detail: message.detail };
    return nothing;
  }
  const values = message.values.filter(isValidEntry);
  return { values, rejected: message.values.length - values.length, detail: null };
}

/** The WebSocket address of the live feed on the server that served this page. */
export function liveUrl(prefix, loc = globalThis.location) {
  const scheme = loc.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ prefix }).toString();
  return `${scheme}//${loc.host}/api/v1/live?${query}`;
}

/**
 * One live subscription at a time. `subscribe(prefix)` replaces the current one; a dropped
 * connection is retried with exponential backoff and jitter (0.5 s doubling to 15 s), reset
 * once a connection opens. A 4401 close (the access token expired) or a handshake the server
 * refused is answered by `reauthenticate()`, and by an immediate reconnect when that renewed
 * the session; a 1008 refusal stops the feed.
 */
export class LiveFeed {
  #onValues;
  #onAlarms;
  #onState;
  #onServerError;
  #reauthenticate;
  #createSocket;
  #urlFor;
  #setTimer;
  #clearTimer;
  #random;
  #initialMs;
  #maxMs;
  #socket = null;
  #timer = null;
  #prefix = null;
  #attempt = 0;
  #everOpened = false;
  #generation = 0;
  #stats = { messages: 0, malformed: 0, rejectedEntries: 0, reconnects: 0 };

  /**
   * Callbacks: `onValues(entries)`, `onAlarms(alarms)` (changed alarms), `onState(state, info)`,
   * `onServerError(detail)`, and
   * `reauthenticate()`, which checks the session and resolves to "renewed", "valid" or "ended"
   * (see Session.revalidate; null: every close is retried with backoff). The remaining options
   * are seams for tests.
   */
  constructor({
    onValues,
    onAlarms = () => {},
    onState = () => {},
    onServerError = () => {},
    reauthenticate = null,
    createSocket = (url) => new WebSocket(url),
    urlFor = (prefix) => liveUrl(prefix),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    random = Math.random,
    initialMs = 500,
    maxMs = 15000,
  }) {
    this.#onValues = onValues;
    this.#onAlarms = onAlarms;
    this.#onState = onState;
    this.#onServerError = onServerError;
    this.#reauthenticate = reauthenticate;
    this.#createSocket = createSocket;
    this.#urlFor = urlFor;
    this.#setTimer = setTimer;
    this.#clearTimer = clearTimer;
    this.#random = random;
    this.#initialMs = initialMs;
    this.#maxMs = maxMs;
  }

  /** Counters: frames received, malformed frames, rejected entries, reconnect attempts. */
  get stats() {
    return { ...this.#stats };
  }

  /** The prefix currently subscribed, or null. */
  get prefix() {
    return this.#prefix;
  }

  /** Subscribe to every tag under `prefix` ("" for all), dropping the previous subscription. */
  subscribe(prefix) {
    this.#teardown();
    this.#prefix = prefix;
    this.#attempt = 0;
    this.#everOpened = false;
    this.#open();
  }

  /** Close the connection and stop reconnecting. */
  stop() {
    this.#teardown();
    this.#prefix = null;
    this.#onState(LiveState.IDLE, {});
  }

  /** Reconnect at once, e.g. when the browser reports it is back online. */
  retryNow() {
    if (this.#prefix === null || this.#timer === null) return;
    this.#clearTimer(this.#timer);
    this.#timer = null;
    this.#open();
  }

  #teardown() {
    this.#generation += 1; // a renewal still running for the old subscription must not reopen
    if (this.#timer !== null) {
      this.#clearTimer(this.#timer);
      this.#timer = null;
    }
    const socket = this.#socket;
    this.#socket = null;
    if (socket) {
      // Handlers check identity with this.#socket, so late events of the old socket are ignored.
      try {
        socket.close(1000, "subscription changed");
      } catch {
        // Closing a socket that never connected can throw in some browsers; nothing to undo.
      }
    }
  }

  #open() {
    const prefix = this.#prefix;
    this.#onState(LiveState.CONNECTING, { prefix, attempt: this.#attempt });
    let socket;
    try {
      socket = this.#createSocket(this.#urlFor(prefix));
    } catch (err) {
      this.#scheduleRetry(`cannot open WebSocket: ${err?.message ?? err}`);
      return;
    }
    this.#socket = socket;
    let opened = false;
    socket.onopen = () => {
      if (socket !== this.#socket) return;
      opened = true;
      const reconnected = this.#everOpened || this.#attempt > 0;
      this.#attempt = 0;
      this.#everOpened = true;
      this.#onState(LiveState.LIVE, { prefix, reconnected });
    };
    socket.onmessage = (event) => {
      if (socket !== this.#socket) return;
      this.#handleFrame(event.data);
    };
    socket.onerror = () => {
      // Always followed by a close event, which drives the retry.
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket) return;
      this.#socket = null;
      const reason = event?.reason ? `${event.reason} (code ${event.code})` : `code ${event?.code ?? "?"}`;
      // A handshake the server refuses (e.g. closed before accepting) reaches the page as a bare
      // 1006 with the HTTP status hidden, so "never opened" may mean "expired" as well as "down".
      if (this.#reauthenticate && (event?.code === CLOSE_UNAUTHORIZED || !opened)) {
        this.#renewAndReopen(`connection closed: ${reason}`);
      } else if (event?.code === CLOSE_POLICY) {
        this.#onServerError(event.reason || "the server refused the live feed");
        this.#prefix = null;
        this.#onState(LiveState.IDLE, { reason: `refused: ${reason}` });
      } else {
        this.#scheduleRetry(`connection closed: ${reason}`);
      }
    };
  }

  async #renewAndReopen(reason) {
    const generation = this.#generation;
    this.#onState(LiveState.CONNECTING, { prefix: this.#prefix, attempt: this.#attempt, reason });
    let outcome;
    try {
      outcome = await this.#reauthenticate();
    } catch {
      outcome = "unknown"; // the server is unreachable: the normal backoff applies
    }
    if (generation !== this.#generation) return; // resubscribed or stopped meanwhile
    if (outcome === "renewed") this.#open();
    else if (outcome === "ended") {
      // The session is over; the page shows the sign-in form and subscribes again after it.
      this.#prefix = null;
      this.#onState(LiveState.IDLE, { reason: "signed out" });
    } else {
      // "valid": the session was fine, so the refusal was something else; back off as usual.
      // Only a real renewal reconnects at once, so a refusing server is never hammered.
      this.#scheduleRetry(reason);
    }
  }

  #handleFrame(data) {
    this.#stats.messages += 1;
    const { values, alarms = [], rejected, detail } =
      typeof data === "string"
        ? parseLiveMessage(data)
        : { values: [], rejected: 1, detail: null };
    if (rejected > 0) {
      this.#stats.malformed += 1;
      this.#stats.rejectedEntries += rejected;
    }
    if (detail !== null) this.#onServerError(detail);
    if (values.length > 0) {
      try {
        this.#onValues(values);
      } catch (err) {
        // A rendering bug for one frame must not kill the feed; count it and carry on.
        this.#stats.malformed += 1;
        console.error("live value handler failed", err);
      }
    }
    if (alarms.length > 0) {
      try {
        this.#onAlarms(alarms);
      } catch (err) {
        this.#stats.malformed += 1;
        console.error("live alarm handler failed", err);
      }
    }
  }

  #scheduleRetry(reason) {
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt);
    // Jitter spreads the reconnect storm when a server restarts under many open HMIs.
    const delayMs = Math.round(base * (0.5 + 0.5 * this.#random()));
    this.#attempt += 1;
    this.#stats.reconnects += 1;
    this.#onState(LiveState.RETRYING, { prefix: this.#prefix, delayMs, reason, attempt: this.#attempt });
    this.#timer = this.#setTimer(() => {
      this.#timer = null;
      this.#open();
    }, delayMs);
  }
}
