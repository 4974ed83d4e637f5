// Timeline screen: the events of every device of the home merged, newest first, each labelled with its
// device, by day, type and device, with thumbnails (snapshot thumbs, clip posters) and a tap to open the
// snapshot or the clip. Groups (the filter) and each event's label come from the device
// (store.catalogue); this module adds only what an event's data says. History comes from each device's
// own log (get_events, with `device` for a peer) in seq windows walked backwards from its newest; items are
// keyed by device and seq and placed by seq among one device's events and by time between devices, so a
// reconnect (which replays by seq) or a history page that overlaps live ones never doubles or drops an item.

import { clock, dayOf, dayRange, duration, el, mediaUrl, today } from "./util.js";

const MEDIA_TYPES = ["snapshot_saved", "clip_saved"];   // shown on the item of the event they illustrate
const PAGE = 30;
const LIMIT = 1000;
// words, not emoji: tablets and kiosks often lack an emoji font; other groups show their own name
const ICON = { presence: "DOG", posture: "POSE", audio: "MIC" };

const words = (s) => String(s).replace(/_/g, " ");

/** [title, detail] of an event: the device's label, unless the data says more. */
export function describe(m, label = words(m.event_type)) {
  const d = m.data || {};
  switch (m.event_type) {
    case "dog_detected": return [label, `track #${d.track_id} · ${Math.round((d.confidence || 0) * 100)}%`];
    case "dog_left": return [label, `was here ${duration(d.present_seconds)}`];
    case "sit": case "stand": case "lie":
      return [label, d.previous ? `after ${duration(d.previous_seconds)} ${d.previous}` : `from the ${d.source === "keypoints" ? "keypoints" : "box"}`];
    case "zone_enter": return [`Entered ${d.zone}`, d.roles && d.roles.length ? d.roles.join(", ") : ""];
    case "zone_exit": return [`Left ${d.zone}`, `after ${duration(d.seconds)}${d.reason !== "left" ? " (" + words(d.reason) + ")" : ""}`];
    case "zone_dwell": return [`In ${d.zone} for ${duration(d.seconds)}`, `alert after ${duration(d.dwell_alert_seconds)}`];
    case "fetch_return": return [`Brought back the ${d.toy}`, `carried ${duration(d.carry_seconds)}`];
    case "bark": case "howl": case "whimper": return [label, `${duration(d.duration_s)} · about ${d.barks} barks`];
    case "continuous_barking": return [label, `${duration(d.duration_s)} so far`];
    case "snapshot_saved": return [label, d.event_type === "request" ? "taken on request" : `of ${words(d.event_type)}`];
    case "clip_saved": return [`${label} · ${duration(d.duration)}`, d.label ? `“${d.label}”` : `of ${words(d.event_type)}`];
    case "bookmark_created": return [`${label}${d.label ? " “" + d.label + "”" : ""}`, "a clip follows"];
    case "camera_online": return [label, d.width ? `${d.width}×${d.height} at ${d.fps} fps` : ""];
    case "broker_online": return [label, d.broker || ""];
    case "error": return [`${label}: ${d.component}`, `${d.detail} — ${d.effect}`];
    default: return [label, d.reason || ""];
  }
}

export class TimelineScreen {
  constructor(store, viewer) {
    this.store = store; this.viewer = viewer;
    this.list = document.getElementById("tl-list");
    this.status = document.getElementById("tl-status");
    this.more = document.getElementById("tl-more");
    this.filter = document.getElementById("tl-filter");
    this.device = document.getElementById("tl-device");
    this.dayInput = document.getElementById("tl-day");
    this.day = today();
    this.dayInput.value = this.day;
    this.todayWas = this.day;   // "today" as last reckoned: once the device's clock is known, today may move
    this.items = [];            // events shown, newest first
    this.byKey = new Map();     // "device seq" -> {m, node}
    this.media = new Map();     // "device seq" of an event -> {snapshot, thumb, clip, poster}
    this.sources = [];          // per device: {id, floor, hi, window, exhausted}
    this.loaded = false; this.loading = null; this.generation = 0;
    this.active = false;

    this.filter.addEventListener("change", () => this.reload());
    this.device.addEventListener("change", () => this.reload());
    this.dayInput.addEventListener("change", () => { this.day = this.dayInput.value || today(); this.reload(); });
    document.getElementById("tl-today").addEventListener("click", () => { this.day = today(); this.dayInput.value = this.day; this.reload(); });
    this.more.addEventListener("click", () => this.loadMore());
    store.addEventListener("event", (e) => this.onLive(e.detail));
    store.addEventListener("gap", (e) => { this.status.textContent = `Events before #${e.detail.data.resumes_from} are no longer stored (${e.detail.data.reason}).`; });
    store.addEventListener("reset", () => { this.loaded = false; if (this.active) this.reload(); });
    store.addEventListener("change", (e) => {
      if (e.detail === "connection" && this.day === this.todayWas && this.day !== today()) {
        this.day = this.todayWas = today(); this.dayInput.value = this.day; this.loaded = false;
      }
      if (e.detail === "connection" && this.active && !this.loaded) this.reload();
      if (e.detail === "peers" || e.detail === "connection") this.renderDevices();
      if (e.detail === "catalogue") {   // labels may arrive after the first page: show them on it too
        this.renderFilter();
        for (const x of this.items) if (x.node) x.node.replaceWith(x.node = this.render(x.m, false));
      }
    });
    // scroll back: load the next page when the foot comes into view
    new IntersectionObserver((entries) => {
      if (this.active && entries.some((x) => x.isIntersecting) && !this.more.hidden && !this.loading) this.loadMore();
    }).observe(this.more);
  }

  show() { this.active = true; if (!this.loaded && this.store.online) this.reload(); }
  hide() { this.active = false; }

  /** One option per group the device names (the list is built once the catalogue arrives). */
  renderFilter() {
    const groups = this.store.catalogue.groups;
    this.groups = Object.fromEntries(groups.map((g) => [g.name, g.events]));
    this.filter.replaceChildren(el("option", { value: "" }, "Everything"),
      ...groups.map((g) => el("option", { value: g.name }, g.label)));
  }

  /** The device filter: every device of the home (shown only when there are peers). */
  renderDevices() {
    const ids = this.store.deviceIds(), chosen = this.device.value;
    const have = [...this.device.options].map((o) => `${o.value}=${o.textContent}`).join();
    const want = ["=All devices", ...ids.map((id) => `${id}=${this.store.nameOf(id)}`)].join();
    if (have !== want) {
      this.device.replaceChildren(el("option", { value: "" }, "All devices"),
        ...ids.map((id) => el("option", { value: id }, this.store.nameOf(id))));
      this.device.value = ids.includes(chosen) ? chosen : "";
    }
    document.getElementById("tl-device-field").hidden = this.store.peers.size === 0;
  }

  keyOf(m) { return m.seq === undefined ? null : `${m.device_id} ${m.seq}`; }

  groupOf(type) { const e = this.store.catalogue && this.store.catalogue.events[type]; return e ? e.group : "device"; }
  labelOf(type) { const e = this.store.catalogue && this.store.catalogue.events[type]; return e ? e.label : words(type); }

  types() {
    const g = this.filter.value;
    if (!g) return null;
    return g === "media" ? this.groups.media : [...this.groups[g], ...MEDIA_TYPES]; // media too: thumbnails of what is shown
  }
  /** Shown as an item of its own? A snapshot or clip of another event is shown on that event's item
   *  instead (its thumbnail and tap), except in the media view and for snapshots taken on request. */
  visible(m) {
    const g = this.filter.value;
    if (g === "media") return this.groups.media.includes(m.event_type);
    if (m.event_type === "snapshot_saved" && m.data.event_seq) return false;
    if (m.event_type === "clip_saved" && (m.data.events || []).length) return false;
    return !g || this.groups[g].includes(m.event_type);
  }

  async reload() {
    const gen = ++this.generation;
    this.items = []; this.byKey.clear(); this.media.clear();
    this.list.replaceChildren();
    this.loaded = false; this.exhausted = false; this.sources = [];
    this.status.textContent = "Loading…";
    this.more.hidden = true;
    try {
      await this.store.ready();
      const [start, end] = dayRange(this.day);
      this.range = [start, end];
      this.isToday = this.day === today();
      if (this.isToday) this.todayWas = this.day;
      const ids = this.device.value ? [this.device.value] : this.store.deviceIds();
      const opened = await Promise.all(ids.map((id) => this.openSource(id, start, end).catch((e) => ({ id, error: e }))));
      if (gen !== this.generation) return;
      this.unreachable = opened.filter((x) => x.error).map((x) => this.store.nameOf(x.id));
      this.sources = opened.filter((x) => !x.error);
      if (!this.sources.length && this.unreachable.length) throw opened.find((x) => x.error).error;
      this.loaded = true;
      this.exhausted = this.sources.every((x) => x.exhausted);
      if (this.exhausted) { this.renderStatus(); return; }
      await this.loadMore(gen);
    } catch (e) {
      if (gen === this.generation) { this.status.textContent = `Could not load events: ${e.message}`; this.loaded = false; }
    }
  }

  /** get_events of one device (a peer's through this device). */
  query(id, args) { return this.store.call("get_events", this.store.isPeer(id) ? { ...args, device: id } : args); }

  /** Where a device's events of the day lie: from its first seq of the day up to (not including) `hi`. */
  async openSource(id, start, end) {
    const first = await this.query(id, { from_ts: start, limit: 1 });
    const f = first.events[0];
    if (!f || f.ts >= end) return { id, floor: 1, hi: 1, window: 64, exhausted: true };
    let hi;
    if (this.isToday) hi = Math.max(this.store.cursor(id) ?? first.last_seq, first.last_seq) + 1;
    else {
      const after = await this.query(id, { from_ts: end, limit: 1 });
      hi = after.events.length ? after.events[0].seq : after.last_seq + 1;
    }
    return { id, floor: f.seq, hi, window: 64, exhausted: false };
  }

  /** A page from every device that has more. */
  async loadMore(gen = this.generation) {
    if (this.loading || this.exhausted) return this.loading;
    this.loading = Promise.all(this.sources.filter((x) => !x.exhausted).map((x) => this.walkBack(x, gen)))
      .then(() => {
        if (gen !== this.generation) return;
        this.exhausted = this.sources.every((x) => x.exhausted);
        this.more.hidden = this.exhausted;
        this.renderStatus();
      })
      .catch((e) => { this.status.textContent = `Could not load events: ${e.message}`; })
      .finally(() => { this.loading = null; });
    return this.loading;
  }

  /** Walk one device back from `hi` in seq windows until a page of visible events is found or the day's first seq. */
  async walkBack(src, gen) {
    let found = 0;
    let W = src.window;
    const types = this.types();
    while (found < PAGE && src.hi > src.floor) {
      const lo = Math.max(src.floor - 1, src.hi - 1 - W);
      const args = { since: lo, limit: LIMIT, to_ts: this.range[1] };
      if (types) args.event_types = types;
      const r = await this.query(src.id, args);
      if (gen !== this.generation) return;
      if (r.events.length >= LIMIT && W > 1) { W = Math.max(1, Math.floor(W / 4)); continue; }  // window too full: narrower
      const evs = r.events.filter((m) => m.seq < src.hi).map((m) => (m.device_id ? m : { ...m, device_id: src.id }));
      for (const m of evs) this.add(m, false);
      found += evs.filter((m) => this.visible(m)).length;
      src.hi = lo + 1;
      if (evs.length < PAGE / 2) W = Math.min(W * 4, 1 << 20);
    }
    src.window = W;
    src.exhausted = src.hi <= src.floor;
  }

  onLive(m) {
    if (!this.loaded || !this.isToday || dayOf(m.ts) !== this.day) return;
    if (this.device.value && m.device_id !== this.device.value) return;
    const types = this.types();
    if (types && !types.includes(m.event_type)) return;
    this.add(m, true);
    if (this.visible(m) && !this.loading) this.renderStatus();
  }

  /** How many events are shown and whether that is all of the day (a live event keeps the "whole day" news). */
  renderStatus() {
    const n = this.items.filter((x) => this.visible(x.m)).length;
    this.status.textContent = n === 0 ? (this.isToday ? "Nothing yet today; new events appear here." : "No such events on this day.")
      : this.exhausted ? `${n} events — that is the whole day.` : `${n} events so far.`;
    if (this.unreachable && this.unreachable.length) this.status.textContent += ` Not reachable now: ${this.unreachable.join(", ")}.`;
  }

  add(m, fresh) {
    const key = this.keyOf(m);
    if (key !== null && this.byKey.has(key)) return;  // already shown (replay after reconnect, overlapping page)
    this.link(m);
    const entry = { m, node: null };
    if (key !== null) this.byKey.set(key, entry);  // one without a seq was not stored: shown once, live
    // newest first (usually at one end): by seq within a device, by time between devices
    let i = 0;
    if (this.items.length && above(this.items[0].m, m)) {
      i = this.items.length;
      while (i > 0 && above(m, this.items[i - 1].m)) i--;
    }
    this.items.splice(i, 0, entry);
    if (!this.visible(m)) return;
    entry.node = this.render(m, fresh);
    let next = null;
    for (let j = i + 1; j < this.items.length; j++) if (this.items[j].node) { next = this.items[j].node; break; }
    this.list.insertBefore(entry.node, next);
  }

  /** Remember which media illustrate which event, and refresh items already shown. */
  link(m) {
    const d = m.data || {}, dev = m.device_id, at = (path) => this.store.pathOf(dev, path);
    const targets = [];
    if (m.event_type === "snapshot_saved") {
      const seqs = [m.seq]; if (d.event_seq) seqs.push(d.event_seq);
      for (const seq of seqs) {
        const s = `${dev} ${seq}`, x = this.media.get(s) || {};
        if (!x.snapshot) { x.snapshot = at(d.url); x.thumb = at(mediaUrl(d.thumb_media_id)); x.captured = d.captured; }
        this.media.set(s, x); targets.push(s);
      }
    } else if (m.event_type === "clip_saved") {
      for (const seq of [m.seq, ...(d.events || [])]) {
        const s = `${dev} ${seq}`, x = this.media.get(s) || {};
        x.clip = at(d.url); x.poster = d.poster_url ? at(d.poster_url) : null; x.clipDuration = d.duration;
        if (!x.thumb && d.poster_media_id) x.thumb = at(mediaUrl(d.poster_media_id));
        this.media.set(s, x); targets.push(s);
      }
    }
    for (const s of targets) {
      const entry = this.byKey.get(s);
      if (entry && entry.node) entry.node.replaceWith(entry.node = this.render(entry.m, false));
    }
  }

  render(m, fresh) {
    const [what, detail] = describe(m, this.labelOf(m.event_type));
    const media = this.media.get(this.keyOf(m));
    const group = this.groupOf(m.event_type);
    const where = this.store.nameOf(m.device_id);
    const thumb = media && media.thumb
      ? el("img", { class: "thumb", src: media.thumb, alt: "", loading: "lazy", decoding: "async" })
      : el("span", { class: `thumb icon ${group}`, "aria-hidden": "true" }, ICON[group] || group.toUpperCase());
    const playable = media && (media.clip || media.snapshot);
    const label = `${what}, ${where}, ${clock(m.ts, true)}${media && media.clip ? ", has a clip" : media && media.snapshot ? ", has a snapshot" : ""}`;
    const button = el("button", { class: "item", type: "button", "aria-label": label, "aria-disabled": playable ? null : "true",
      onclick: () => this.open(m) },
      thumb,
      el("div", {}, el("div", { class: "what" }, what), el("div", { class: "when" }, `${clock(m.ts, true)} · `, el("span", { class: "dev" }, where), ` · #${m.seq}`),
        detail ? el("div", { class: "detail" }, detail) : null));
    return el("li", { "data-seq": m.seq, "data-type": m.event_type, "data-device": m.device_id, class: fresh ? "new" : null }, button);
  }

  open(m) {
    const media = this.media.get(this.keyOf(m));
    const [what] = describe(m, this.labelOf(m.event_type));
    if (media && media.clip) this.viewer.clip(media.clip, media.poster, `${what} · ${clock(m.ts, true)}`);
    else if (media && media.snapshot) this.viewer.image(media.snapshot, `${what} · ${clock(m.ts, true)}`);
  }
}

/** Is event `a` shown above (newer than) `b`? One device's events by seq (its own order), others' by time. */
function above(a, b) {
  if (a.device_id === b.device_id) return a.seq > b.seq;
  return a.ts !== b.ts ? a.ts > b.ts : String(a.device_id) > String(b.device_id);
}
