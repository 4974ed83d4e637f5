// Home screen: every device of the home on one page. At the top, where the dog is ("The dog is in the
// kitchen now · since 14:02": the device that sees it, else the one that saw it last); below, one card per
// device (this one first) with its name, a still from its camera, dog here or away, posture, zone, health,
// and "offline" plainly when the device is not reachable. Stills come from /snapshot.jpg (this device)
// and /peer/<id>/snapshot.jpg (a peer, through this device) and are fetched again every STILL_MS only
// while the screen is shown and the page is visible (document.visibilityState): a tablet left on another
// screen, or with its display off, costs the devices nothing. A peer's card also plays its live picture
// in place of the still (/peer/<id>/ws/video: the tablet never connects to the peer) and asks it for a
// snapshot (the command with `device`, relayed by this device); this device's own "Live" is the Live screen.

import { devices, whereIsTheDog } from "./peers.js";
import { clock, el } from "./util.js";
import { VideoFeed } from "./video.js";

const STILL_MS = 3000;
const POSTURE = { sit: "sitting", stand: "standing", lie: "lying", unknown: "posture unclear" };

export class HomeScreen {
  constructor(store, viewer) {
    this.store = store; this.viewer = viewer;
    this.where = document.getElementById("home-where");
    this.grid = document.getElementById("home-cards");
    this.cards = new Map();   // device id -> {node, img, facts, loading}
    this.active = false; this.timer = null;
    const redraw = new Set(["peers", "state", "connection", "online", "telemetry"]);
    store.addEventListener("change", (e) => { if (this.active && redraw.has(e.detail)) this.render(); });
    store.addEventListener("event", () => { if (this.active) this.render(); });
    document.addEventListener("visibilitychange", () => this.schedule());
  }

  show() { this.active = true; this.render(); this.schedule(); }
  hide() {
    this.active = false; this.schedule();
    for (const [id, c] of this.cards) if (c.live) this.toggleLive(id, c);
  }

  /** A peer's live picture in its card, through this device, until tapped again or the screen is left. */
  toggleLive(id, c) {
    const button = c.node.querySelector("[data-action=live]");
    if (c.live) {
      c.live.feed.release("home"); c.live.canvas.remove(); c.live = null;
      c.img.hidden = false; button.setAttribute("aria-pressed", "false");
      return;
    }
    const canvas = el("canvas", { class: "still live", "data-frames": "0" });
    const feed = new VideoFeed(this.store.pathOf(id, "/ws/video?meta=1"));
    feed.addEventListener("frame", () => {
      if (!feed.bitmap) return;
      canvas.width = feed.bitmap.width; canvas.height = feed.bitmap.height;
      canvas.getContext("2d").drawImage(feed.bitmap, 0, 0);
      canvas.dataset.frameTs = String(feed.frameTs ?? "");
      canvas.dataset.frames = String(feed.shown);
    });
    c.live = { feed, canvas };
    c.img.hidden = true; c.box.append(canvas); button.setAttribute("aria-pressed", "true");
    feed.acquire("home");
  }

  /** Ask a peer for a snapshot (relayed by this device); its snapshot_saved comes back as its event. */
  async snapshot(id, c) {
    c.note.textContent = "Taking a snapshot…";
    try {
      const r = await this.store.call("snapshot", { device: id });
      c.node.dataset.snapshot = r.media_id;
      c.note.textContent = "Snapshot saved";
    } catch (e) { c.note.textContent = `No snapshot: ${e.message}`; }
  }

  /** Refresh stills every STILL_MS while shown and visible; otherwise stop. */
  schedule() {
    const run = this.active && document.visibilityState === "visible";
    if (run && !this.timer) {
      this.refresh();
      this.timer = setInterval(() => this.refresh(), STILL_MS);
    } else if (!run && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  render() {
    const rows = devices(this.store);
    const w = whereIsTheDog(rows);
    this.where.dataset.device = w ? w.device.id : "";
    this.where.dataset.present = w ? String(w.present) : "";
    this.where.textContent = !w ? "No camera has seen the dog yet today."
      : w.present ? `The dog is in the ${w.device.name} now${w.ts ? ` · since ${clock(w.ts)}` : ""}`
        : `The dog was last seen in the ${w.device.name} at ${clock(w.ts)}`;
    const ids = new Set(rows.map((r) => r.id));
    for (const [id, c] of this.cards) if (!ids.has(id)) { c.node.remove(); this.cards.delete(id); }
    rows.forEach((r, i) => {
      let c = this.cards.get(r.id);
      if (!c) {
        const img = el("img", { class: "still", alt: `Camera of ${r.name}`, decoding: "async" });
        c = { img, facts: el("div", { class: "chips" }), title: el("h2", {}), loading: false, live: null };
        c.box = el("button", { class: "still-box", type: "button", "aria-label": `Open the still of ${r.name}`,
          onclick: () => { if (c.img.src && !c.live) this.viewer.image(c.img.src, r.name); } }, img);
        c.note = el("span", { class: "muted", "data-fact": "note", role: "status" });
        const actions = r.self ? [el("a", { class: "btn", href: "#live", "data-action": "live" }, "Live")]
          : [el("button", { class: "btn", type: "button", "data-action": "live", "aria-pressed": "false",
            onclick: () => this.toggleLive(r.id, c) }, "Live"),
          el("button", { class: "btn", type: "button", "data-action": "snapshot",
            onclick: () => this.snapshot(r.id, c) }, "Snapshot")];
        c.node = el("article", { class: "card dev-card", "data-device": r.id },
          c.box, c.title, c.facts, el("div", { class: "actions" }, ...actions, c.note));
        this.cards.set(r.id, c);
        this.load(r, c);
      }
      if (this.grid.children[i] !== c.node) this.grid.insertBefore(c.node, this.grid.children[i] || null);
      this.fill(r, c);
    });
  }

  fill(r, c) {
    const off = r.online === false;
    c.node.dataset.online = r.online === null ? "unknown" : String(r.online);
    c.node.dataset.present = r.present === null ? "unknown" : String(r.present);
    c.node.classList.toggle("offline", off);
    c.title.replaceChildren(r.name, ...(r.self ? [el("span", { class: "muted" }, " · this device")] : []));
    const chip = (cls, text, key) => el("span", { class: `chip ${cls}`, "data-fact": key }, text);
    const facts = [];
    if (off) facts.push(chip("bad", "Offline", "online"));
    else if (r.online === null) facts.push(chip("warn", "Not known (no broker)", "online"));
    const here = r.present && !off;   // an offline device's last word on the dog is not "here now"
    facts.push(here ? chip("hot", `Dog here${r.since ? " since " + clock(r.since) : ""}`, "dog")
      : off && r.lastSeen ? chip("", `Dog last seen here at ${clock(r.lastSeen)}`, "dog")
        : chip("", r.present === false ? "Dog away" : "Dog: not known", "dog"));
    if (here && r.posture) facts.push(chip("", POSTURE[r.posture] || r.posture, "posture"));
    if (here && r.zones.length) facts.push(chip("good", `In ${r.zones.join(", ")}`, "zone"));
    if (!off && r.health) facts.push(chip(r.health === "ok" ? "good" : "warn", r.health === "ok" ? "Healthy" : "Degraded", "health"));
    c.facts.replaceChildren(...facts);
  }

  refresh() {
    for (const r of devices(this.store)) {
      const c = this.cards.get(r.id);
      if (c && r.online !== false) this.load(r, c);   // an offline device keeps its last still
    }
  }

  /** Fetch a new still off screen and show it once it has arrived (no flicker, one request at a time). */
  load(r, c) {
    if (c.loading) return;
    c.loading = true;
    const next = new Image();
    next.onload = () => { c.img.src = next.src; c.img.dataset.loadedAt = String(Date.now()); c.loading = false; };
    next.onerror = () => { c.loading = false; };
    next.src = `${this.store.pathOf(r.id, "/snapshot.jpg")}?t=${Date.now()}`;
  }
}
