// Device screen: the newest telemetry (fps, per-stage latency, CPU per core, temperature, memory,
// disk, clients, broker), /healthz problems, the software version, and "Sign out everywhere".

import { duration, el, num } from "./util.js";

const HEALTH_POLL_MS = 10000;

function kv(rows) {
  return el("table", { class: "kv" }, el("tbody", {}, rows.filter(Boolean).map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", { class: "num" }, v)))));
}
function meter(label, percent) {
  const p = Math.max(0, Math.min(100, percent || 0));
  return el("div", { class: "field" }, el("span", {}, `${label}: ${num(percent, 0)} %`),
    el("div", { class: "meter", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(p) },
      el("i", { style: `width:${p}%;background:${p > 85 ? "#ff5b5b" : p > 60 ? "#ffb020" : "#3ecf7a"}` })));
}

export class DeviceScreen {
  constructor(store, feed) {
    this.store = store; this.feed = feed;
    this.active = false; this.timer = null;
    store.addEventListener("change", (e) => {
      if (this.active && (e.detail === "telemetry" || e.detail === "connection" || e.detail === "healthz")) this.render();
    });
    document.getElementById("dev-signout-all").addEventListener("click", () => this.signOutEverywhere());
  }

  /** Ends every session on the device (this one too), then reloads: the page asks to sign in again. */
  async signOutEverywhere() {
    const status = document.getElementById("dev-signout-status"), button = document.getElementById("dev-signout-all");
    button.disabled = true;
    status.className = ""; status.textContent = "Signing out everywhere…";
    try {
      const r = await fetch("/api/logout?all=1", { method: "POST", credentials: "same-origin", cache: "no-store" });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error((body.error && body.error.message) || `the device answered ${r.status}`);
      status.textContent = `Signed out everywhere (${body.ended} session${body.ended === 1 ? "" : "s"} ended).`;
      setTimeout(() => location.reload(), 1500);
    } catch (err) {
      status.className = "error-text";
      status.textContent = `Could not sign out everywhere: ${err.message}`;
      button.disabled = false;
    }
  }

  show() {
    this.active = true; this.render();
    this.store.checkHealth(); this.timer = setInterval(() => this.store.checkHealth(), HEALTH_POLL_MS);
  }
  hide() { this.active = false; clearInterval(this.timer); }

  render() {
    const info = this.store.info || {}, t = this.store.telemetry, h = this.store.healthz;
    const put = (id, ...nodes) => document.getElementById(id).replaceChildren(...nodes);
    put("dev-about", kv([["Device", info.device_id || "—"], ["Software", info.software_version || "—"],
      ["Camera source", info.source || "—"], ["Frame", info.frame ? `${info.frame.w}×${info.frame.h}` : "—"],
      ["Pose model", info.pose_model ? info.pose_model.name : "none"], h && h.uptime_s !== undefined ? ["Up for", duration(h.uptime_s)] : null,
      ["Newest event", h && h.last_seq !== undefined ? `#${h.last_seq}` : info.last_seq !== undefined ? `#${info.last_seq}` : "—"]]));
    if (h) {
      put("dev-health", el("p", { "data-health": h.status, class: h.status === "ok" ? "" : "error-text" }, `Status: ${h.status}`),
        h.problems && h.problems.length ? el("ul", { class: "problems" }, h.problems.map((p) => el("li", {}, p))) : el("p", { class: "muted" }, "No problems reported."));
    } else put("dev-health", el("p", { class: "muted" }, "Checking…"));
    if (!t) {
      for (const id of ["dev-pipeline", "dev-system", "dev-conns"]) put(id, el("p", { class: "muted" }, "Waiting for telemetry…"));
      return;
    }
    const p = t.pipeline || {};
    const lat = Object.entries(p.latency_ms || {});
    put("dev-pipeline", kv([["Camera fps", num(p.capture_fps, 1)], ["Source fps", num(p.source_fps, 1)], ["Inference fps", num(p.inference_fps, 1)],
      ["Frames", String(p.frames_processed ?? "—")], ["Dropped", String(p.dropped_frames ?? "—")],
      t.detect ? ["Detector duty", `${num(100 * t.detect.duty_cycle, 0)} %`] : null]),
    el("table", { class: "kv", "aria-label": "Latency per stage" },
      el("thead", {}, el("tr", {}, el("th", {}, "Stage"), el("th", { class: "num" }, "p50 ms"), el("th", { class: "num" }, "p95 ms"))),
      el("tbody", {}, lat.map(([k, v]) => el("tr", { "data-stage": k }, el("th", { scope: "row" }, k), el("td", { class: "num" }, num(v.p50, 1)), el("td", { class: "num" }, num(v.p95, 1)))))));
    put("dev-system", meter("CPU", t.cpu_percent),
      ...(t.cpu_per_core || []).map((c, i) => meter(`Core ${i + 1}`, c)),
      meter("Memory", t.memory_percent),
      t.disk ? meter("Disk used", t.disk.percent_used) : el("p", { class: "muted" }, "Disk: unknown"),
      kv([["Temperature", t.cpu_temperature_c === null ? "not reported" : `${num(t.cpu_temperature_c, 0)} °C`],
        ["Memory free", `${num(t.memory_available_mb, 0)} MB`], ["Device process", `${num(t.process_rss_mb, 0)} MB · ${num(t.process_cpu_percent, 0)} % CPU`],
        t.disk ? ["Disk free", `${num(t.disk.free_mb, 0)} MB`] : null, t.load ? ["Load", t.load.map((x) => num(x, 2)).join(" ")] : null,
        t.battery ? ["Battery", `${num(t.battery.percent, 0)} %${t.battery.plugged ? " (charging)" : ""}`] : null]));
    const m = t.mqtt, live = t.media && t.media.live;
    put("dev-conns", kv([["Tablets (WebSocket)", String(t.websocket.clients)], live ? ["Live viewers", String(live.viewers)] : null,
      ["This tablet's live view", this.feed.ws ? `${num(this.feed.fps, 1)} fps` : "closed"],
      ["Broker", m ? `${m.connected ? "connected" : "offline"}${m.status ? " · " + m.status : ""}` : "not used"],
      m ? ["Outbox pending", String(m.outbox_pending)] : null,
      ["Camera", t.camera.online ? "online" : `offline${t.camera.reason ? ": " + t.camera.reason : ""}`],
      ["Event log", t.store.ok ? "ok" : (t.store.problem || t.store.degraded || "degraded")]]));
  }
}
