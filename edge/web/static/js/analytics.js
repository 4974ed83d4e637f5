// Analytics screen: one day's posture minutes, zone minutes and visits, activity and event counts as
// hand-drawn SVG bar charts (no chart library: a few bars do not earn one), updated as `analytics`
// messages arrive for today; other days come from get_analytics (both kept in store.analytics by day).
// The heat map is drawn over the newest snapshot.

import { drawHeat } from "./draw.js";
import { el, num, svg, today } from "./util.js";

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
    this.active = false;
    this.dayInput.addEventListener("change", () => this.load(this.dayInput.value || today()));
    document.getElementById("an-today").addEventListener("click", () => this.load(today()));
    store.addEventListener("change", (e) => {
      if (!this.active) return;
      if (e.detail === "analytics") this.render();
      if (e.detail === "heatmap") this.renderHeat();
    });
  }

  show() {
    this.active = true;
    this.render();
    this.load(this.day);
    this.store.call("get_heatmap").catch(() => {});
    this.snapshot = new Image();
    this.snapshot.onload = () => this.renderHeat();
    this.snapshot.src = `/snapshot.jpg?t=${Date.now()}`;
  }
  hide() { this.active = false; }

  async load(day) {
    this.day = day; this.dayInput.value = day;
    this.status.textContent = "Loading…";
    this.render();
    try {
      await this.store.call("get_analytics", { day });
      if (this.day !== day) return;
      this.status.textContent = day === today() ? "Today, updating live." : "";
    } catch (e) { this.status.textContent = `Could not load: ${e.message}`; }
    this.render();
  }

  render() {
    const a = this.store.analytics.get(this.day);
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
    const hm = this.store.heatmap;
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
