// Zones screen: draw polygons on the live picture with touch, pen or mouse (pointer events).
// New zone: tap the corners, then Finish (or tap the first corner). Drag a corner to move it, drag the
// zone to move it whole, tap the small handle in the middle of an edge to add a corner there, "Delete
// point" removes the selected corner. Keyboard: Tab to the picture, arrows move the selected corner
// (Shift: the whole zone), Delete removes it. Save sends the whole set (set_zones); when the device
// refuses it, its message is shown on the zone its error names (`zone.index`) and the form's field at
// fault (`zone.field`) is marked invalid. The outlines are SVG: each polygon carries data-name.

import { drawPicture } from "./draw.js";
import { clock, el, svg } from "./util.js";

const PALETTE = ["#3ecf7a", "#4fc3f7", "#ff7c7c", "#c792ea", "#ffb020", "#f78fb3", "#7cf3ff", "#b5e655"];
const HIT = 22;       // px radius of a corner's touch target (44 px across)
const DOT = 8;
const FIELD_INPUT = { name: "zf-name", color: "zf-color", dwell_alert_seconds: "zf-dwell", roles: "zf-return" };

export class ZonesScreen {
  constructor(store, feed) {
    this.store = store; this.feed = feed;
    this.stage = document.getElementById("zone-stage");
    this.pic = document.getElementById("zone-pic");
    this.svg = document.getElementById("zone-svg");
    this.listEl = document.getElementById("zone-list");
    this.errorEl = document.getElementById("zone-error");
    this.toast = document.getElementById("zone-toast");
    this.form = document.getElementById("zone-form");
    this.hint = document.getElementById("zone-hint");
    this.zones = []; this.dirty = false; this.selected = -1; this.vertex = -1; this.drawing = false;
    this.drag = null; this.active = false;
    this.svg.setAttribute("tabindex", "0");

    this.svg.addEventListener("pointerdown", (e) => this.down(e));
    this.svg.addEventListener("pointermove", (e) => this.move(e));
    this.svg.addEventListener("pointerup", (e) => this.up(e));
    this.svg.addEventListener("pointercancel", (e) => this.up(e));
    this.svg.addEventListener("keydown", (e) => this.key(e));
    document.getElementById("zone-new").addEventListener("click", () => this.newOrFinish());
    document.getElementById("zone-save").addEventListener("click", () => this.save());
    document.getElementById("zone-revert").addEventListener("click", () => { this.dirty = false; this.fromStore(); this.say("Changes undone."); });
    document.getElementById("zf-delpoint").addEventListener("click", () => this.deletePoint());
    document.getElementById("zf-delete").addEventListener("click", () => this.deleteZone());
    const bind = (id, fn) => document.getElementById(id).addEventListener("input", (e) => { const z = this.zones[this.selected]; if (z) { fn(z, e.target); this.changed(false); } });
    bind("zf-name", (z, t) => { z.name = t.value; });
    bind("zf-color", (z, t) => { z.color = t.value; });
    bind("zf-dwell", (z, t) => { z.dwell_alert_seconds = t.value === "" ? null : Number(t.value); });
    document.getElementById("zf-return").addEventListener("change", (e) => {
      const z = this.zones[this.selected]; if (!z) return;
      z.roles = e.target.checked ? [...new Set([...z.roles, "return"])] : z.roles.filter((r) => r !== "return");
      this.changed(false);
    });

    feed.addEventListener("frame", () => { if (this.active) this.paintPicture(); });
    store.addEventListener("change", (e) => { if (e.detail === "zones") this.fromStore(); });
    new ResizeObserver(() => { if (this.active) { this.paintPicture(); this.renderStage(); } }).observe(this.stage);
  }

  show() { this.active = true; this.feed.acquire("zones"); this.fromStore(); this.paintPicture(); }
  hide() { this.active = false; this.feed.release("zones"); }

  paintPicture() {
    if (this.feed.width) this.stage.style.aspectRatio = `${this.feed.width} / ${this.feed.height}`;
    drawPicture(this.pic, this.feed.bitmap, this.feed.frameTs);
  }

  /** The device's zones: replace the local copy unless it has unsaved edits (then only occupancy). */
  fromStore() {
    const live = this.store.zones || [];
    if (!this.dirty) {
      this.zones = live.map((z) => ({ name: z.name, points: z.points.map((p) => [...p]), color: z.color || null,
        dwell_alert_seconds: z.dwell_alert_seconds ?? null, roles: [...(z.roles || [])],
        occupied: z.occupied, since: z.since, error: null, errorField: null }));
      if (this.selected >= this.zones.length) this.selected = -1;
    } else {
      const byName = new Map(live.map((z) => [z.name.toLowerCase(), z]));
      for (const z of this.zones) { const l = byName.get(z.name.toLowerCase()); z.occupied = l ? l.occupied : false; z.since = l ? l.since : null; }
    }
    if (this.active) this.render();
  }

  changed(structure = true) {
    this.dirty = true;
    for (const z of this.zones) { z.error = null; z.errorField = null; }
    this.errorEl.hidden = true;
    if (structure) this.render(); else { this.renderList(); this.renderStage(); }
  }

  say(text, bad = false) { this.toast.textContent = text; this.toast.className = bad ? "toast error-text" : "toast"; }

  // --- geometry ---
  size() { return [this.svg.clientWidth || 1, this.svg.clientHeight || 1]; }
  norm(e) {
    const r = this.svg.getBoundingClientRect();
    return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
  }

  // --- pointer ---
  down(e) {
    if (e.button !== undefined && e.button > 0) return;
    const p = this.norm(e);
    const t = e.target.closest("[data-role]");
    const role = t ? t.dataset.role : null;
    const zi = t ? Number(t.dataset.zone) : -1;
    this.svg.setPointerCapture(e.pointerId);
    e.preventDefault();
    if (this.drawing) {
      const z = this.zones[this.selected];
      if (role === "vertex" && zi === this.selected && Number(t.dataset.index) === 0 && z.points.length >= 3) { this.finish(); return; }
      z.points.push(p);
      this.vertex = z.points.length - 1;
      this.changed();
      return;
    }
    if (role === "vertex") {
      this.selected = zi; this.vertex = Number(t.dataset.index);
      this.drag = { kind: "vertex", id: e.pointerId };
    } else if (role === "mid") {
      const z = this.zones[zi], i = Number(t.dataset.index);
      z.points.splice(i + 1, 0, p);
      this.selected = zi; this.vertex = i + 1;
      this.drag = { kind: "vertex", id: e.pointerId };
      this.changed();
      return;
    } else if (role === "zone") {
      this.selected = zi; this.vertex = -1;
      this.drag = { kind: "zone", id: e.pointerId, last: p };
    } else {
      this.selected = -1; this.vertex = -1;
    }
    this.render();
  }

  move(e) {
    if (!this.drag || this.drag.id !== e.pointerId) return;
    const p = this.norm(e), z = this.zones[this.selected];
    if (!z) return;
    if (this.drag.kind === "vertex") z.points[this.vertex] = p;
    else {
      let dx = p[0] - this.drag.last[0], dy = p[1] - this.drag.last[1];
      // keep the whole zone inside the picture
      for (const [x, y] of z.points) { dx = Math.min(Math.max(dx, -x), 1 - x); dy = Math.min(Math.max(dy, -y), 1 - y); }
      z.points = z.points.map(([x, y]) => [x + dx, y + dy]);
      this.drag.last = p;
    }
    this.dirty = true;
    this.renderStage();
  }

  up(e) {
    if (this.drag && this.drag.id === e.pointerId) { this.drag = null; this.changed(); }
  }

  key(e) {
    const z = this.zones[this.selected];
    if (!z) return;
    const step = 0.01;
    const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (d) {
      e.preventDefault();
      if (e.shiftKey || this.vertex < 0) z.points = z.points.map(([x, y]) => [clamp(x + d[0]), clamp(y + d[1])]);
      else { const [x, y] = z.points[this.vertex]; z.points[this.vertex] = [clamp(x + d[0]), clamp(y + d[1])]; }
      this.changed();
    } else if (e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); this.deletePoint(); }
    else if (e.key === "Tab" && !e.shiftKey && z.points.length && this.vertex < z.points.length - 1 && this.vertex >= -1 && e.altKey) {
      e.preventDefault(); this.vertex++; this.render();
    }
  }

  // --- commands ---
  newOrFinish() {
    if (this.drawing) { this.finish(); return; }
    let n = this.zones.length + 1;
    while (this.zones.some((z) => z.name.toLowerCase() === `zone ${n}`)) n++;
    this.zones.push({ name: `Zone ${n}`, points: [], color: PALETTE[this.zones.length % PALETTE.length],
      dwell_alert_seconds: null, roles: [], occupied: false, since: null, error: null, errorField: null });
    this.selected = this.zones.length - 1; this.vertex = -1; this.drawing = true;
    this.changed();
  }

  finish() {
    const z = this.zones[this.selected];
    if (z && z.points.length < 3) { this.say("A zone needs at least 3 corners: tap the picture to add them.", true); return; }
    this.drawing = false;
    this.render();
  }

  deletePoint() {
    const z = this.zones[this.selected];
    if (!z || this.vertex < 0) { this.say("Select a corner first (tap it).", true); return; }
    if (z.points.length <= 3 && !this.drawing) { this.say("A zone keeps at least 3 corners; delete the zone instead.", true); return; }
    z.points.splice(this.vertex, 1);
    this.vertex = Math.min(this.vertex, z.points.length - 1);
    this.changed();
  }

  deleteZone() {
    if (this.selected < 0) return;
    this.zones.splice(this.selected, 1);
    this.selected = -1; this.vertex = -1; this.drawing = false;
    this.changed();
  }

  /** The whole set as set_zones takes it. */
  payload() {
    return this.zones.map((z) => {
      const out = { name: z.name.trim(), points: z.points.map(([x, y]) => [round(x), round(y)]), dwell_alert_seconds: z.dwell_alert_seconds, roles: z.roles };
      if (z.color) out.color = z.color;
      return out;
    });
  }

  async save() {
    if (this.drawing) this.finish();
    if (this.drawing) return;
    const body = this.payload();
    this.say("Saving…");
    try {
      const r = await this.store.call("set_zones", { zones: body });
      this.dirty = false;   // the draft is stored: show the store's zones from now on
      this.fromStore();
      this.say(`Saved ${r.count} zone${r.count === 1 ? "" : "s"}.`);
    } catch (e) {
      this.say("");
      this.showError(e.message, (e.data && e.data.zone) || null);
    }
  }

  /** Put the device's message on the zone its error names (the list sent is this.zones, in order). */
  showError(message, where) {
    const index = where && this.zones[where.index] ? where.index : -1;
    if (index >= 0) {
      Object.assign(this.zones[index], { error: message, errorField: where.field });
      this.selected = index; this.vertex = -1;
    }
    this.errorEl.hidden = false;
    this.errorEl.textContent = index >= 0 && this.zones[index] ? `${this.zones[index].name}: the device says: ${message}` : `The device refused the zones: ${message}`;
    this.render();
  }

  // --- rendering ---
  render() { this.renderList(); this.renderStage(); this.renderForm(); }

  renderList() {
    document.getElementById("zone-new").textContent = this.drawing ? "Finish zone" : "New zone";
    this.hint.textContent = this.drawing ? "Tap the picture to add corners; tap the first corner or “Finish zone” to close the outline."
      : this.selected >= 0 ? "Drag a corner or the whole zone; tap an edge's middle handle to add a corner."
        : "Select a zone or press “New zone”, then tap the picture to add corners.";
    this.listEl.replaceChildren(...this.zones.map((z, i) => el("li", { "data-zone": z.name },
      el("button", { class: "btn", type: "button", "aria-pressed": String(i === this.selected),
        onclick: () => { this.selected = i; this.vertex = -1; this.drawing = false; this.render(); } },
      el("span", { class: "swatch", style: `background:${z.color || PALETTE[0]}` }),
      el("span", {}, z.name || "(no name)",
        el("span", { class: "muted" }, z.occupied ? ` · dog inside${z.since ? " since " + clock(z.since) : ""}` : ""),
        z.roles.includes("return") ? el("span", { class: "muted" }, " · return") : null,
        z.error ? el("span", { class: "zerr error-text" }, z.error) : null)))));
    if (!this.zones.length) this.listEl.append(el("li", { class: "muted" }, "No zones yet."));
  }

  renderForm() {
    const z = this.zones[this.selected];
    this.form.hidden = !z;
    if (!z) return;
    const set = (id, v) => { const n = document.getElementById(id); if (document.activeElement !== n) n.value = v; };
    set("zf-name", z.name); set("zf-color", z.color || PALETTE[0]); set("zf-dwell", z.dwell_alert_seconds ?? "");
    document.getElementById("zf-return").checked = z.roles.includes("return");
    for (const [field, id] of Object.entries(FIELD_INPUT)) document.getElementById(id).setAttribute("aria-invalid", String(z.errorField === field));
    document.getElementById("zf-occ").textContent = z.occupied ? `The dog is in this zone${z.since ? " since " + clock(z.since) : ""}.` : "The dog is not in this zone.";
  }

  renderStage() {
    const [W, H] = this.size();
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const nodes = [];
    this.zones.forEach((z, i) => {
      const colour = z.color || PALETTE[0];
      const pts = z.points.map(([x, y]) => `${x * W},${y * H}`).join(" ");
      const sel = i === this.selected;
      if (z.points.length >= 2) {
        nodes.push(svg(z.points.length >= 3 && !(sel && this.drawing) ? "polygon" : "polyline", {
          points: pts, class: "zone", "data-role": "zone", "data-zone": i, "data-name": z.name,
          fill: z.points.length >= 3 ? colour : "none", "fill-opacity": z.occupied ? 0.4 : 0.15,
          stroke: z.error ? "#ff5b5b" : colour, "stroke-width": sel ? 3 : 2, "stroke-dasharray": z.occupied ? null : "8 6" }));
      }
      if (z.points.length) {
        const [cx, cy] = z.points.reduce(([a, b], [x, y]) => [a + x / z.points.length, b + y / z.points.length], [0, 0]);
        nodes.push(svg("text", { x: cx * W, y: cy * H, "text-anchor": "middle", fill: z.error ? "#ffb3b3" : "#fff", "pointer-events": "none" },
          z.error ? `⚠ ${z.name}` : z.occupied ? `${z.name} · dog here` : z.name));
      }
      if (!sel) return;
      if (!this.drawing && z.points.length >= 3) {
        z.points.forEach(([x, y], j) => {
          const [nx, ny] = z.points[(j + 1) % z.points.length];
          nodes.push(svg("circle", { cx: (x + nx) / 2 * W, cy: (y + ny) / 2 * H, r: HIT, fill: "transparent", "data-role": "mid", "data-zone": i, "data-index": j }));
          nodes.push(svg("circle", { cx: (x + nx) / 2 * W, cy: (y + ny) / 2 * H, r: 5, fill: "#fff", "fill-opacity": 0.7, "pointer-events": "none" }));
        });
      }
      z.points.forEach(([x, y], j) => {
        nodes.push(svg("circle", { cx: x * W, cy: y * H, r: HIT, fill: "transparent", "data-role": "vertex", "data-zone": i, "data-index": j, class: "vertex" }));
        nodes.push(svg("circle", { cx: x * W, cy: y * H, r: j === this.vertex ? DOT + 3 : DOT, fill: j === this.vertex ? "#ffd400" : colour, stroke: "#000", "stroke-width": 2, "pointer-events": "none" }));
      });
    });
    this.svg.replaceChildren(...nodes);
  }
}

function clamp(v) { return Math.min(1, Math.max(0, v)); }
function round(v) { return Math.round(v * 10000) / 10000; }
