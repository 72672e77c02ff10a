// Runs the DOM-free modules of the web UI under node and prints what they computed as JSON.
// tests/web/test_web_static.py runs this file and asserts on the output; the expectations live
// there so a failure reads as a normal pytest assertion.
//
// usage: node web_static_probe.mjs <static dir>

import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
const load = (name) => import(pathToFileURL(path.join(dir, name)).href);

const format = await load("format.js");
const scale = await load("scale.js");
const live = await load("live.js");
const api = await load("api.js");
const clock = await load("clock.js");
const history = await load("history.js");
const trenddata = await load("trenddata.js");
const treeMod = await load("tree.js");
const health = await load("health.js");
const tagtable = await load("tagtable.js");
const session = await load("session.js");

const out = {};
const MIN = 60_000;
const HOUR = 60 * MIN;

// --- format.js ---------------------------------------------------------------------------
const stateTag = { data_type: "state", states: { 0: "stopped", 2: "running" }, unit: "" };
const tempTag = { data_type: "float", unit: "°C", low: 0, high: 100 };
out.severity = ["good", "good_local_override", "uncertain_last_usable_value", "bad_sensor_failure", "BAD", "", null, "goodish", 5].map(
  format.qualitySeverity,
);
out.qualityLabel = ["good", "bad_sensor_failure", "uncertain", "bad_0x808f0000"].map(format.qualityLabel);
out.formatValue = {
  state: format.formatValue(2, stateTag),
  stateUnknown: format.formatValue(9, stateTag),
  boolTrue: format.formatValue(true, { data_type: "bool" }),
  boolZero: format.formatValue(0, { data_type: "bool" }),
  floatSpan100: format.formatValue(72.345, tempTag),
  floatNoRange: format.formatValue(0.48234, { data_type: "float" }),
  floatBig: format.formatValue(1234.56, { data_type: "float" }),
  negativeZero: format.formatNumber(-0.001, 2),
  int: format.formatValue(4.0, { data_type: "int" }),
  missing: format.formatValue(null, tempTag),
  text: format.formatValue("batch 42", { data_type: "string" }),
  withUnit: format.formatWithUnit(72.345, tempTag),
  stateWithUnit: format.formatWithUnit(2, { ...stateTag, unit: "x" }),
};
out.formatAge = [500, 2500, 125_000, 3 * HOUR, 3 * 24 * HOUR, -5000, Number.NaN].map(format.formatAge);
out.parseTimestamp = [
  "2024-01-01T00:00:00Z",
  "2024-01-01T00:00:00",
  "2024-01-01T01:00:00+01:00",
  "2024-01-01T00:00:00.123456+00:00",
  "garbage",
  "",
].map((s) => {
  const v = format.parseTimestamp(s);
  return Number.isNaN(v) ? "NaN" : v;
});

// --- scale.js ----------------------------------------------------------------------------
out.intervals = Object.fromEntries(
  [15 * MIN, HOUR, 8 * HOUR, 24 * HOUR].map((ms) => [String(ms), scale.chooseInterval(ms)]),
);
out.intervalTable = scale.INTERVALS.map(([ms]) => ms);

// --- live.js -----------------------------------------------------------------------------
const entry = { path: "a/b", value: 1.5, source_ts: "2024-01-01T00:00:00Z", quality: "good" };
out.parseLive = {
  notJson: live.parseLiveMessage("this is not json"),
  mixed: live.parseLiveMessage(JSON.stringify({ values: [entry, { path: 5 }, { ...entry, value: {} }] })),
  detail: live.parseLiveMessage(JSON.stringify({ detail: "prefix 'x' is not a valid path" })),
  array: live.parseLiveMessage("[]"),
  valuesNotList: live.parseLiveMessage(JSON.stringify({ values: "x" })),
  nullValue: live.parseLiveMessage(JSON.stringify({ values: [{ ...entry, value: null }] })),
};
out.liveUrl = [
  live.liveUrl("acme/plant 1", { protocol: "http:", host: "kiln.local:8000" }),
  live.liveUrl("", { protocol: "https:", host: "kiln.local" }),
];

// A scripted run of LiveFeed against fake sockets and timers.
{
  const log = [];
  const sockets = [];
  const timers = new Map();
  let nextTimer = 1;
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.closed = false;
      sockets.push(this);
      log.push(["socket", url]);
    }
    close(code) {
      this.closed = true;
      log.push(["close", this.url, code]);
    }
  }
  let failHandler = false;
  const feed = new live.LiveFeed({
    onValues: (values) => {
      log.push(["values", values.map((v) => v.path)]);
      if (failHandler) throw new Error("render bug");
    },
    onState: (state, info) => log.push(["state", state, info.delayMs ?? null, info.reconnected ?? null]),
    onServerError: (detail) => log.push(["serverError", detail]),
    createSocket: (url) => new FakeSocket(url),
    urlFor: (prefix) => `ws://test/live?prefix=${prefix}`,
    setTimer: (fn, ms) => {
      const id = nextTimer++;
      timers.set(id, { fn, ms });
      log.push(["timer", ms]);
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    random: () => 0, // the low end of the jitter: half the backoff
    initialMs: 500,
    maxMs: 4000,
  });
  const fire = () => {
    const [id, { fn }] = timers.entries().next().value;
    timers.delete(id);
    fn();
  };
  const realError = console.error;
  console.error = () => {};
  feed.subscribe("a");
  const s1 = sockets[0];
  s1.onopen();
  s1.onmessage({ data: JSON.stringify({ values: [entry] }) });
  s1.onmessage({ data: "garbage" });
  s1.onmessage({ data: JSON.stringify({ values: [entry, { path: 1 }] }) });
  failHandler = true;
  s1.onmessage({ data: JSON.stringify({ values: [entry] }) });
  failHandler = false;
  s1.onmessage({ data: JSON.stringify({ detail: "too many subscribers" }) });
  s1.onclose({ code: 1006, reason: "" });
  fire(); // reconnect 1
  sockets[1].onclose({ code: 1006 });
  fire(); // reconnect 2
  sockets[2].onclose({ code: 1006 });
  fire();
  sockets[3].onclose({ code: 1006 });
  fire();
  sockets[4].onclose({ code: 1006 });
  fire();
  sockets[5].onopen(); // back: the backoff resets
  sockets[5].onclose({ code: 1001, reason: "server restart" });
  fire();
  feed.subscribe("b"); // replaces the socket; late events of the old one are ignored
  sockets[6].onmessage({ data: JSON.stringify({ values: [entry] }) });
  sockets[6].onclose({ code: 1006 });
  sockets[7].onopen();
  feed.stop();
  console.error = realError;
  out.liveFeed = { log, stats: feed.stats, pendingTimers: timers.size, prefix: feed.prefix };
}

// LiveFeed with a session check: 4401 and refused handshakes ask `reauthenticate` first.
{
  const log = [];
  const sockets = [];
  const timers = new Map();
  let nextTimer = 1;
  const outcomes = [];
  let pending = null;
  const feed = new live.LiveFeed({
    onValues: () => {},
    onState: (state) => log.push(["state", state]),
    onServerError: (detail) => log.push(["serverError", detail]),
    reauthenticate: () => {
      log.push(["reauth"]);
      if (outcomes.length > 0) return Promise.resolve(outcomes.shift());
      return new Promise((resolve) => (pending = resolve));
    },
    createSocket: (url) => {
      const socket = { url, close: (code) => log.push(["close", url, code]) };
      sockets.push(socket);
      log.push(["socket", url]);
      return socket;
    },
    urlFor: (prefix) => `ws://test/live?prefix=${prefix}`,
    setTimer: (fn, ms) => {
      const id = nextTimer++;
      timers.set(id, fn);
      log.push(["timer", ms]);
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    random: () => 0,
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
  const fire = () => {
    const [id, fn] = timers.entries().next().value;
    timers.delete(id);
    fn();
  };
  const mark = (name) => log.push(["--", name]);

  mark("expired");
  feed.subscribe("a");
  sockets.at(-1).onopen();
  outcomes.push("renewed");
  sockets.at(-1).onclose({ code: 4401, reason: "unauthorized" });
  await settle(); // renewed: reconnect at once, no backoff timer
  sockets.at(-1).onopen();

  mark("refused handshake, session fine");
  outcomes.push("valid");
  sockets.at(-1).onclose({ code: 1006 }); // opened before: a plain drop, no session check
  fire();
  sockets.at(-1).onclose({ code: 1006 }); // never opened: maybe refused, check the session
  await settle();

  mark("session over");
  fire();
  outcomes.push("ended");
  sockets.at(-1).onclose({ code: 1006 });
  await settle();
  const afterEnded = { prefix: feed.prefix, timers: timers.size };

  mark("policy");
  feed.subscribe("b");
  sockets.at(-1).onopen();
  sockets.at(-1).onclose({ code: 1008, reason: "needs values:read" });
  const afterPolicy = { prefix: feed.prefix, timers: timers.size };

  mark("resubscribed during renewal");
  feed.subscribe("c");
  sockets.at(-1).onclose({ code: 4401, reason: "unauthorized" });
  feed.subscribe("d");
  const socketsBefore = sockets.length;
  pending("renewed"); // the stale renewal must not open a socket for "c"
  await settle();
  out.liveAuth = {
    log,
    afterEnded,
    afterPolicy,
    staleOpened: sockets.length - socketsBefore,
    prefix: feed.prefix,
  };
  feed.stop();
}

// --- session.js ----------------------------------------------------------------------------
out.readCookie = [
  session.readCookie("kiln_csrf", "a=1; kiln_csrf=abc%3D; b=2"),
  session.readCookie("kiln_csrf", "xkiln_csrf=no"),
  session.readCookie("kiln_csrf", ""),
  session.readCookie("kiln_csrf", undefined),
];
{
  // A scripted server: each URL answers with the next queued reply, or `fallback`.
  const calls = [];
  const replies = new Map();
  let cookie = "";
  const reply = (status, body = null) => ({
    ok: status >= 200 && status < 300,
    status,
    statusText: "",
    headers: { get: () => null },
    json: async () => {
      if (body === null) throw new SyntaxError("no body");
      return body;
    },
  });
  const queue = (url, ...answers) => replies.set(url, [...(replies.get(url) ?? []), ...answers]);
  const fakeFetch = async (url, init = {}) => {
    calls.push([url, init.method ?? "GET", init.headers?.["X-CSRF-Token"] ?? null, init.body ?? null]);
    const answers = replies.get(url) ?? [];
    const next = answers.length > 0 ? answers.shift() : reply(200, { ok: true });
    if (next instanceof Error) throw next;
    if (url === "/api/v1/auth/refresh" && next.ok) cookie = "csrf-2"; // the server rotates it
    return next;
  };
  const timers = new Map();
  let nextTimer = 1;
  const timerLog = [];
  let expired = 0;
  const s = new session.Session({
    onExpired: () => expired++,
    fetchImpl: fakeFetch,
    readCsrfCookie: () => cookie,
    setTimer: (fn, ms) => {
      const id = nextTimer++;
      timers.set(id, fn);
      timerLog.push(ms);
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    lock: (fn) => fn(),
  });
  const fire = async () => {
    const [id, fn] = timers.entries().next().value;
    timers.delete(id);
    await fn();
  };
  const take = () => calls.splice(0);
  const admin = { username: "admin", tenant: "default", permissions: ["values:read"] };
  const res = {};

  // No cookies at all: /me says 401 and no renewal is attempted.
  queue("/api/v1/auth/me", reply(401, { detail: "sign in", reason: "unauthorized" }));
  res.meNobody = [await s.me(), take().map((c) => c[0]), expired];

  // Sign-in refusals carry the server's message and reason.
  const refusal = async () => {
    try {
      await s.login("admin", "pw", "");
      return null;
    } catch (err) {
      return [err.name, err.status, err.reason, err.message];
    }
  };
  queue("/api/v1/auth/login", reply(401, { detail: "this account needs a TOTP code", reason: "totp_required" }));
  res.totp = await refusal();
  queue("/api/v1/auth/login", reply(429, { detail: "too many failed logins; try again in 300 s", reason: "rate_limited" }));
  res.limited = await refusal();
  queue("/api/v1/auth/login", new TypeError("Failed to fetch"));
  res.down = await refusal();
  take();

  // Sign-in: the CSRF token of the answer is used until a cookie says otherwise.
  queue("/api/v1/auth/login", reply(200, { user: admin, csrf_token: "csrf-1", expires_in: 300 }));
  res.user = (await s.login("admin", "pw", "123456")).username;
  res.loginBody = JSON.parse(take()[0][3]);
  res.timerAfterLogin = timerLog.at(-1);
  await s.fetch("/api/v1/thing", { method: "POST", body: "{}" });
  await s.fetch("/api/v1/thing");
  cookie = "csrf-cookie";
  await s.fetch("/api/v1/thing", { method: "delete" });
  res.csrfHeaders = take().map((c) => [c[1], c[2]]);

  // Two requests hit an expired token at once: one renewal, both retried.
  queue("/api/v1/a", reply(401, { detail: "expired", reason: "expired" }));
  queue("/api/v1/b", reply(401, { detail: "expired", reason: "expired" }));
  const both = await Promise.all([s.fetch("/api/v1/a"), s.fetch("/api/v1/b")]);
  res.retried = [both.map((r) => r.status), take().map((c) => [c[0], c[2]])];
  res.csrfAfterRefresh = s.csrfToken();

  // The renewal timer renews, and tries again soon after a network failure.
  timerLog.length = 0;
  queue("/api/v1/auth/refresh", new TypeError("Failed to fetch"));
  await fire();
  await fire();
  res.timer = [timerLog.slice(), take().map((c) => c[0]), timers.size];

  // A WebSocket refusal: is the session still good, renewed, or over?
  res.revalidate = [await s.revalidate()];
  queue("/api/v1/auth/me", reply(401, { detail: "expired", reason: "expired" }));
  res.revalidate.push(await s.revalidate());
  take();

  // The refresh token is refused: the session has ended, reported once; the 401 is returned.
  queue("/api/v1/x", reply(401, { detail: "expired", reason: "expired" }));
  queue("/api/v1/y", reply(401, { detail: "expired", reason: "expired" }));
  queue("/api/v1/auth/refresh", reply(401, { detail: "invalid", reason: "invalid_token" }));
  queue("/api/v1/auth/refresh", reply(401, { detail: "invalid", reason: "invalid_token" }));
  const refused = [(await s.fetch("/api/v1/x")).status, (await s.fetch("/api/v1/y")).status];
  res.ended = [refused, expired, s.user, timers.size, take().map((c) => c[0])];

  // Signing out tells the server (with the CSRF header) and stops the renewal timer.
  queue("/api/v1/auth/login", reply(200, { user: admin, csrf_token: "csrf-3" }));
  await s.login("admin", "pw");
  take();
  await s.logout();
  res.logout = [take().map((c) => [c[0], c[1], c[2]]), s.user, timers.size];
  out.session = res;
}

// --- api.js and clock.js -----------------------------------------------------------------
out.errorDetail = [
  api.errorDetail(404, { detail: "unknown tag 'x': list tags with GET /api/v1/tags" }),
  api.errorDetail(422, { detail: [{ loc: ["query", "limit"], msg: "Input should be less than 10000" }] }),
  api.errorDetail(500, null, "Internal Server Error"),
  api.errorDetail(502, { detail: "" }),
];
out.queryString = api.queryString({ tag: "a/b c", start: "-1h", skip: null, none: undefined });
{
  const fetches = [];
  const fakeFetch = async (url) => {
    fetches.push(url);
    if (url.startsWith("/down")) throw new TypeError("Failed to fetch");
    const status = url.startsWith("/err") ? 503 : 200;
    return {
      ok: status < 400,
      status,
      statusText: status === 503 ? "Service Unavailable" : "OK",
      headers: { get: (name) => (name === "Date" ? new Date(Date.now() + 3 * HOUR).toUTCString() : null) },
      json: async () => (status === 503 ? { detail: "historian is starting: retry in a few seconds" } : { ok: true }),
    };
  };
  const serverClock = new clock.ServerClock();
  const client = new api.Api(serverClock, fakeFetch);
  const results = {};
  results.ok = await client.get("/ok", { a: 1 });
  try {
    await client.get("/err");
  } catch (err) {
    results.err = [err.name, err.status, err.message];
  }
  try {
    await client.get("/down");
  } catch (err) {
    results.down = [err.name, err.status, err.message];
  }
  results.fetches = fetches;
  results.offsetHours = Math.round(serverClock.offsetMs / HOUR);
  out.api = results;
}
{
  let local = 1_000_000;
  const c = new clock.ServerClock(() => local);
  c.observe(local + 800, local - 50, local + 50);
  const small = c.offsetMs;
  c.observe(local + 60_000, local - 100, local + 100);
  const skewed = c.offsetMs;
  c.observe(Number.NaN, local, local);
  out.clock = { small, skewed, afterNaN: c.offsetMs, now: c.now() - local };
}

// --- history.js --------------------------------------------------------------------------
const floatTag = { path: "a/b/temp", data_type: "float" };
out.plan = {
  text: history.planHistory({ data_type: "string" }, HOUR).mode,
  state: history.planHistory({ data_type: "state" }, 24 * HOUR),
  short: history.planHistory(floatTag, 15 * MIN),
  hour: history.planHistory(floatTag, HOUR).mode,
  long: history.planHistory(floatTag, 8 * HOUR),
};
out.stepped = ["bool", "state", "int", "float", "string"].map((t) => history.isStepped({ data_type: t }));
out.numeric = [
  history.numericValue(true, "bool"),
  history.numericValue("off", "bool"),
  history.numericValue("2", "state"),
  history.numericValue(2.5, "float"),
  Number.isNaN(history.numericValue("", "float")),
  Number.isNaN(history.numericValue(null, "float")),
];
out.buckets = history.toBuckets([
  { ts: "2024-01-01T00:01:00Z", avg: 2, min: 1, max: 3 },
  { ts: "2024-01-01T00:00:00Z", avg: null, min: null, max: null },
  { ts: "not a time", avg: 1, min: 1, max: 1 },
]);
out.points = history.toPoints(
  [
    { ts: "2024-01-01T00:00:05Z", value: true, quality: "good" },
    { ts: "2024-01-01T00:00:01Z", value: false, quality: "bad_not_connected" },
  ],
  { data_type: "bool" },
);
{
  const calls = [];
  const fakeApi = (rawTruncated) => ({
    get: async (p, params) => {
      calls.push([p, params]);
      if (p.endsWith("/raw")) {
        return {
          end: "2024-01-01T01:00:00Z",
          truncated: rawTruncated,
          values: [{ ts: "2024-01-01T00:30:00Z", value: 1, quality: "good" }],
        };
      }
      return { end: "2024-01-01T01:00:00Z", buckets: [{ ts: "2024-01-01T00:00:00Z", avg: 1, min: 0, max: 2 }] };
    },
  });
  const fits = await history.loadHistory(fakeApi(false), floatTag, "15m");
  const fitsCalls = calls.splice(0);
  const tooMany = await history.loadHistory(fakeApi(true), floatTag, "15m");
  const tooManyCalls = calls.splice(0);
  const long = await history.loadHistory(fakeApi(false), floatTag, "24h");
  const longCalls = calls.splice(0);
  const discrete = await history.loadHistory(fakeApi(true), { path: "a/s", data_type: "state" }, "24h");
  const discreteCalls = calls.splice(0);
  const text = await history.loadHistory(fakeApi(false), { path: "a/t", data_type: "string" }, "1h");
  out.loadHistory = {
    fits: [fits.kind, fits.points.length, fits.endMs, fitsCalls],
    tooMany: [tooMany.kind, tooMany.intervalMs, tooMany.buckets.length, tooManyCalls],
    long: [long.kind, long.intervalMs, longCalls],
    discrete: [discrete.kind, discrete.truncated, discreteCalls],
    text: [text.kind, calls.length],
  };
}

// --- tagtable.js (pure helper) ------------------------------------------------------------
out.relativePath = [
  tagtable.relativePath("acme/p1/line1/filler/weight", "acme/p1/line1"),
  tagtable.relativePath("acme/p1/line10/x", "acme/p1/line1"),
  tagtable.relativePath("acme/p1/x", ""),
  tagtable.relativePath("acme/p1/x", "acme/p1/"),
];

// --- trenddata.js: pens on one time axis, CSV, the view in the address ---------------------
{
  const a = [{ t: 1000, v: 1 }, { t: 3000, v: null }];
  const b = [{ t: 2000, v: 5 }, { t: 3000, v: 6 }];
  const data = trenddata.alignPens([a, b]);
  out.aligned = data.map((col) => col.map((v) => (v === undefined ? "undef" : v)));
  out.csv = trenddata.toCsv(["x/a", 'x/"b",c'], data, 1500, 3000);
  out.penPoints = [
    trenddata.penPoints({ kind: "raw", points: [{ t: 1, v: 2, q: "good" }, { t: 2, v: 3, q: "bad_not_connected" }, { t: 3, v: 4, q: "uncertain" }] }),
    trenddata.penPoints({ kind: "aggregate", buckets: [{ t: 1, avg: 2, min: 1, max: 3 }, { t: 2, avg: null, min: null, max: null }] }),
    trenddata.penPoints({ kind: "none" }),
  ];
  out.band = [
    trenddata.bandPoints({ kind: "aggregate", buckets: [{ t: 1, avg: 2, min: 1, max: 3 }, { t: 2, avg: null, min: null, max: null }] }),
    trenddata.bandPoints({ kind: "raw", points: [] }),
  ];
  const view = { asset: "acme/p1", tags: ["acme/p1/a", "acme/p1/b"], window: { startMs: Date.UTC(2024, 0, 1), endMs: Date.UTC(2024, 0, 1, 1) } };
  out.view = {
    written: trenddata.writeView(view),
    roundTrip: trenddata.readView(`#${trenddata.writeView(view)}`),
    range: trenddata.readView("#asset=a%2Fb&tag=a%2Fb%2Fc&range=8h"),
    badRange: trenddata.readView("#range=7y&from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z"),
    tooMany: trenddata.readView(`#${Array.from({ length: 9 }, (_, i) => `tag=t${i}`).join("&")}`).tags.length,
  };
  out.pan = [trenddata.panWindow({ startMs: 0, endMs: 100 }, -0.5), trenddata.zoomOut({ startMs: 100, endMs: 200 })];
  out.resolve = [history.resolveWindow("8h", 1_000_000_000), history.resolveWindow({ startMs: 0, endMs: 60_000 }), history.resolveWindow("nope", 0).start];
}

// --- tree.js: which levels open on load -----------------------------------------------------
out.opensOnLoad = [
  treeMod.opensOnLoad({ path: "e/s/a/l/c", type: null, children: [{ path: "e/s/a/l/c/m" }] }),
  treeMod.opensOnLoad({ path: "e/s/a/l/c/m", type: "cnc", children: [] }),
  treeMod.opensOnLoad({ path: "e/s/m", type: "pump", children: [{ path: "e/s/m/sub" }] }),
  treeMod.opensOnLoad({ path: "e/s/lab", type: null, children: [] }),
];

// --- health.js: words for the report ---------------------------------------------------------
out.health = {
  number: [health.plainNumber(2.6579999999999018), health.plainNumber(3122), health.plainNumber(0.02291895600001226)],
  problems: health.problemsOf("connectors", {
    status: "degraded",
    detail: {
      "sim-modbus": { type: "modbus", state: "connected" },
      plc7: { type: "opcua", state: "reconnecting", reason: "opc.tcp://10.0.0.7:4840: connection refused" },
    },
  }),
  dropped: health.problemsOf("bus", { detail: { subscribers: { historian: { dropped_points: 12 } } } }),
  summaries: [
    health.summaryOf("historian", { detail: { series: 98, points: 3122, queue_points: 0, rollup_seconds_sum: 2.65 } }),
    health.summaryOf("connectors", { detail: { a: { state: "connected" }, b: { state: "reconnecting" } } }),
    health.summaryOf("model", { detail: { assets: 1, tags: 98 } }),
  ],
};

process.stdout.write(JSON.stringify(out));
