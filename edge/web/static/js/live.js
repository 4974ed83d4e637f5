// Live screen: the picture from /ws/video with the overlay of the same frame drawn over it (or of the
// newest older frame), the mismatch in a debug readout, state chips, snapshot and bookmark. The overlay
// canvas names what it shows: data-frame-ts (the picture under it), data-detection-ts and data-pose-ts
// (the overlays drawn; empty when none). While it shows, the screen is kept on (awake.js).

import { drawOverlay, drawPicture } from "./draw.js";
import { KeepAwake } from "./awake.js";
import { Store } from "./store.js";
import { clock, el, since } from "./util.js";

const POSTURE = { sit: "Sitting", stand: "Standing", lie: "Lying down", unknown: "Posture unclear" };
const ACTIVITY = { resting: "Resting", low: "A little active", moderate: "Active", high: "Very active" };

export class LiveScreen {
  constructor(store, feed, viewer) {
    this.store = store; this.feed = feed; this.viewer = viewer;
    this.pic = document.getElementById("live-pic");
    this.ovl = document.getElementById("live-ovl");
    this.wait = document.getElementById("live-wait");
    this.stage = document.getElementById("live-stage");
    this.sync = document.getElementById("sync");
    this.chips = document.getElementById("chips");
    this.toast = document.getElementById("live-toast");
    this.awake = new KeepAwake(store);
    this.showHeat = false; this.showDebug = false;
    this.active = false;
    this.used = null;       // the detection overlay drawn with the current picture
    this.usedPose = null;
    this.mismatchMs = null;

    this.toggle("toggle-heat", (on) => { this.showHeat = on; if (on) this.store.call("get_heatmap").catch(() => {}); this.redraw(); });
    this.toggle("toggle-debug", (on) => { this.showDebug = on; this.redraw(); });
    document.getElementById("btn-snapshot").addEventListener("click", () => this.snapshot());
    document.getElementById("btn-bookmark").addEventListener("click", () => this.bookmark());
    document.getElementById("bookmark-label").addEventListener("keydown", (e) => { if (e.key === "Enter") this.bookmark(); });

    feed.addEventListener("frame", () => { if (this.active) this.onFrame(); });
    feed.addEventListener("lost", () => { if (this.active) this.showWaiting("Live view lost; reconnecting…"); });
    store.addEventListener("change", (e) => {
      if (!this.active) return;
      if (e.detail === "state" || e.detail === "telemetry" || e.detail === "connection") { this.renderChips(); this.updateWaiting(); }
      // an overlay for the frame on screen may arrive after its picture: redraw when it is a better match
      if (e.detail === "detection" || e.detail === "pose") this.maybeBetter();
      if (e.detail === "zones" || (e.detail === "heatmap" && this.showHeat) || (e.detail === "motion" && this.showDebug)) this.redraw();
    });
    new ResizeObserver(() => { if (this.active) { this.paint(); } }).observe(this.stage);
    setInterval(() => { if (this.active) this.renderChips(); }, 5000); // the "for N min" hints age
  }

  toggle(id, onChange) {
    const b = document.getElementById(id);
    b.addEventListener("click", () => {
      const on = b.getAttribute("aria-pressed") !== "true";
      b.setAttribute("aria-pressed", String(on));
      onChange(on);
    });
  }

  show() {
    this.active = true;
    this.feed.acquire("live");
    this.renderChips();
    this.awake.hold();
    if (this.feed.bitmap) this.onFrame(); else this.updateWaiting();
  }

  hide() {
    this.active = false;
    this.feed.release("live");
    this.awake.release();
  }

  showWaiting(text) { this.wait.hidden = false; this.wait.textContent = text; }

  /** Over the picture: the camera's trouble (the last picture stays, marked stale), or waiting for one. */
  updateWaiting() {
    const h = this.store.health;
    if (h.camera === false) this.showWaiting(`Camera offline${h.cameraReason ? ": " + h.cameraReason : ""}. The picture returns when the camera does.`);
    else if (!this.feed.bitmap) this.showWaiting("Waiting for the camera…");
    else this.wait.hidden = true;
  }

  onFrame() {
    this.updateWaiting();
    const f = this.store.frame;
    this.stage.style.aspectRatio = `${this.feed.width || f.w} / ${this.feed.height || f.h}`;
    this.paint();
  }

  paint() {
    drawPicture(this.pic, this.feed.bitmap, this.feed.frameTs);
    this.redraw();
  }

  maybeBetter() {
    const pick = Store.pick(this.store.detections, this.feed.frameTs);
    if (pick !== this.used) this.redraw();
  }

  redraw() {
    const ts = this.feed.frameTs;
    const det = Store.pick(this.store.detections, ts);
    const pose = Store.pick(this.store.poses, ts);
    this.used = det;
    this.mismatchMs = det && ts !== null ? Math.round((ts - det.frame_ts) * 1000) : null;
    // a pose older than a second would draw limbs where the dog no longer is
    this.usedPose = pose && ts !== null && ts - pose.frame_ts < 1 ? pose : null;
    drawOverlay(this.ovl, {
      frame: this.store.frame, detection: det, pose: this.usedPose,
      zones: this.store.zones, heatmap: this.store.heatmap, motion: this.store.motion,
      showHeat: this.showHeat, showDebug: this.showDebug,
    });
    Object.assign(this.ovl.dataset, { frameTs: ts ?? "", detectionTs: det ? det.frame_ts : "", poseTs: this.usedPose ? this.usedPose.frame_ts : "" });
    this.renderSync(det);
  }

  renderSync(det) {
    const ts = this.feed.frameTs;
    this.sync.dataset.mismatchMs = this.mismatchMs ?? "";
    if (!this.showDebug) { this.sync.textContent = ""; return; }
    const parts = [`frame ${ts ? clock(ts, true) + "." + String(Math.round((ts % 1) * 1000)).padStart(3, "0") : "—"}`,
      det ? `overlay Δ ${this.mismatchMs} ms` : "no overlay yet",
      `${this.feed.fps.toFixed(1)} fps`];
    const m = this.store.motion;
    if (m) parts.push(`motion ${(m.fraction * 100).toFixed(1)}% · ${m.detected ? "detector ran" : "skipped"} (${m.reason})`);
    this.sync.textContent = parts.join(" · ");
  }

  renderChips() {
    const s = this.store.state, h = this.store.health, chips = [];
    if (s.presence) chips.push(chip("hot", "presence", `Dog here${s.present_since ? " since " + clock(s.present_since) : ""}`, s.present_since ? `for ${since(s.present_since)}` : ""));
    else chips.push(chip("", "presence", s.absent_since ? `Away since ${clock(s.absent_since)}` : "No dog in view", s.absent_since ? `for ${since(s.absent_since)}` : ""));
    if (s.presence && s.posture) chips.push(chip("", "posture", `${POSTURE[s.posture] || s.posture}${s.posture_since ? " since " + clock(s.posture_since) : ""}`, s.posture_source === "keypoints" ? "from keypoints" : "from the box"));
    const zones = s.zones_occupied || [];
    chips.push(chip(zones.length ? "hot" : "", "zone", zones.length ? `In ${zones.join(", ")}` : "In no zone"));
    if (s.activity) chips.push(chip("", "activity", ACTIVITY[s.activity.level] || s.activity.level));
    const bark = this.store.bark;
    if (h.audio !== null && h.audio !== undefined) chips.push(chip(bark.active ? "bad" : "", "bark", bark.active ? "Barking now" : bark.last ? `Quiet · last bark ${clock(bark.last.start)}` : "Quiet"));
    chips.push(health("camera", "Camera", h.camera));
    chips.push(health("broker", "Broker", h.broker, "not used"));
    chips.push(health("audio", "Microphone", h.audio, "not used"));
    this.chips.replaceChildren(...chips);
  }

  say(text, bad = false) { this.toast.textContent = text; this.toast.className = bad ? "toast error-text" : "toast"; }

  async snapshot() {
    const button = document.getElementById("btn-snapshot");
    button.disabled = true;
    this.say("Taking a snapshot…");
    try {
      const r = await this.store.call("snapshot");
      this.toast.replaceChildren("Snapshot saved. ",
        el("button", { class: "btn", type: "button", onclick: () => this.viewer.image(r.url, `Snapshot ${clock(r.captured, true)}`) }, "View"));
    } catch (e) { this.say(`Snapshot failed: ${e.message}`, true); }
    finally { button.disabled = false; }
  }

  async bookmark() {
    const input = document.getElementById("bookmark-label");
    const button = document.getElementById("btn-bookmark");
    button.disabled = true;
    try {
      const r = await this.store.call("bookmark", { label: input.value });
      input.value = "";
      this.say(`Bookmarked${r.label ? " “" + r.label + "”" : ""}; the clip appears in the timeline when it is saved.`);
    } catch (e) { this.say(`Bookmark failed: ${e.message}`, true); }
    finally { button.disabled = false; }
  }
}

function chip(kind, name, text, title = "") {
  return el("span", { class: `chip ${kind}`, "data-chip": name, title: title || null }, text, title ? el("span", { class: "muted" }, ` (${title})`) : null);
}

function health(name, label, ok, unknown = "unknown") {
  if (ok === null || ok === undefined) return chip("", name, `${label}: ${unknown}`);
  return chip(ok ? "good" : "bad", name, `${label}: ${ok ? "OK" : "offline"}`);
}
