// What the page knows about the device, and the one place that writes it. Screens read the fields below,
// render when the store says "change" (detail: what changed) and send commands through store.call(),
// which folds the reply before handing it back. No screen writes these fields.
//
//   info        the newest `connection` message's data (device id, version, source, frame …)
//   online      connected to /ws/ui now
//   state       the device's state: presence, present_since, absent_since, posture…, zones_occupied,
//               activity (get_state's `state`, kept current by events between polls)
//   health      {camera, cameraReason, broker, audio}: true/false, null while unknown
//   bark        {active, since, last}
//   zones       the stored zones with occupancy          frame    {w, h} of the source
//   detections  detection overlays, oldest first         poses    pose overlays, oldest first
//   heatmap, motion, telemetry, poseModel               the newest of each
//   analytics   Map day -> that day's figures (today's kept live by `analytics` messages)
//   diaries     Map day -> that day's diary (get_diary replies; the Diary screen asks again as events arrive)
//   catalogue   event groups and labels for people, from GET /api/protocol/events
//   healthz     the newest GET /healthz answer (checkHealth())
//   peers       Map device_id -> the newest record of each other device of the home (get_peers, `peers`
//               messages; its `state` kept current by that peer's events in between)
//   lastDog     Map device_id -> ts of that device's newest dog_detected
//   peerAnalytics  Map "device|day" -> a peer's figures of that day (get_analytics with `device`)
// Besides "change", the store hands on "event" (each event once, in seq order per device), "gap" and "reset".
//
// Events of every device arrive on the one /ws/ui (a peer's are relayed by this device, with the peer's
// device_id and its own seqs). This device's are resumed by the connection (?since=); for each peer the
// store keeps a cursor (newest seq handed on; on first sight the peer's newest stored seq) and, on every
// (re)connection and when a peer comes back online, asks get_events with `device` from that cursor. Live
// events of a peer that arrive while its resume runs wait until it is done, and a seq already handed on is
// dropped (the seqs seen are remembered, not only the cursor: a live event relayed over the broker may come
// after a newer one that came by a command reply): nothing is missing or doubled for any device.
//
// The state rule shared with edge/core/state.py (DeviceState.apply) and the features that set state keys:
// an event sets the keys it is about (dog_detected: presence, present_since; dog_left: presence false,
// present_since null, absent_since = its ts; sit/stand/lie: posture, posture_since, posture_source;
// camera_online/offline: camera_online), and a state from the device (connection, the get_state poll) is
// newer than every event before it, so its keys replace ours while keys it lacks are kept. A poll merges:
// it never erases what events taught.

import { peerState } from "./peers.js";
import { deviceNow } from "./util.js";

const OVERLAY_HISTORY = 60; // about 6 s of detector runs at 10 fps: enough for any frame still on screen
const STATE_POLL_MS = 5000;
const RESUME_PAGE = 500;
const SEEN_PER_PEER = 4096;

export class Store extends EventTarget {
  constructor(conn) {
    super();
    this.conn = conn;
    this.info = null;
    this.online = false;
    this.state = {};
    this.frame = { w: 640, h: 480 };
    this.detections = [];
    this.poses = [];
    this.zones = [];
    this.heatmap = null;
    this.motion = null;
    this.telemetry = null;
    this.analytics = new Map();
    this.diaries = new Map();
    this.poseModel = null;
    this.health = { camera: null, cameraReason: null, broker: null, audio: null };
    this.bark = { active: false, since: null, last: null };
    this.catalogue = null;
    this.healthz = null;
    this.peers = new Map();
    this.lastDog = new Map();
    this.peerAnalytics = new Map();
    this.cursors = new Map();   // peer device_id -> newest seq handed on
    this.resuming = new Map();  // peer device_id -> its live events held back while its resume runs
    this.seen = new Map();      // peer device_id -> Set of the seqs handed on (the newest SEEN_PER_PEER)
    conn.addEventListener("status", (e) => { if (e.detail.online !== this.online) { this.online = e.detail.online; this.changed("online"); } });
    conn.addEventListener("connection", (e) => this.onConnection(e.detail.data));
    conn.addEventListener("event", (e) => this.receiveEvent(e.detail));
    conn.addEventListener("peers", (e) => this.setPeers(e.detail.data.peers));
    conn.addEventListener("overlay", (e) => this.onOverlay(e.detail));
    conn.addEventListener("telemetry", (e) => this.onTelemetry(e.detail.data));
    conn.addEventListener("analytics", (e) => this.setAnalytics(e.detail.data));
    conn.addEventListener("gap", (e) => this.hand("gap", e.detail));
    conn.addEventListener("reset", (e) => this.hand("reset", e.detail));
    setInterval(() => { if (this.online) this.call("get_state").catch(() => {}); }, STATE_POLL_MS);
  }

  changed(what) { this.dispatchEvent(new CustomEvent("change", { detail: what })); }
  hand(type, message) { this.dispatchEvent(new CustomEvent(type, { detail: message })); }

  /** Newest event seq handed on (null before the first connection). */
  get lastSeq() { return this.conn.lastSeq; }
  /** Resolves once connected. */
  ready() { return this.conn.ready(); }

  /** Is `id` another device of the home (its events, state and commands go through this device)? */
  isPeer(id) { return !!id && !!this.info && id !== this.info.device_id; }
  nameOf(id) {
    if (this.isPeer(id)) { const p = this.peers.get(id); return (p && p.name) || id; }
    return (this.info && this.info.name) || id;
  }
  /** This device first, then the peers. */
  deviceIds() { return this.info ? [this.info.device_id, ...this.peers.keys()] : []; }
  /** Newest seq handed on of a device's events (null while none). */
  cursor(id) { return this.isPeer(id) ? this.cursors.get(id) ?? null : this.lastSeq; }
  /** A path of the device that stored something ("/media/…", "/snapshot.jpg"), as this page reaches it. */
  pathOf(id, path) { return this.isPeer(id) && path && path.startsWith("/") ? `/peer/${encodeURIComponent(id)}${path}` : path; }

  /** Send a command (to a peer when args.device names one); a reply that tells something about this
   *  device is folded in before it is returned. */
  async call(type, args = {}) {
    const r = await this.conn.call(type, args);
    if (this.isPeer(args.device)) {
      if (type === "get_analytics") { this.peerAnalytics.set(`${args.device}|${r.analytics.day}`, r.analytics); this.changed("analytics"); }
      return r;
    }
    switch (type) {
      case "get_state": this.mergeState(r.state); break;
      case "get_zones": this.setZones(r.zones); break;
      case "set_zones": // the zones overlay that follows brings occupancy; until then keep what is known
        this.setZones(r.zones.map((z) => ({ occupied: false, since: null, ...this.zones.find((l) => l.name === z.name), ...z })));
        break;
      case "get_heatmap": this.heatmap = r.heatmap; this.changed("heatmap"); break;
      case "get_analytics": this.setAnalytics(r.analytics); break;
      case "get_diary": this.diaries.set(r.diary.day, r.diary); this.changed("diary"); break;
      case "get_peers": this.setPeers(r.peers); break;
      default: break;
    }
    return r;
  }

  /** Fetch /healthz now; the answer (or why there is none) lands in `healthz`. */
  async checkHealth() {
    try {
      const r = await fetch("/healthz", { credentials: "same-origin", cache: "no-store" });
      this.healthz = await r.json();
    } catch (e) { this.healthz = { status: "unreachable", problems: [`cannot reach the device: ${e.message}`] }; }
    this.changed("healthz");
  }

  async loadCatalogue() {
    if (this.catalogue) return;
    try {
      const r = await fetch("/api/protocol/events", { cache: "no-store" });
      if (r.ok) { this.catalogue = await r.json(); this.changed("catalogue"); }
    } catch { /* offline: tried again on the next connection */ }
  }

  onConnection(d) {
    this.info = d;
    this.frame = d.frame || this.frame;
    this.setZones(d.zones || []);
    if (d.analytics) this.setAnalytics(d.analytics);
    this.poseModel = d.pose_model || null;
    if (d.audio) this.health.audio = d.audio.online;
    this.mergeState(d.state || {});
    this.loadCatalogue();
    this.changed("connection");
    // a device without peers (or without get_peers) answers with an error: the home is this device alone
    this.call("get_peers").then(() => { for (const id of this.cursors.keys()) this.resumePeer(id); }, () => {});
  }

  setPeers(list) {
    const before = this.peers;
    this.peers = new Map((list || []).filter((p) => p && p.device_id).map((p) => [p.device_id, p]));
    for (const [id, p] of this.peers) {
      const was = before.get(id);
      if (was && was.online === false && p.online && this.cursors.has(id)) this.resumePeer(id); // back: catch up
      if (!was) this.startPeer(id);
    }
    this.changed("peers");
  }

  receiveEvent(m) {
    const id = m.device_id;
    if (!this.isPeer(id)) {
      if (m.event_type === "dog_detected") this.lastDog.set(id, m.ts);
      this.onEvent(m);
      this.hand("event", m);
      return;
    }
    const held = this.resuming.get(id);
    if (held) held.push(m);
    else this.takePeerEvent(m);
  }

  takePeerEvent(m) {
    const id = m.device_id;
    if (m.seq !== undefined) {
      let seen = this.seen.get(id);
      if (!seen) this.seen.set(id, seen = new Set());
      if (seen.has(m.seq)) return; // came live and by resume: handed on once
      seen.add(m.seq);
      if (seen.size > SEEN_PER_PEER) seen.delete(seen.values().next().value);
      this.cursors.set(id, Math.max(this.cursors.get(id) ?? 0, m.seq));
    }
    if (m.event_type === "dog_detected") this.lastDog.set(id, m.ts);
    const p = this.peers.get(id);
    const s = p ? peerState(p.state, m) : null;
    if (s) { this.peers.set(id, { ...p, state: s }); this.changed("peers"); }
    this.hand("event", m);
  }

  /** First sight of a peer: its events are live from its newest stored seq on. */
  async startPeer(id) {
    if (this.cursors.has(id)) return;
    try {
      const r = await this.conn.call("get_events", { device: id, from_ts: deviceNow() + 86400, limit: 1 });
      if (!this.cursors.has(id)) this.cursors.set(id, r.last_seq);
    } catch { /* unreachable now: its first live event sets the cursor */ }
  }

  /** Everything a peer stored after its cursor, then what arrived live meanwhile. */
  async resumePeer(id) {
    if (this.resuming.has(id) || !this.cursors.has(id)) return;
    this.resuming.set(id, []);
    try {
      for (;;) {
        const since = this.cursors.get(id);
        const r = await this.conn.call("get_events", { device: id, since, limit: RESUME_PAGE });
        if (r.last_seq < since) {  // the peer's event log was started afresh: its seqs begin again
          this.cursors.set(id, r.last_seq);
          this.seen.delete(id);
          this.hand("reset", { device_id: id });
          break;
        }
        for (const m of r.events) this.takePeerEvent({ ...m, device_id: m.device_id || id });
        if (r.events.length < RESUME_PAGE) break;
      }
    } catch { /* the peer cannot be reached now: tried again when it is back online or on the next connection */ }
    const held = this.resuming.get(id) || [];
    this.resuming.delete(id);
    for (const m of held) this.takePeerEvent(m);
  }

  mergeState(s) {
    this.state = { ...this.state, ...s };
    if (s.camera_online !== undefined && s.camera_online !== null) this.health.camera = s.camera_online;
    if (s.audio_online !== undefined) this.health.audio = s.audio_online;
    if (s.bark) this.bark = s.bark;
    this.changed("state");
  }

  setZones(zones) {
    this.zones = zones;
    this.state.zones_occupied = zones.filter((z) => z.occupied).map((z) => z.name);
    this.changed("zones");
    this.changed("state");
  }

  setAnalytics(a) { this.analytics.set(a.day, a); this.changed("analytics"); }

  onEvent(m) {
    const s = this.state, d = m.data || {};
    switch (m.event_type) {
      case "dog_detected": s.presence = true; s.present_since = m.ts; break;
      case "dog_left": s.presence = false; s.present_since = null; s.absent_since = m.ts; break;
      case "sit": case "stand": case "lie": s.posture = d.posture; s.posture_since = d.since; s.posture_source = d.source; break;
      case "camera_online": s.camera_online = true; this.health.camera = true; this.health.cameraReason = null; break;
      case "camera_offline": s.camera_online = false; this.health.camera = false; this.health.cameraReason = d.reason; break;
      case "broker_online": this.health.broker = true; break;
      case "broker_offline": this.health.broker = false; break;
      case "audio_online": this.health.audio = true; break;
      case "audio_offline": this.health.audio = false; break;
      case "bark": case "howl": case "whimper": this.bark = { active: false, since: null, last: d }; break;
      case "continuous_barking": this.bark = { active: true, since: d.start, last: this.bark.last }; break;
      default: return;
    }
    this.changed("state");
  }

  onOverlay(m) {
    const d = m.data;
    switch (m.overlay_type) {
      case "detection": this.frame = d.frame; push(this.detections, d); this.changed("detection"); break;
      case "pose": push(this.poses, d); this.changed("pose"); break;
      case "zones": this.setZones(d.zones); break;
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
        this.bark = { ...this.bark, active: t.audio.episode_active, since: t.audio.episode_active ? (this.bark.since || deviceNow()) : null };
      }
    }
    this.changed("telemetry");
    this.changed("state");
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
