// The live picture: /ws/video?meta=1 gives a {"type":"frame","frame_ts",…} text message before each
// JPEG. Open only while a screen shows the picture (the device encodes nothing when nobody watches).
// Frames are decoded off the main thread (createImageBitmap); a decode that finishes after a newer one
// is dropped, so the newest frame always wins.

import { wsUrl } from "./util.js";

export class VideoFeed extends EventTarget {
  /** `path`: this device's picture, or a peer's through this device (/peer/<id>/ws/video). */
  constructor(path = "/ws/video?meta=1") {
    super();
    this.path = path;
    this.users = new Set();
    this.ws = null;
    this.bitmap = null;
    this.frameTs = null;
    this.width = 0;
    this.height = 0;
    this.received = 0;
    this.shown = 0;
    this.backoff = 500;
    this.timer = null;
    this.closing = null;
    this.fps = 0;
    this._times = [];
  }

  acquire(who) {
    this.users.add(who);
    clearTimeout(this.closing); this.closing = null;
    if (!this.ws && !this.timer) this.open();
  }
  release(who) {
    this.users.delete(who);
    if (this.users.size) return;
    // closed a moment later, so going from Live to Zones keeps the same stream
    clearTimeout(this.closing);
    this.closing = setTimeout(() => {
      this.closing = null;
      if (this.users.size) return;
      clearTimeout(this.timer); this.timer = null;
      const ws = this.ws; this.ws = null;
      if (ws) ws.close();
    }, 1000);
  }

  open() {
    this.timer = null;
    const ws = new WebSocket(wsUrl(this.path));
    ws.binaryType = "blob";
    this.ws = ws;
    let meta = null;
    let decodeSeq = 0;
    let shownSeq = 0;
    ws.onopen = () => { this.backoff = 500; };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        try { meta = JSON.parse(e.data); } catch { meta = null; }
        return;
      }
      const frame = meta; meta = null;
      const mySeq = ++decodeSeq;
      this.received++;
      createImageBitmap(e.data).then((bmp) => {
        if (mySeq < shownSeq || this.ws !== ws) { bmp.close(); return; }
        shownSeq = mySeq;
        if (this.bitmap) this.bitmap.close();
        this.bitmap = bmp;
        this.frameTs = frame ? frame.frame_ts : null;
        this.width = bmp.width; this.height = bmp.height;
        this.shown++;
        const now = performance.now();
        this._times.push(now);
        while (this._times.length && now - this._times[0] > 3000) this._times.shift();
        this.fps = this._times.length > 1 ? (this._times.length - 1) / ((now - this._times[0]) / 1000) : 0;
        this.dispatchEvent(new CustomEvent("frame"));
      }).catch(() => {});
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.dispatchEvent(new CustomEvent("lost"));
      if (this.users.size) {
        this.timer = setTimeout(() => this.open(), this.backoff);
        this.backoff = Math.min(15000, this.backoff * 2);
      }
    };
  }
}
