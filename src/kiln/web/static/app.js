// The Kiln HMI page: wires the asset tree, the tag table, the trend and the live feed together.
// The selection lives in the address (#asset=...&tag=...&range=...) so a reload or a shared link
// opens the same view. Nothing of the plant is shown or fetched until someone is signed in.

import { Api, errorDetail } from "./api.js";
import { ServerClock } from "./clock.js";
import { formatClock } from "./format.js";
import { RANGES } from "./history.js";
import { LiveFeed, LiveState } from "./live.js";
import { Session } from "./session.js";
import { SignInForm } from "./signin.js";
import { TagTable } from "./tagtable.js";
import { AssetTree } from "./tree.js";
import { TrendPanel } from "./trendpanel.js";

const HEALTH_EVERY_MS = 10_000;
const AGES_EVERY_MS = 1_000;
// Tags listed per node; a deeper node shows the rest. Bounded so one click cannot ask for 100k rows.
const TAG_LIMIT = 500;

const HEALTH_TEXT = { ok: "Healthy", degraded: "Degraded", failed: "Failed" };

function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no element #${id}`);
  return el;
}

/** Show `message` in the element, or hide it when the message is empty. */
function setMessage(el, message, kind = "info") {
  el.textContent = message;
  el.dataset.kind = kind;
  el.hidden = message === "";
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { asset: params.get("asset"), tag: params.get("tag"), range: params.get("range") };
}

class App {
  constructor() {
    this.clock = new ServerClock();
    this.session = new Session({
      onExpired: () => this.signedOut("Your session has ended. Sign in again to continue."),
    });
    // Every API call goes through the session: CSRF header, renewal on 401.
    this.api = new Api(this.clock, this.session.fetch);
    this.signIn = new SignInForm(
      {
        view: byId("signin"),
        form: byId("signin-form"),
        username: byId("signin-username"),
        password: byId("signin-password"),
        otpField: byId("signin-otp-field"),
        otp: byId("signin-otp"),
        message: byId("signin-message"),
        submit: byId("signin-submit"),
      },
      { session: this.session, onSignedIn: (user) => this.signedIn(user) },
    );
    this.nodePath = null;
    this.selectAbort = null;
    this.selectGeneration = 0;
    this.tagsInfo = "";
    this.liveState = LiveState.IDLE;
    this.retryAt = 0;

    this.tree = new AssetTree(byId("tree"), { onSelect: (path) => this.selectNode(path) });
    this.table = new TagTable(byId("tag-rows"), { onOpen: (tag) => this.openTrend(tag) });
    this.trend = new TrendPanel(
      {
        panel: byId("trend-panel"),
        name: byId("trend-name"),
        path: byId("trend-path"),
        meta: byId("trend-meta"),
        canvas: byId("trend-canvas"),
        readout: byId("trend-readout"),
        overlay: byId("trend-overlay"),
        overlayText: byId("trend-overlay-text"),
        retry: byId("trend-retry"),
        info: byId("trend-info"),
        close: byId("trend-close"),
        rangeButtons: document.querySelectorAll("#trend-ranges button[data-range]"),
      },
      {
        api: this.api,
        clock: this.clock,
        onClose: () => {
          this.table.setSelected(null);
          document.body.classList.remove("trend-open");
          // Signing out closes the trend too; the address keeps it for after the next sign-in.
          if (this.session.user !== null) this.writeHash();
        },
        onRangeChange: () => this.writeHash(),
      },
    );
    this.live = new LiveFeed({
      onValues: (values) => {
        this.table.applyValues(values);
        this.trend.applyValues(values);
      },
      onState: (state, info) => this.showLive(state, info),
      onServerError: (detail) => this.banner(`Live feed refused the subscription: ${detail}`),
      reauthenticate: () => this.session.revalidate(),
    });
  }

  start() {
    window.addEventListener("error", (event) => this.banner(`Page error: ${event.message}`));
    window.addEventListener("unhandledrejection", (event) =>
      this.banner(`Page error: ${event.reason?.message ?? event.reason}`),
    );
    byId("banner-close").addEventListener("click", () => {
      byId("banner").hidden = true;
    });
    byId("tree-filter").addEventListener("input", (event) => {
      const any = this.tree.filter(event.target.value);
      setMessage(byId("tree-message"), any ? "" : "No asset matches the filter.");
    });
    byId("tag-filter").addEventListener("input", (event) => {
      this.table.filter(event.target.value);
      this.renderTagsFooter();
    });
    byId("tags-retry").addEventListener("click", () => this.nodePath !== null && this.selectNode(this.nodePath));
    byId("tree-retry").addEventListener("click", () => this.loadAssets());
    byId("sign-out").addEventListener("click", () => this.signOut());
    const health = byId("health");
    document.addEventListener("click", (event) => {
      if (health.open && !health.contains(event.target)) health.open = false;
    });
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      if (health.open) health.open = false;
      else if (this.trend.tagPath && !event.target.closest?.("input")) this.trend.close();
    });
    // After sleep or a network change, reconnect at once instead of waiting out the backoff.
    window.addEventListener("online", () => this.live.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.live.retryNow();
    });

    const hash = readHash();
    if (hash.range && hash.range in RANGES) this.trend.setRange(hash.range);
    // Health is public: the header shows it on the sign-in page too.
    this.pollHealth();
    setInterval(() => this.tick(), AGES_EVERY_MS);
    this.resumeSession();
  }

  // --- signing in and out --------------------------------------------------------------------

  /** On load: carry on with the session the cookies hold, or ask to sign in. */
  async resumeSession() {
    let user;
    try {
      user = await this.session.me();
    } catch (err) {
      this.signIn.show(`Could not check the session: ${err?.message ?? err}`, "error");
      return;
    }
    if (user) this.signedIn(user);
    else this.signIn.show();
  }

  signedIn(user) {
    byId("account-name").textContent = user?.username ?? "";
    byId("account").hidden = false;
    this.signIn.hide();
    byId("plant").hidden = false;
    this.loadAssets(readHash());
  }

  async signOut() {
    byId("sign-out").disabled = true;
    await this.session.logout();
    byId("sign-out").disabled = false;
    this.signedOut("You have signed out.");
  }

  /** Back to the sign-in form, dropping whatever the previous user could see. */
  signedOut(message) {
    this.live.stop();
    this.selectAbort?.abort();
    this.selectGeneration += 1;
    this.trend.close();
    this.nodePath = null;
    this.tree.setAssets([]);
    this.table.setTags([], "");
    this.tagsInfo = "";
    byId("crumbs").replaceChildren();
    setMessage(byId("tree-message"), "");
    setMessage(byId("tags-message"), "");
    byId("tree-retry").hidden = true;
    byId("tags-retry").hidden = true;
    byId("banner").hidden = true;
    this.renderTagsFooter();
    document.title = "Kiln";
    byId("plant").hidden = true;
    byId("account").hidden = true;
    byId("account-name").textContent = "";
    this.signIn.show(message);
  }

  tick() {
    this.table.refreshAges(this.clock.now());
    // Also refreshes the retry countdown and the malformed-message count.
    this.renderLiveText();
  }

  banner(message) {
    byId("banner-text").textContent = message;
    byId("banner").hidden = false;
  }

  writeHash() {
    const params = new URLSearchParams();
    if (this.nodePath !== null) params.set("asset", this.nodePath);
    if (this.trend.tagPath) params.set("tag", this.trend.tagPath);
    params.set("range", this.trend.range);
    history.replaceState(null, "", `#${params.toString()}`);
  }

  // --- health -------------------------------------------------------------------------------

  async pollHealth() {
    try {
      const { status, body, statusText } = await this.api.request("/api/v1/health");
      // A failed platform answers 503 with the same body: that is still a health report.
      if (body && typeof body.status === "string") this.renderHealth(body, null);
      else this.renderHealth(null, `Health check failed: ${errorDetail(status, body, statusText)}`);
    } catch (err) {
      this.renderHealth(null, err?.message ?? String(err), err?.status === 0);
    } finally {
      setTimeout(() => this.pollHealth(), HEALTH_EVERY_MS);
    }
  }

  renderHealth(body, error, unreachable = false) {
    const dot = byId("health-dot");
    const text = byId("health-text");
    const list = byId("health-list");
    const checked = byId("health-checked");
    const version = typeof body?.version === "string" ? `Kiln ${body.version} · ` : "";
    checked.textContent = `${version}checked ${formatClock(Date.now())}`;
    if (error !== null) {
      dot.dataset.status = "unreachable";
      text.textContent = unreachable ? "Server unreachable" : "Health unknown";
      const item = document.createElement("li");
      item.className = "health-error";
      item.textContent = error;
      list.replaceChildren(item);
      return;
    }
    const status = body.status in HEALTH_TEXT ? body.status : "unknown";
    dot.dataset.status = status;
    text.textContent = HEALTH_TEXT[status] ?? `Status ${body.status}`;
    const items = [];
    const subsystems = body.subsystems && typeof body.subsystems === "object" ? body.subsystems : {};
    for (const [name, sub] of Object.entries(subsystems)) {
      const item = document.createElement("li");
      const subDot = document.createElement("span");
      subDot.className = "dot";
      subDot.dataset.status = String(sub?.status ?? "unknown");
      const label = document.createElement("span");
      label.className = "health-name";
      label.textContent = name;
      const state = document.createElement("span");
      state.className = "health-state";
      state.textContent = String(sub?.status ?? "unknown");
      item.append(subDot, label, state);
      const detail = sub?.detail && typeof sub.detail === "object" ? Object.entries(sub.detail) : [];
      if (detail.length > 0) {
        const info = document.createElement("div");
        info.className = "health-detail";
        info.textContent = detail
          .map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
          .join(" · ");
        item.append(info);
      }
      items.push(item);
    }
    if (items.length === 0) {
      const item = document.createElement("li");
      item.textContent = "No subsystems reported.";
      items.push(item);
    }
    list.replaceChildren(...items);
  }

  // --- live connection -----------------------------------------------------------------------

  showLive(state, info) {
    this.liveState = state;
    this.liveInfo = info;
    if (state === LiveState.RETRYING) this.retryAt = Date.now() + info.delayMs;
    if (state === LiveState.LIVE && info.reconnected) {
      // Values changed while the socket was down: fetch the latest and the trend again.
      this.refreshLatest();
      this.trend.reload();
    }
    this.renderLiveText();
  }

  renderLiveText() {
    const dot = byId("live-dot");
    const text = byId("live-text");
    const box = byId("live");
    const state = this.liveState;
    const info = this.liveInfo ?? {};
    dot.dataset.status = state;
    if (state === LiveState.LIVE) text.textContent = "Live";
    else if (state === LiveState.CONNECTING) text.textContent = "Connecting…";
    else if (state === LiveState.RETRYING) {
      const seconds = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      text.textContent = seconds > 0 ? `Disconnected · retry in ${seconds} s` : "Disconnected · retrying";
    } else text.textContent = "Not connected";
    const stats = this.live.stats;
    const lines = [
      `Live feed: ${state}${info.prefix !== undefined && info.prefix !== null ? ` (prefix "${info.prefix}")` : ""}`,
      `${stats.messages} messages, ${stats.malformed} malformed ignored, ${stats.reconnects} reconnects`,
    ];
    if (info.reason) lines.push(`Last problem: ${info.reason}`);
    box.title = lines.join("\n");
    this.renderTagsFooter();
  }

  // --- assets and tags -----------------------------------------------------------------------

  async loadAssets(initial = {}) {
    const message = byId("tree-message");
    byId("tree-retry").hidden = true;
    setMessage(message, "Loading assets…");
    let assets;
    try {
      const body = await this.api.get("/api/v1/assets");
      assets = Array.isArray(body?.assets) ? body.assets : [];
    } catch (err) {
      if (this.session.user === null) return; // the session ended: the sign-in form is up
      setMessage(message, `Could not load the asset tree: ${err.message}`, "error");
      byId("tree-retry").hidden = false;
      return;
    }
    if (this.session.user === null) return; // signed out while the answer was on its way
    this.tree.setAssets(assets);
    if (assets.length === 0) {
      setMessage(message, "No assets are defined yet. Load a plant model to see it here.");
      setMessage(byId("tags-message"), "Select an asset to see its tags.");
      return;
    }
    setMessage(message, "");
    const wanted = initial.asset && this.tree.node(initial.asset) ? initial.asset : this.nodePath;
    const path = wanted && this.tree.node(wanted) ? wanted : this.tree.firstPath();
    this.tree.select(path);
    await this.selectNode(path, initial.tag ?? null);
  }

  async selectNode(path, openTag = null) {
    this.nodePath = path;
    this.tree.select(path);
    this.renderCrumbs(path);
    document.title = `${this.tree.node(path)?.name ?? path} · Kiln`;
    if (this.trend.tagPath && !underPath(this.trend.tagPath, path)) this.trend.close();
    this.writeHash();

    this.selectAbort?.abort();
    const abort = new AbortController();
    this.selectAbort = abort;
    const generation = ++this.selectGeneration;
    const message = byId("tags-message");
    byId("tags-retry").hidden = true;
    this.tagsInfo = "";
    this.table.setTags([], path);
    setMessage(message, "Loading tags…");
    this.renderTagsFooter();

    let body;
    try {
      body = await this.api.get("/api/v1/tags", { prefix: path, limit: TAG_LIMIT }, { signal: abort.signal });
    } catch (err) {
      if (err?.name === "AbortError" || generation !== this.selectGeneration) return;
      setMessage(message, `Could not load the tags of ${path}: ${err.message}`, "error");
      byId("tags-retry").hidden = false;
      this.live.stop();
      return;
    }
    if (generation !== this.selectGeneration) return;
    const tags = Array.isArray(body?.tags) ? body.tags : [];
    this.table.setTags(tags, path);
    this.table.setSelected(this.trend.tagPath);
    if (tags.length === 0) setMessage(message, `No tags under ${path} yet.`);
    else setMessage(message, "");
    this.tagsInfo = body?.truncated
      ? `Showing the first ${tags.length} tags under ${path}: select a lower level to see the rest.`
      : "";
    this.table.filter(byId("tag-filter").value);
    this.renderTagsFooter();

    this.live.subscribe(path);
    await this.refreshLatest();

    if (openTag && generation === this.selectGeneration) {
      const tag = this.table.tag(openTag) ?? (await this.findTag(openTag));
      if (tag) this.openTrend(tag);
    }
  }

  async refreshLatest() {
    const path = this.nodePath;
    if (path === null) return;
    const generation = this.selectGeneration;
    try {
      const body = await this.api.get(
        "/api/v1/values/latest",
        { prefix: path },
        { signal: this.selectAbort?.signal },
      );
      if (generation !== this.selectGeneration) return;
      this.table.applyValues(Array.isArray(body?.values) ? body.values : []);
      this.table.refreshAges(this.clock.now());
    } catch (err) {
      if (err?.name === "AbortError" || generation !== this.selectGeneration) return;
      this.banner(`Could not load the latest values of ${path}: ${err.message}`);
    }
  }

  async findTag(path) {
    try {
      const body = await this.api.get("/api/v1/tags", { prefix: path, limit: 1 });
      return (body?.tags ?? []).find((t) => t.path === path) ?? null;
    } catch (err) {
      this.banner(`Could not open the trend of ${path}: ${err.message}`);
      return null;
    }
  }

  openTrend(tag) {
    document.body.classList.add("trend-open");
    this.table.setSelected(tag.path);
    this.trend.open(tag);
    this.writeHash();
  }

  renderTagsFooter() {
    const foot = byId("tags-foot");
    const parts = [];
    const total = this.table.size;
    if (total > 0) {
      const shown = this.table.visibleCount;
      parts.push(shown === total ? `${total} tags` : `${shown} of ${total} tags match the filter`);
    }
    if (this.tagsInfo) parts.push(this.tagsInfo);
    const malformed = this.live.stats.malformed;
    if (malformed > 0) parts.push(`${malformed} malformed live messages ignored`);
    foot.textContent = parts.join(" · ");
  }

  renderCrumbs(path) {
    const nav = byId("crumbs");
    const segments = path.split("/");
    const items = [];
    segments.forEach((segment, i) => {
      const sub = segments.slice(0, i + 1).join("/");
      const name = this.tree.node(sub)?.name ?? segment;
      if (i > 0) {
        const sep = document.createElement("span");
        sep.className = "crumb-sep";
        sep.textContent = "/";
        items.push(sep);
      }
      if (i === segments.length - 1) {
        const current = document.createElement("span");
        current.className = "crumb-current";
        current.textContent = name;
        current.setAttribute("aria-current", "location");
        items.push(current);
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "crumb";
        button.textContent = name;
        button.addEventListener("click", () => this.selectNode(sub));
        items.push(button);
      }
    });
    nav.replaceChildren(...items);
  }
}

function underPath(path, prefix) {
  return path === prefix || path.startsWith(`${prefix}/`);
}

new App().start();
