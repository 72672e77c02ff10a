// The server's idea of "now", estimated from HTTP Date headers.
// Plant laptops often run with a wrong clock; ages ("2 s ago") and the trend's right edge are
// computed against the server clock so a skewed laptop does not show "-3600 s ago".

// The Date header has one-second resolution, so offsets below this are noise, not skew.
const SKEW_THRESHOLD_MS = 2000;

/** Estimates the offset between this browser's clock and the server's. */
export class ServerClock {
  #local;
  #offsetMs = 0;

  /** `local` returns this machine's time in ms; injectable for tests. */
  constructor(local = () => Date.now()) {
    this.#local = local;
  }

  /** Milliseconds to add to the local clock to get the server's; 0 when within the noise. */
  get offsetMs() {
    return this.#offsetMs;
  }

  /** Server time now, in ms since the epoch. */
  now() {
    return this.#local() + this.#offsetMs;
  }

  /**
   * Take one observation: `serverMs` from a Date header of a response to a request sent at
   * local `sentMs` and received at local `receivedMs`.
   */
  observe(serverMs, sentMs, receivedMs) {
    if (!Number.isFinite(serverMs) || !Number.isFinite(sentMs) || !Number.isFinite(receivedMs)) {
      return;
    }
    // The header truncates to the second: the server's time lies in [serverMs, serverMs + 1000).
    const offset = serverMs + 500 - (sentMs + receivedMs) / 2;
    this.#offsetMs = Math.abs(offset) > SKEW_THRESHOLD_MS ? Math.round(offset) : 0;
  }
}
