// The one /ws/ui connection: login (session cookie), commands with replies, reconnect with backoff,
// resume by seq (of this device's events; peers' events relayed by this device pass through to the
// store, which keeps one cursor per peer). The store listens to its events ("connection", "event", "overlay", "telemetry",
// "analytics", "gap", "reset", "status": online/offline changes) and screens listen to the store. Events are handed on once each, in seq order:
// after a reconnect the device replays everything after the last seq seen (?since=), and a seq already
// seen is dropped, so nothing is missing or doubled.

import { learnDeviceClock, wsUrl } from "./util.js";

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 15000;
const COMMAND_TIMEOUT = 20000;

/** A refused command: `code` and `message` of the device's error, `data` all its fields (e.g. `zone`). */
export class CommandFailed extends Error {
  constructor(code, message, data = {}) { super(message); this.code = code; this.data = data; }
}

/** Ask the device whether a login is needed (null when it cannot be reached). */
export async function session() {
  try {
    const r = await fetch("/api/session", { credentials: "same-origin", cache: "no-store" });
    if (!r.ok) return { auth_required: true, authenticated: false };
    return await r.json();
  } catch {
    return null; // device unreachable
  }
}

export async function login(token) {
  const r = await fetch("/api/login", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (r.ok) return null;
  if (r.status === 401 || r.status === 403) return "That token is not right.";
  // the device refuses with {"error": {"code", "message"}}; a proxy in between may answer otherwise
  let reason = `HTTP ${r.status}`;
  try { const body = await r.json(); if (body.error && body.error.message) reason = body.error.message; } catch { /* not JSON */ }
  const wait = Number(r.headers.get("Retry-After"));
  return `Sign-in failed: ${reason}.${r.status === 429 && wait > 0 ? ` Try again in ${wait} s.` : ""}`;
}

export class DeviceConnection extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.online = false;
    this.info = null;          // data of the newest connection message
    this.lastSeq = null;       // newest event seq handed on
    this.nextId = 1;
    this.pending = new Map();  // id -> {resolve, reject, timer}
    this.backoff = BACKOFF_MIN;
    this.retryAt = 0;
    this.timer = null;
    this.needLogin = null;     // set by main: () => Promise<void> that resolves once signed in
    this.stopped = false;
  }

  start() { this.connect(); }

  connect() {
    clearTimeout(this.timer);
    const query = this.lastSeq !== null ? `?since=${this.lastSeq}` : "";
    const ws = new WebSocket(wsUrl(`/ws/ui${query}`));
    this.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (e) => this.receive(e.data);
    ws.onclose = async (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setOnline(false, e.code === 1013 ? "device busy" : "");
      for (const { reject, timer } of this.pending.values()) { clearTimeout(timer); reject(new CommandFailed("offline", "connection lost")); }
      this.pending.clear();
      if (this.stopped) return;
      if (!opened) {
        // A refused upgrade looks the same as a dead device from here: ask whether a login is needed.
        const s = await session();
        if (s && s.auth_required && !s.authenticated && this.needLogin) {
          await this.needLogin();
          this.backoff = BACKOFF_MIN;
          this.connect();
          return;
        }
      }
      this.schedule();
    };
  }

  schedule() {
    const delay = Math.min(BACKOFF_MAX, this.backoff) * (0.8 + Math.random() * 0.4);
    this.backoff = Math.min(BACKOFF_MAX, this.backoff * 2);
    this.retryAt = Date.now() + delay;
    this.dispatchEvent(new CustomEvent("status", { detail: { online: false, retryAt: this.retryAt } }));
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect now (e.g. the tablet woke up or came back online). */
  retryNow() { if (!this.ws) { clearTimeout(this.timer); this.connect(); } }

  setOnline(online, reason = "") {
    if (this.online === online && !reason) return;
    this.online = online;
    if (online) this.backoff = BACKOFF_MIN;
    this.dispatchEvent(new CustomEvent("status", { detail: { online, reason, retryAt: this.retryAt } }));
  }

  receive(raw) {
    let m;
    try { m = JSON.parse(raw); } catch { return; }
    switch (m.type) {
      case "connection":
        this.info = m.data;
        learnDeviceClock(m.ts);
        if (this.lastSeq === null) this.lastSeq = m.data.last_seq; // first connect: live from here on
        else if (m.data.last_seq < this.lastSeq) {
          // the device's event log was started afresh (data dir replaced): its seqs begin again
          this.lastSeq = m.data.last_seq;
          this.emit("reset", m);
        }
        this.setOnline(true);
        this.emit("connection", m);
        break;
      case "event":
        // a peer's event (relayed by this device): its seqs are the peer's own; the store keeps its cursor
        if (this.info && m.device_id && m.device_id !== this.info.device_id) { this.emit("event", m); break; }
        if (m.seq === undefined) { this.emit("event", m); break; } // not stored (device disk full): live only
        if (this.lastSeq !== null && m.seq <= this.lastSeq) return; // replayed twice: already handed on
        this.lastSeq = m.seq;
        this.emit("event", m);
        break;
      case "reply":
      case "error": {
        const id = m.data && m.data.id;
        const waiting = id !== undefined && id !== null ? this.pending.get(id) : undefined;
        if (waiting) {
          this.pending.delete(id);
          clearTimeout(waiting.timer);
          if (m.type === "reply") waiting.resolve(m.data);
          else waiting.reject(new CommandFailed(m.data.code, m.data.message, m.data));
        } else if (m.type === "error") {
          this.emit("device-error", m);
        }
        break;
      }
      default:
        if (m.type === "telemetry" && this.info && m.device_id === this.info.device_id) learnDeviceClock(m.ts);
        this.emit(m.type, m);
    }
  }

  emit(type, message) { this.dispatchEvent(new CustomEvent(type, { detail: message })); }

  /** Send a command; resolves with the reply's data, rejects with CommandFailed(code, message). */
  call(type, args = {}, timeout = COMMAND_TIMEOUT) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new CommandFailed("offline", "not connected to the device"));
        return;
      }
      const id = `c${this.nextId++}`;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CommandFailed("timeout", `${type}: no answer`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...args, type, id }));
    });
  }

  /** Resolves once connected (immediately when already). */
  ready() {
    if (this.online) return Promise.resolve();
    return new Promise((resolve) => {
      const on = (e) => { if (e.detail.online) { this.removeEventListener("status", on); resolve(); } };
      this.addEventListener("status", on);
    });
  }
}
