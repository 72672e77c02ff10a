// The ISA-95 asset tree: collapsible, filterable, keyboard navigable (WAI-ARIA tree pattern).

const LEVEL_LETTERS = {
  enterprise: "E",
  site: "S",
  area: "A",
  line: "L",
  cell: "C",
  asset: "M",
};

/**
 * Whether a node starts open: every level down to the ones that hold tags, in each branch. An
 * asset with a type holds tags (in an ISA-95 plant the machines, at level 6) and starts
 * closed, as does a leaf; the levels above them (enterprise, site, area, line, cell) open.
 */
export function opensOnLoad(node) {
  return !node.type && Array.isArray(node.children) && node.children.length > 0;
}

/** Renders /api/v1/assets into `container` and reports the selected node path. */
export class AssetTree {
  #container;
  #onSelect;
  #nodes = new Map(); // path -> {node, li, row, group, parent}
  #selected = null;
  #filter = "";

  /** `onSelect(path, node)` is called when the user selects a node. */
  constructor(container, { onSelect }) {
    this.#container = container;
    this.#onSelect = onSelect;
    container.addEventListener("keydown", (event) => this.#onKey(event));
  }

  /**
   * Replace the tree with `assets` (a list of AssetNode). Levels above `openDepth` start open;
   * by default every level down to the assets that hold tags (see opensOnLoad).
   */
  setAssets(assets, openDepth = null) {
    this.#nodes.clear();
    const root = document.createElement("ul");
    root.className = "tree-root";
    root.setAttribute("role", "tree");
    root.setAttribute("aria-label", "Assets");
    for (const node of assets) root.append(this.#build(node, null, 1, openDepth));
    this.#container.replaceChildren(root);
    const first = root.querySelector(".tree-row");
    if (first) first.tabIndex = 0;
    if (this.#selected && this.#nodes.has(this.#selected)) this.select(this.#selected);
    if (this.#filter) this.filter(this.#filter);
  }

  /** The AssetNode at `path`, or undefined. */
  node(path) {
    return this.#nodes.get(path)?.node;
  }

  /** The path of the first top-level node, or null for an empty model. */
  firstPath() {
    const first = this.#nodes.values().next();
    return first.done ? null : first.value.node.path;
  }

  /** Mark `path` selected and open its ancestors. Does not call onSelect. */
  select(path) {
    const previous = this.#nodes.get(this.#selected);
    if (previous) {
      previous.row.classList.remove("selected");
      previous.row.setAttribute("aria-selected", "false");
    }
    this.#selected = path;
    const entry = this.#nodes.get(path);
    if (!entry) return false;
    entry.row.classList.add("selected");
    entry.row.setAttribute("aria-selected", "true");
    for (let up = entry.parent; up; up = this.#nodes.get(up).parent) this.#setOpen(up, true);
    this.#focusable(entry.row);
    entry.row.scrollIntoView({ block: "nearest" });
    return true;
  }

  /** Show only nodes whose name or path contains `text`, with their ancestors. */
  filter(text) {
    this.#filter = text.trim().toLowerCase();
    const visit = (path) => {
      const entry = this.#nodes.get(path);
      const own =
        this.#filter === "" ||
        entry.node.name.toLowerCase().includes(this.#filter) ||
        entry.node.path.toLowerCase().includes(this.#filter);
      let childMatch = false;
      for (const child of entry.node.children ?? []) {
        if (visit(child.path)) childMatch = true;
      }
      entry.li.hidden = !(own || childMatch);
      if (this.#filter !== "" && childMatch) this.#setOpen(path, true);
      return own || childMatch;
    };
    let any = false;
    for (const [path, entry] of this.#nodes) {
      if (entry.parent === null && visit(path)) any = true;
    }
    return any;
  }

  #build(node, parent, depth, openDepth) {
    const li = document.createElement("li");
    li.setAttribute("role", "none");
    const row = document.createElement("div");
    row.className = "tree-row";
    row.setAttribute("role", "treeitem");
    row.setAttribute("aria-selected", "false");
    row.tabIndex = -1;
    row.dataset.path = node.path;
    row.style.setProperty("--depth", String(depth - 1));
    row.title = node.description ? `${node.path}\n${node.description}` : node.path;

    const children = Array.isArray(node.children) ? node.children : [];
    const toggle = document.createElement("span");
    toggle.className = "tree-toggle";
    toggle.setAttribute("aria-hidden", "true");
    const badge = document.createElement("span");
    badge.className = `tree-level level-${LEVEL_LETTERS[node.level] ? node.level : "asset"}`;
    badge.textContent = LEVEL_LETTERS[node.level] ?? "?";
    badge.title = node.level ?? "";
    const name = document.createElement("span");
    name.className = "tree-name";
    name.textContent = node.name || node.path;
    row.append(toggle, badge, name);
    if (node.type) {
      const type = document.createElement("span");
      type.className = "tree-type";
      type.textContent = node.type;
      row.append(type);
    }
    li.append(row);

    let group = null;
    if (children.length > 0) {
      group = document.createElement("ul");
      group.setAttribute("role", "group");
      li.append(group);
      toggle.textContent = "▸";
      toggle.addEventListener("click", (event) => {
        event.stopPropagation();
        this.#setOpen(node.path, group.hidden);
      });
    }
    row.addEventListener("click", () => this.#choose(node.path));
    this.#nodes.set(node.path, { node, li, row, group, parent });
    for (const child of children) group.append(this.#build(child, node.path, depth + 1, openDepth));
    if (group) this.#setOpen(node.path, openDepth === null ? opensOnLoad(node) : depth < openDepth);
    return li;
  }

  #setOpen(path, open) {
    const entry = this.#nodes.get(path);
    if (!entry?.group) return;
    entry.group.hidden = !open;
    entry.row.setAttribute("aria-expanded", String(open));
    entry.row.querySelector(".tree-toggle").textContent = open ? "▾" : "▸";
  }

  #choose(path) {
    this.select(path);
    this.#onSelect(path, this.node(path));
  }

  #focusable(row) {
    for (const other of this.#container.querySelectorAll(".tree-row[tabindex='0']")) {
      other.tabIndex = -1;
    }
    row.tabIndex = 0;
  }

  #visibleRows() {
    // A row is visible when none of its ancestors is hidden; offsetParent is null otherwise.
    return [...this.#container.querySelectorAll(".tree-row")].filter((r) => r.offsetParent !== null);
  }

  #onKey(event) {
    const row = event.target.closest?.(".tree-row");
    if (!row) return;
    const path = row.dataset.path;
    const entry = this.#nodes.get(path);
    const rows = this.#visibleRows();
    const index = rows.indexOf(row);
    let target = null;
    switch (event.key) {
      case "ArrowDown":
        target = rows[index + 1];
        break;
      case "ArrowUp":
        target = rows[index - 1];
        break;
      case "ArrowRight":
        if (entry.group && entry.group.hidden) this.#setOpen(path, true);
        else if (entry.group) target = rows[index + 1];
        break;
      case "ArrowLeft":
        if (entry.group && !entry.group.hidden) this.#setOpen(path, false);
        else if (entry.parent) target = this.#nodes.get(entry.parent).row;
        break;
      case "Home":
        target = rows[0];
        break;
      case "End":
        target = rows[rows.length - 1];
        break;
      case "Enter":
      case " ":
        this.#choose(path);
        break;
      default:
        return;
    }
    event.preventDefault();
    if (target) {
      this.#focusable(target);
      target.focus();
    }
  }
}
