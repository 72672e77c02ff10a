// The Kiln HMI page: wires the asset tree, the tag table, the trend and the live feed together.
// The selection lives in the address (#asset=...&tag=...&tag=...&range=... or &from=...&to=...)
// so a reload or a shared link opens the same view: it is read once on load, restored after
// sign-in and the tree load, and only written from then on. Nothing of the plant is shown or
// fetched until someone is signed in.

import { AdminPage } from "./admin.js";
import { AlarmConsole } from "./alarms.js";
import { Api, errorDetail } from "./api.js";
import { ServerClock } from "./clock.js";
import { renderHealth } from "./health.js";
import { LiveFeed, LiveState } from "./live.js";
import { Session } from "./session.js";
import { ProductionPage } from "./production.js";
import { SignInForm } from "./signin.js";
import { TagTable } from "./tagtable.js";
import { AssetTree } from "./tree.js";
import { readView, writeView } from "./trenddata.js";
import { TrendPanel } from "./trendpanel.js";
import { ValuechainPage } from "./valuechain.js";

const HEALTH_EVERY_MS = 10_000;
const AGES_EVERY_MS = 1_000;
// Tags listed per node; a deeper node shows the rest. Bounded so one click cannot ask for 100k rows.
const TAG_LIMIT = 500;

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
    this.healthTimer = 0;
    // The view the address asked for, until sign-in and the tree load have restored it: the
    // address is not written before then, so a reload keeps what the link said.
    this.pendingView = readView(location.hash);

    this.tree = new AssetTree(byId("tree"), { onSelect: (path) => this.selectNode(path) });
    this.table = new TagTable(byId("tag-rows"), { onOpen: (tag) => this.openTrend(tag) });
    this.trend = new TrendPanel(
      {
        panel: byId("trend-panel"),
        name: byId("trend-name"),
        path: byId("trend-path"),
        meta: byId("trend-meta"),
        chart: byId("trend-chart"),
        pens: byId("trend-pens"),
        cursorTime: byId("trend-cursor-time"),
        add: byId("trend-add"),
        csv: byId("trend-csv"),
        custom: byId("trend-custom"),
        customMessage: byId("trend-custom-message"),
        from: byId("trend-from"),
        to: byId("trend-to"),
        back: byId("trend-back"),
        forward: byId("trend-forward"),
        zoomOut: byId("trend-zoom-out"),
        now: byId("trend-now"),
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
        onChange: () => {
          this.table.setSelected(this.trend.tagPath);
          this.writeHash();
        },
      },
    );
    this.admin = new AdminPage(
      { root: byId("admin"), toggle: byId("admin-toggle"), plant: byId("plant") },
      { fetchImpl: this.session.fetch },
    );
    this.alarms = new AlarmConsole(
      { root: byId("alarms"), plant: byId("plant"), toggle: byId("alarm-indicator"), count: byId("alarm-count") },
      { fetchImpl: this.session.fetch, asset: () => this.nodePath },
    );
    this.production = new ProductionPage(
      { root: byId("production"), plant: byId("plant"), toggle: byId("production-toggle") },
      { fetchImpl: this.session.fetch },
    );
    this.valuechain = new ValuechainPage(
      { root: byId("valuechain"), plant: byId("plant"), toggle: byId("valuechain-toggle") },
      {
        fetchImpl: this.session.fetch,
        // A genealogy step's production order: the Production page's work orders.
        openOrder: () => {
          this.valuechain.close({ showPlant: false });
          this.production.open("orders");
        },
      },
    );
    // One view at a time: opening Administration, the console, Production or the value chain
    // closes the others. (Each view's own click handler has run first: it has just opened or
    // closed itself.)
    byId("admin-toggle").addEventListener("click", () => {
      if (this.admin.isOpen) {
        this.alarms.close({ showPlant: false });
        this.production.close({ showPlant: false });
        this.valuechain.close({ showPlant: false });
      }
    });
    byId("alarm-indicator").addEventListener("click", () => {
      if (this.alarms.isOpen && this.admin.isOpen) this.admin.close();
      if (this.alarms.isOpen) this.production.close({ showPlant: false });
      if (this.alarms.isOpen) this.valuechain.close({ showPlant: false });
      if (this.alarms.isOpen) byId("plant").hidden = true;
    });
    byId("production-toggle").addEventListener("click", () => {
      if (!this.production.isOpen) return;
      this.alarms.close({ showPlant: false });
      this.valuechain.close({ showPlant: false });
      if (this.admin.isOpen) this.admin.close();
      byId("plant").hidden = true;
    });
    byId("valuechain-toggle").addEventListener("click", () => {
      if (!this.valuechain.isOpen) return;
      this.alarms.close({ showPlant: false });
      this.production.close({ showPlant: false });
      if (this.admin.isOpen) this.admin.close();
      byId("plant").hidden = true;
    });
    this.live = new LiveFeed({
      onValues: (values) => {
        this.table.applyValues(values);
        this.trend.applyValues(values);
      },
      onAlarms: (alarms) => this.alarms.applyAlarms(alarms),
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

    if (this.pendingView.window) this.trend.setWindow(this.pendingView.window, { quiet: true });
    this.passwordDialog();
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
    this.admin.signedIn(user);
    this.alarms.signedIn(user);
    this.production.signedIn(user);
    this.valuechain.signedIn(user);
    // Signed in, the health report names the subsystems: fetch it now, not at the next poll.
    this.pollHealth();
    const view = this.pendingView ?? { asset: this.nodePath, tags: [], window: null };
    this.loadAssets(view);
  }

  async signOut() {
    byId("sign-out").disabled = true;
    await this.session.logout();
    byId("sign-out").disabled = false;
    this.signedOut("You have signed out.");
  }

  /** Back to the sign-in form, dropping whatever the previous user could see. */
  signedOut(message) {
    // The address keeps the view for whoever signs in next.
    this.pendingView = readView(location.hash);
    byId("password-dialog").close?.();
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
    this.admin.signedOut();
    this.alarms.signedOut();
    this.production.signedOut();
    this.valuechain.signedOut();
    this.signIn.show(message);
  }

  // --- own password -------------------------------------------------------------------------

  passwordDialog() {
    const dialog = byId("password-dialog");
    const form = byId("password-form");
    const current = byId("password-current");
    const fresh = byId("password-new");
    const repeat = byId("password-repeat");
    const message = byId("password-message");
    const submit = byId("password-submit");
    byId("password-open").addEventListener("click", () => {
      form.reset();
      byId("password-username").value = this.session.user?.username ?? "";
      setMessage(message, "");
      dialog.showModal();
      current.focus();
    });
    byId("password-cancel").addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (fresh.value !== repeat.value) {
        setMessage(message, "The two new passwords differ.", "error");
        repeat.focus();
        return;
      }
      submit.disabled = true;
      setMessage(message, "Changing the password…");
      try {
        const response = await this.session.fetch("/api/v1/auth/password", {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ current_password: current.value, new_password: fresh.value }),
        });
        const { status, statusText } = response;
        const body = status === 204 ? null : await response.json().catch(() => null);
        if (status === 204) {
          dialog.close();
          this.banner("Your password is changed. Your other sessions have ended; this one goes on.");
          byId("banner").dataset.kind = "info";
          return;
        }
        setMessage(message, errorDetail(status, body, statusText), "error");
        if (status === 403) {
          current.value = "";
          current.focus();
        }
      } catch (err) {
        setMessage(message, `Could not change the password: ${err?.message ?? err}`, "error");
      } finally {
        submit.disabled = false;
      }
    });
  }

  tick() {
    this.table.refreshAges(this.clock.now());
    // Also refreshes the retry countdown and the malformed-message count.
    this.renderLiveText();
  }

  banner(message) {
    byId("banner").dataset.kind = "error";
    byId("banner-text").textContent = message;
    byId("banner").hidden = false;
  }

  writeHash() {
    if (this.pendingView !== null || this.session.user === null) return;
    const view = { asset: this.nodePath, tags: this.trend.tagPaths, window: this.trend.window };
    history.replaceState(null, "", `#${writeView(view)}`);
  }

  // --- health -------------------------------------------------------------------------------

  /** Fetch the health report now and every HEALTH_EVERY_MS after. */
  async pollHealth() {
    clearTimeout(this.healthTimer);
    const panel = {
      dot: byId("health-dot"),
      text: byId("health-text"),
      summary: byId("health-summary"),
      list: byId("health-list"),
      checked: byId("health-checked"),
    };
    const signedIn = this.session.user !== null;
    try {
      const { status, body, statusText } = await this.api.request("/api/v1/health");
      // A failed platform answers 503 with the same body: that is still a health report.
      if (body && typeof body.status === "string") renderHealth(panel, body, null, { signedIn });
      else renderHealth(panel, null, `Health check failed: ${errorDetail(status, body, statusText)}`);
    } catch (err) {
      renderHealth(panel, null, err?.message ?? String(err), { unreachable: err?.status === 0 });
    } finally {
      clearTimeout(this.healthTimer);
      this.healthTimer = setTimeout(() => this.pollHealth(), HEALTH_EVERY_MS);
    }
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
    // "Live updates", not "Connected": this is the page's own feed from the server, which a
    // reader must not take for the state of a PLC.
    if (state === LiveState.LIVE) text.textContent = "Live updates: on";
    else if (state === LiveState.CONNECTING) text.textContent = "Live updates: connecting…";
    else if (state === LiveState.RETRYING) {
      const seconds = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      text.textContent =
        seconds > 0 ? `Live updates: lost · retry in ${seconds} s` : "Live updates: lost · retrying";
    } else text.textContent = "Live updates: off";
    const stats = this.live.stats;
    const lines = [
      `The page's live feed from the server (not a device connection): ${state}${info.prefix !== undefined && info.prefix !== null ? ` (prefix "${info.prefix}")` : ""}`,
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
      if (err.status === 403) {
        // A role without values:read (an auditor): nothing to retry, say what they can do.
        setMessage(
          message,
          "Your roles do not include reading plant values (values:read). " +
            "Administration shows what your roles allow.",
        );
        return;
      }
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
    await this.selectNode(path, initial.tags ?? []);
  }

  /** Select the asset at `path`; `openTags` (from the address) become the trend's pens. */
  async selectNode(path, openTags = []) {
    this.nodePath = path;
    this.tree.select(path);
    this.renderCrumbs(path);
    document.title = `${this.tree.node(path)?.name ?? path} · Kiln`;
    // The trend stays open across assets: that is how pens of two machines meet on one chart.
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
    this.trend.setCandidates(tags);
    if (tags.length === 0) setMessage(message, `No tags under ${path} yet.`);
    else setMessage(message, "");
    this.tagsInfo = body?.truncated
      ? `Showing the first ${tags.length} tags under ${path}: select a lower level to see the rest.`
      : "";
    this.table.filter(byId("tag-filter").value);
    this.renderTagsFooter();

    this.live.subscribe(path);
    await this.refreshLatest();

    if (generation !== this.selectGeneration) return;
    const restoring = this.pendingView !== null;
    for (const wanted of openTags) {
      const tag = this.table.tag(wanted) ?? (await this.findTag(wanted));
      if (!tag || generation !== this.selectGeneration) continue;
      if (this.trend.tagPath === null) this.openTrend(tag);
      else this.trend.addPen(tag);
    }
    if (restoring && generation === this.selectGeneration) {
      this.pendingView = null; // restored: from now on the address follows the page
      this.writeHash();
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

new App().start();
