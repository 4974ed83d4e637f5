// Analytics screen: one day's posture minutes, zone minutes and visits, activity and event counts as
// hand-drawn SVG bar charts (no chart library: a few bars do not earn one), updated as `analytics`
// messages arrive for today; other days come from get_analytics (both kept in store.analytics by day).
// The heat map is drawn over the newest snapshot. With peers, a device picker shows one device's figures
// (a peer's through get_analytics with `device`, fetched again a moment after its events) or "Home": the
// figures of every device added up (peers.js sumAnalytics).

import { drawHeat } from "./draw.js";
import { sumAnalytics } from "./peers.js";
import { el, num, svg, today } from "./util.js";

const HOME = "home";
const PEER_REFRESH_MS = 2000;

const POSTURE_LABEL = { sit: "Sitting", stand: "Standing", lie: "Lying", unknown: "Unclear" };
const COLOURS = ["#ffd400", "#4fc3f7", "#3ecf7a", "#ff7c7c", "#c792ea", "#ffb020"];

/** Horizontal bars: rows = [{label, value, text}]; the text is what the figure says in words. */
export function barChart(name, rows) {
  if (!rows.length) return el("p", { class: "muted", "data-figure": name }, "Nothing yet.");
  const max = Math.max(...rows.map((r) => r.value), 1e-9);
  const rowH = 32, labelW = 138, W = 340, H = rows.length * rowH + 6;
  const chart = svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": rows.map((r) => `${r.label}: ${r.text}`).join("; "), "data-figure": name });
  rows.forEach((r, i) => {
    const y = i * rowH + 4, w = Math.max(2, (W - labelW - 96) * (r.value / max));
    chart.append(svg("text", { x: 0, y: y + 19, class: "axis" }, r.label.length > 15 ? r.label.slice(0, 14) + "…" : r.label));
    chart.append(svg("rect", { x: labelW, y: y + 3, width: w, height: rowH - 10, rx: 4, fill: COLOURS[i % COLOURS.length] }));
    chart.append(svg("text", { x: labelW + w + 6, y: y + 19, "data-value": r.label }, r.text));
  });
  return chart;
}

export class AnalyticsScreen {
  constructor(store) {
    this.store = store;
    this.dayInput = document.getElementById("an-day");
    this.status = document.getElementById("an-status");
    this.day = today(); this.dayInput.value = this.day;
    this.todayWas = this.day;   // "today" as last reckoned: once the device's clock is known, today may move
    this.active = false;
    this.picker = document.getElementById("an-device");
    this.picker.addEventListener("change", () => { this.heatmap = null; this.show(); });
    this.dayInput.addEventListener("change", () => this.load(this.dayInput.value || today()));
    document.getElementById("an-today").addEventListener("click", () => this.load(today()));
    store.addEventListener("change", (e) => {
      if (e.detail === "peers" || e.detail === "connection") this.renderPicker();
      if (e.detail === "connection" && this.day === this.todayWas && this.day !== today()) {
        if (this.active) this.load(today()); else { this.day = this.todayWas = today(); this.dayInput.value = this.day; }
      }
      if (!this.active) return;
      if (e.detail === "analytics") this.render();
      if (e.detail === "heatmap" && !this.store.isPeer(this.chosen())) this.renderHeat();
    });
    store.addEventListener("event", (e) => {   // a peer's figures are asked for again once its events settle
      if (!this.active || this.day !== today() || !this.store.isPeer(e.detail.device_id)) return;
      if (this.chosen() !== HOME && this.chosen() !== e.detail.device_id) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.load(this.day, true), PEER_REFRESH_MS);
    });
  }

  /** The device shown (its id), or HOME. */
  chosen() { return this.picker.value || (this.store.info ? this.store.info.device_id : ""); }
  /** The devices whose figures make up what is shown. */
  chosenIds() { return this.chosen() === HOME ? this.store.deviceIds() : [this.chosen()]; }

  renderPicker() {
    const ids = this.store.deviceIds(), chosen = this.picker.value;
    const want = ids.length ? [HOME, ...ids] : [];
    const names = want.map((id) => (id === HOME ? "Home (all devices)" : this.store.nameOf(id)));
    if ([...this.picker.options].map((o) => o.textContent).join() !== names.join()) {
      this.picker.replaceChildren(...want.map((id, i) => el("option", { value: id }, names[i])));
      this.picker.value = want.includes(chosen) ? chosen : ids[0] || "";
    }
    document.getElementById("an-device-field").hidden = this.store.peers.size === 0;
  }

  show() {
    this.active = true;
    this.render();
    this.load(this.day);
    const id = this.chosen();
    if (id === HOME) { this.renderHeat(); return; }
    const peer = this.store.isPeer(id);
    this.store.call("get_heatmap", peer ? { device: id } : {}).then((r) => { if (peer) { this.heatmap = r.heatmap; this.renderHeat(); } }, () => {});
    this.snapshot = new Image();
    this.snapshot.onload = () => this.renderHeat();
    this.snapshot.src = `${this.store.pathOf(id, "/snapshot.jpg")}?t=${Date.now()}`;
  }
  hide() { this.active = false; clearTimeout(this.timer); }

  async load(day, quiet = false) {
    this.day = day; this.dayInput.value = day;
    if (day === today()) this.todayWas = day;
    if (!quiet) this.status.textContent = "Loading…";
    this.render();
    const ids = this.chosenIds();
    const got = await Promise.allSettled(ids.map((id) => this.store.call("get_analytics", this.store.isPeer(id) ? { day, device: id } : { day })));
    if (this.day !== day) return;
    const failed = ids.filter((id, i) => got[i].status === "rejected").map((id) => this.store.nameOf(id));
    this.status.textContent = failed.length === ids.length ? `Could not load: ${got[0].reason.message}`
      : `${day === today() ? "Today, updating live." : ""}${failed.length ? ` Not reachable now: ${failed.join(", ")}.` : ""}`;
    this.render();
  }

  /** The day's figures of what is chosen (summed for Home; null while none has arrived). */
  figures() {
    const of = (id) => (this.store.isPeer(id) ? this.store.peerAnalytics.get(`${id}|${this.day}`) : this.store.analytics.get(this.day));
    if (this.chosen() !== HOME) return of(this.chosen()) || null;
    const parts = this.store.deviceIds().map((id) => ({ name: this.store.nameOf(id), a: of(id) })).filter((x) => x.a);
    return parts.length ? sumAnalytics(this.day, parts) : null;
  }

  render() {
    const a = this.figures();
    const put = (id, node) => document.getElementById(id).replaceChildren(node);
    if (!a) { for (const id of ["an-posture", "an-zones", "an-activity", "an-events"]) put(id, el("p", { class: "muted" }, "Loading…")); return; }
    put("an-posture", barChart("posture", Object.entries(a.posture_minutes).sort((x, y) => y[1] - x[1])
      .map(([k, v]) => ({ label: POSTURE_LABEL[k] || k, value: v, text: `${num(v, v < 10 ? 2 : 1)} min` }))));
    const zones = Object.keys({ ...a.zone_minutes, ...a.zone_visits });
    put("an-zones", barChart("zones", zones.map((z) => ({ label: z, value: a.zone_minutes[z] || 0,
      text: `${num(a.zone_minutes[z] || 0, 1)} min · ${a.zone_visits[z] || 0} visit${a.zone_visits[z] === 1 ? "" : "s"}` }))
      .sort((x, y) => y.value - x.value)));
    const present = Object.values(a.posture_minutes).reduce((s, v) => s + v, 0);
    put("an-activity", el("div", {},
      el("div", { class: "big", "data-figure": "activity" }, `${num(a.activity_minutes, 1)} min`),
      el("p", { class: "muted" }, `active out of ${num(present, 1)} min seen`),
      el("div", { class: "meter", role: "meter", "aria-label": "share of the time seen that the dog was active", "aria-valuemin": 0, "aria-valuemax": 100,
        "aria-valuenow": present ? Math.round(100 * a.activity_minutes / present) : 0 },
      el("i", { style: `width:${present ? Math.min(100, 100 * a.activity_minutes / present) : 0}%` }))));
    put("an-events", barChart("events", Object.entries(a.event_counts).sort((x, y) => y[1] - x[1])
      .map(([k, v]) => ({ label: k.replace(/_/g, " "), value: v, text: String(v) }))));
    this.renderHeat();
  }

  renderHeat() {
    const box = document.getElementById("an-heat");
    if (this.chosen() === HOME) { box.replaceChildren(el("p", { class: "muted" }, "Pick a device to see where the dog spent its time there.")); return; }
    const hm = this.store.isPeer(this.chosen()) ? this.heatmap : this.store.heatmap;
    if (!hm) { box.replaceChildren(el("p", { class: "muted" }, "No heat map yet.")); return; }
    const canvas = el("canvas", { class: "chart", width: 640, height: 360, role: "img", "data-figure": "heatmap",
      "aria-label": `Heat map of the last ${Math.round(hm.window_seconds / 60)} minutes; ${num(hm.total_seconds / 60, 1)} min in total` });
    const img = this.snapshot;
    if (img && img.complete && img.naturalWidth) { canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; }
    const ctx = canvas.getContext("2d");
    if (img && img.complete && img.naturalWidth) { ctx.globalAlpha = 0.6; ctx.drawImage(img, 0, 0); ctx.globalAlpha = 1; }
    else { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); }
    drawHeat(ctx, canvas.width, canvas.height, hm);
    box.replaceChildren(canvas, el("p", { class: "muted" },
      `Last ${Math.round(hm.window_seconds / 60)} minutes (the heat map is a rolling window, not per day): ${num(hm.total_seconds / 60, 1)} min seen.`));
  }
}
