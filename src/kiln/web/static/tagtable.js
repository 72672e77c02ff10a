// The table of tags under the selected asset: live value, quality badge and age, updated in place.

import { formatAge, formatValue, parseTimestamp, qualityLabel, qualitySeverity } from "./format.js";

// A brief, pale cue that a value changed: a tag updating every second must not look like an alarm.
// The colour comes from the stylesheet (--flash), which has one for the dark theme too.
function flashColor() {
  return getComputedStyle(document.documentElement).getPropertyValue("--flash").trim() || "#fff6d6";
}
const REDUCED_MOTION = globalThis.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;

/** Renders tag definitions into a <tbody> and keeps their live cells current. */
export class TagTable {
  #body;
  #onOpen;
  #rows = new Map(); // path -> row state
  #selected = null;
  #filter = "";
  #visible = 0;

  /** `onOpen(tag)` is called when the user opens a tag (click or Enter on its row). */
  constructor(tbody, { onOpen }) {
    this.#body = tbody;
    this.#onOpen = onOpen;
    tbody.addEventListener("click", (event) => this.#open(event.target.closest?.("tr")));
    tbody.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.#open(event.target.closest?.("tr"));
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const tr = event.target.closest?.("tr");
        let next = event.key === "ArrowDown" ? tr?.nextElementSibling : tr?.previousElementSibling;
        while (next?.hidden) {
          next = event.key === "ArrowDown" ? next.nextElementSibling : next.previousElementSibling;
        }
        next?.focus();
      }
    });
  }

  /** Number of tags shown. */
  get size() {
    return this.#rows.size;
  }

  /** Number of tags the filter lets through. */
  get visibleCount() {
    return this.#visible;
  }

  /** The tag definitions shown, in table order. */
  get tags() {
    return [...this.#rows.values()].map((row) => row.tag);
  }

  /** The tag definition at `path`, or undefined. */
  tag(path) {
    return this.#rows.get(path)?.tag;
  }

  /** Replace the rows with `tags`; names are shown relative to `basePath`. */
  setTags(tags, basePath) {
    this.#rows.clear();
    const fragment = document.createDocumentFragment();
    for (const tag of tags) {
      if (typeof tag?.path !== "string" || this.#rows.has(tag.path)) continue;
      const row = this.#buildRow(tag, basePath);
      this.#rows.set(tag.path, row);
      fragment.append(row.tr);
    }
    this.#body.replaceChildren(fragment);
    if (this.#selected) this.setSelected(this.#selected);
    return this.filter(this.#filter);
  }

  /**
   * Apply value entries ({path, value, source_ts, quality}) from the REST API or the live feed.
   * An entry older than what a row shows is ignored, so a slow REST answer cannot overwrite a
   * newer live value. Returns the number of rows changed.
   */
  applyValues(entries) {
    let changed = 0;
    for (const entry of entries) {
      const row = this.#rows.get(entry?.path);
      if (!row) continue;
      const ts = parseTimestamp(entry.source_ts);
      if (row.sourceMs !== null && Number.isFinite(ts) && ts < row.sourceMs) continue;
      const text = formatValue(entry.value, row.tag);
      const severity = qualitySeverity(entry.quality);
      const valueChanged = row.value.textContent !== text;
      row.value.textContent = text;
      row.value.title = String(entry.value);
      row.unit.textContent = unitFor(row.tag, text);
      row.badge.textContent = qualityLabel(entry.quality);
      row.badge.title = String(entry.quality);
      row.badge.className = `badge q-${severity}`;
      row.tr.dataset.severity = severity;
      row.sourceMs = Number.isFinite(ts) ? ts : null;
      row.age.title = Number.isFinite(ts) ? `source time ${entry.source_ts}` : "no source time";
      if (valueChanged && row.flashable && !REDUCED_MOTION) {
        row.valueCell.animate?.([{ backgroundColor: flashColor() }, { backgroundColor: "transparent" }], {
          duration: 450,
          easing: "ease-out",
        });
      }
      row.flashable = true;
      changed += 1;
    }
    return changed;
  }

  /** Rewrite every age cell against server time `nowMs`. */
  refreshAges(nowMs) {
    for (const row of this.#rows.values()) {
      const text = row.sourceMs === null ? "—" : formatAge(nowMs - row.sourceMs);
      if (row.age.textContent !== text) row.age.textContent = text;
    }
  }

  /** Highlight the row of `path` (the tag shown in the trend), or none. */
  setSelected(path) {
    this.#rows.get(this.#selected)?.tr.classList.remove("selected");
    this.#rows.get(this.#selected)?.tr.setAttribute("aria-selected", "false");
    this.#selected = path;
    const row = this.#rows.get(path);
    if (!row) return;
    row.tr.classList.add("selected");
    row.tr.setAttribute("aria-selected", "true");
    // A trend opened from a link must show which row it belongs to.
    row.tr.scrollIntoView?.({ block: "nearest" });
  }

  /** Show only rows whose path or description contains `text`; returns the visible count. */
  filter(text) {
    this.#filter = text.trim().toLowerCase();
    let visible = 0;
    for (const row of this.#rows.values()) {
      const hit =
        this.#filter === "" ||
        row.tag.path.toLowerCase().includes(this.#filter) ||
        String(row.tag.description ?? "").toLowerCase().includes(this.#filter);
      row.tr.hidden = !hit;
      if (hit) visible += 1;
    }
    this.#visible = visible;
    return visible;
  }

  #open(tr) {
    const row = tr ? this.#rows.get(tr.dataset.path) : undefined;
    if (row) this.#onOpen(row.tag);
  }

  #buildRow(tag, basePath) {
    const tr = document.createElement("tr");
    tr.dataset.path = tag.path;
    tr.dataset.severity = "none";
    tr.tabIndex = 0;
    tr.setAttribute("aria-selected", "false");
    tr.title = `${tag.path}\nClick for the trend`;

    const nameCell = document.createElement("td");
    nameCell.className = "col-name";
    const relative = relativePath(tag.path, basePath);
    const cut = relative.lastIndexOf("/");
    if (cut > 0) {
      const parent = document.createElement("span");
      parent.className = "tag-parent";
      parent.textContent = relative.slice(0, cut + 1);
      nameCell.append(parent);
    }
    const name = document.createElement("span");
    name.className = "tag-name";
    name.textContent = relative.slice(cut + 1);
    nameCell.append(name);

    const descCell = document.createElement("td");
    descCell.className = "col-desc";
    descCell.textContent = tag.description ?? "";

    const valueCell = document.createElement("td");
    valueCell.className = "col-value";
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = "—";
    const unit = document.createElement("span");
    unit.className = "unit";
    valueCell.append(value, unit);

    const qualityCell = document.createElement("td");
    qualityCell.className = "col-quality";
    const badge = document.createElement("span");
    badge.className = "badge q-none";
    badge.textContent = "No value";
    badge.title = "no value received yet";
    qualityCell.append(badge);

    const age = document.createElement("td");
    age.className = "col-age";
    age.textContent = "—";

    tr.append(nameCell, descCell, valueCell, qualityCell, age);
    return { tag, tr, valueCell, value, unit, badge, age, sourceMs: null, flashable: false };
  }
}

/** `path` relative to `basePath` ("a/b/c" under "a" -> "b/c"); unchanged when not below it. */
export function relativePath(path, basePath) {
  if (!basePath) return path;
  const base = basePath.replace(/\/+$/, "");
  return path.startsWith(`${base}/`) ? path.slice(base.length + 1) : path;
}

function unitFor(tag, text) {
  if (!tag.unit || text === "—" || tag.data_type === "bool" || tag.data_type === "state") return "";
  return tag.unit;
}
