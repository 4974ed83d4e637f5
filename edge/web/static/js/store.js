// What the page knows about the device, folded from /ws/ui: the state (presence, posture, zones,
// health), recent detection and pose overlays keyed by the capture time of their frame, the zones,
// the heat map, the newest motion overlay, telemetry and today's analytics. Screens read it and listen
// for "change" (detail: what changed).

const OVERLAY_HISTORY = 60; // about 6 s of detector runs at 10 fps: enough for any frame still on screen

export class Store extends EventTarget {
  constructor(conn) {
    super();
    this.conn = conn;
    this.state = {};
    this.frame = { w: 640, h: 480 };
    this.detections = [];   // detection overlays, oldest first (frame_ts ascending)
    this.poses = [];
    this.zones = [];
    this.heatmap = null;
    this.motion = null;
    this.telemetry = null;
    this.analytics = null;
    this.poseModel = null;
    this.health = { camera: null, broker: null, audio: null };
    this.bark = { active: false, since: null, last: null };
    conn.addEventListener("connection", (e) => this.onConnection(e.detail.data));
    conn.addEventListener("event", (e) => this.onEvent(e.detail));
    conn.addEventListener("overlay", (e) => this.onOverlay(e.detail));
    conn.addEventListener("telemetry", (e) => this.onTelemetry(e.detail.data));
    conn.addEventListener("analytics", (e) => { this.analytics = e.detail.data; this.changed("analytics"); });
  }

  changed(what) { this.dispatchEvent(new CustomEvent("change", { detail: what })); }

  onConnection(d) {
    this.frame = d.frame || this.frame;
    this.setState(d.state || {});
    this.zones = d.zones || [];
    this.analytics = d.analytics || null;
    this.poseModel = d.pose_model || null;
    if (d.audio) this.health.audio = d.audio.online;
    this.changed("connection");
    this.changed("zones");
    this.changed("analytics");
  }

  setState(s) {
    this.state = { ...s };
    this.health.camera = s.camera_online ?? this.health.camera;
    if (s.audio_online !== undefined) this.health.audio = s.audio_online;
    if (s.bark) this.bark = s.bark;
    this.changed("state");
  }

  async refreshState() {
    try { const r = await this.conn.call("get_state"); this.setState(r.state); } catch { /* offline: keep */ }
  }

  onEvent(m) {
    const s = this.state, d = m.data || {};
    switch (m.event_type) {
      case "dog_detected": s.presence = true; s.present_since = m.ts; break;
      case "dog_left": s.presence = false; s.present_since = null; s.absent_since = m.ts; s.posture = null; break;
      case "sit": case "stand": case "lie": s.posture = d.posture; s.posture_since = d.since; s.posture_source = d.source; break;
      case "camera_online": this.health.camera = true; this.health.cameraReason = null; break;
      case "camera_offline": this.health.camera = false; this.health.cameraReason = d.reason; break;
      case "broker_online": this.health.broker = true; break;
      case "broker_offline": this.health.broker = false; break;
      case "audio_online": this.health.audio = true; break;
      case "audio_offline": this.health.audio = false; break;
      case "bark": case "howl": case "whimper": this.bark = { active: false, since: null, last: d }; break;
      case "continuous_barking": this.bark = { active: true, since: d.start, last: this.bark.last }; break;
      default: break;
    }
    this.changed("state");
  }

  onOverlay(m) {
    const d = m.data;
    switch (m.overlay_type) {
      case "detection":
        this.frame = d.frame;
        push(this.detections, d);
        this.changed("detection");
        break;
      case "pose": push(this.poses, d); this.changed("pose"); break;
      case "zones":
        this.zones = d.zones;
        this.state.zones_occupied = d.zones.filter((z) => z.occupied).map((z) => z.name);
        this.changed("zones");
        this.changed("state");
        break;
      case "heatmap": this.heatmap = d; this.changed("heatmap"); break;
      case "motion": this.motion = d; this.changed("motion"); break;
      default: break;
    }
  }

  onTelemetry(t) {
    this.telemetry = t;
    if (t.camera) { this.health.camera = t.camera.online; this.health.cameraReason = t.camera.reason; }
    this.health.broker = t.mqtt ? !!t.mqtt.connected : null;
    if (t.audio && typeof t.audio === "object" && "online" in t.audio) {
      this.health.audio = t.audio.online;
      if (typeof t.audio.episode_active === "boolean" && t.audio.episode_active !== this.bark.active) {
        this.bark = { ...this.bark, active: t.audio.episode_active, since: t.audio.episode_active ? (this.bark.since || Date.now() / 1000) : null };
        this.changed("state");
      }
    }
    this.changed("telemetry");
  }

  /** The overlay of the frame captured at `ts`, or the newest older one (null when none is older). */
  static pick(list, ts) {
    if (ts === null || ts === undefined) return list.length ? list[list.length - 1] : null;
    for (let i = list.length - 1; i >= 0; i--) if (list[i].frame_ts <= ts + 0.0005) return list[i];
    return null;
  }
}

function push(list, item) {
  // overlays arrive in capture order; keep the list sorted anyway (cheap: usually appends)
  let i = list.length;
  while (i > 0 && list[i - 1].frame_ts > item.frame_ts) i--;
  list.splice(i, 0, item);
  if (list.length > OVERLAY_HISTORY) list.splice(0, list.length - OVERLAY_HISTORY);
}
