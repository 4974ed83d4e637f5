// Timeline screen: events newest first, by day and type, with thumbnails (snapshot thumbs, clip posters)
// and a tap to open the snapshot or the clip. Groups (the filter) and each event's label come from the
// device (store.catalogue); this module adds only what an event's data says. History comes from
// get_events in seq windows walked backwards from the newest; live events are inserted by seq, so a
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
    this.dayInput = document.getElementById("tl-day");
    this.day = today();
    this.dayInput.value = this.day;
    this.items = [];            // events shown, newest first
    this.bySeq = new Map();     // seq -> {m, node}
    this.media = new Map();     // event seq -> {snapshot, thumb, clip, poster}
    this.loaded = false; this.loading = null; this.generation = 0;
    this.active = false;

    this.filter.addEventListener("change", () => this.reload());
    this.dayInput.addEventListener("change", () => { this.day = this.dayInput.value || today(); this.reload(); });
    document.getElementById("tl-today").addEventListener("click", () => { this.day = today(); this.dayInput.value = this.day; this.reload(); });
    this.more.addEventListener("click", () => this.loadMore());
    store.addEventListener("event", (e) => this.onLive(e.detail));
    store.addEventListener("gap", (e) => { this.status.textContent = `Events before #${e.detail.data.resumes_from} are no longer stored (${e.detail.data.reason}).`; });
    store.addEventListener("reset", () => { this.loaded = false; if (this.active) this.reload(); });
    store.addEventListener("change", (e) => {
      if (e.detail === "connection" && this.active && !this.loaded) this.reload();
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
    this.items = []; this.bySeq.clear(); this.media.clear();
    this.list.replaceChildren();
    this.loaded = false; this.exhausted = false;
    this.status.textContent = "Loading…";
    this.more.hidden = true;
    try {
      await this.store.ready();
      const [start, end] = dayRange(this.day);
      this.range = [start, end];
      const first = await this.store.call("get_events", { from_ts: start, limit: 1 });
      if (gen !== this.generation) return;
      const f = first.events[0];
      this.isToday = this.day === today();
      if (!f || f.ts >= end) {
        this.floor = 1; this.hi = 1; this.exhausted = true;
        this.loaded = true;
        this.status.textContent = this.isToday ? "Nothing yet today; new events appear here." : "No events on this day.";
        return;
      }
      this.floor = f.seq;
      if (this.isToday) {
        this.hi = Math.max(this.store.lastSeq ?? first.last_seq, first.last_seq) + 1;
      } else {
        const after = await this.store.call("get_events", { from_ts: end, limit: 1 });
        this.hi = after.events.length ? after.events[0].seq : after.last_seq + 1;
      }
      this.window = 64;
      this.loaded = true;
      await this.loadMore(gen);
    } catch (e) {
      if (gen === this.generation) { this.status.textContent = `Could not load events: ${e.message}`; this.loaded = false; }
    }
  }

  /** Walk back from `hi` in seq windows until a page of visible events is found or the day's first seq. */
  async loadMore(gen = this.generation) {
    if (this.loading || this.exhausted) return this.loading;
    this.loading = (async () => {
      let found = 0;
      let W = this.window;
      const types = this.types();
      while (found < PAGE && this.hi > this.floor) {
        const lo = Math.max(this.floor - 1, this.hi - 1 - W);
        const args = { since: lo, limit: LIMIT, to_ts: this.range[1] };
        if (types) args.event_types = types;
        const r = await this.store.call("get_events", args);
        if (gen !== this.generation) return;
        if (r.events.length >= LIMIT && W > 1) { W = Math.max(1, Math.floor(W / 4)); continue; }  // window too full: narrower
        const evs = r.events.filter((m) => m.seq < this.hi);
        for (const m of evs) this.add(m, false);
        found += evs.filter((m) => this.visible(m)).length;
        this.hi = lo + 1;
        if (evs.length < PAGE / 2) W = Math.min(W * 4, 1 << 20);
      }
      this.window = W;
      this.exhausted = this.hi <= this.floor;
      this.more.hidden = this.exhausted;
      this.renderStatus();
    })().catch((e) => { this.status.textContent = `Could not load events: ${e.message}`; })
      .finally(() => { this.loading = null; });
    return this.loading;
  }

  onLive(m) {
    if (!this.loaded || !this.isToday || dayOf(m.ts) !== this.day) return;
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
  }

  add(m, fresh) {
    if (this.bySeq.has(m.seq)) return;           // already shown (replay after reconnect, overlapping page)
    this.link(m);
    const entry = { m, node: null };
    if (m.seq !== undefined) this.bySeq.set(m.seq, entry);  // one without a seq was not stored: shown once, live
    // insert by seq, newest first (usually at one end)
    let i = 0;
    if (this.items.length && m.seq < this.items[0].m.seq) {
      i = this.items.length;
      while (i > 0 && this.items[i - 1].m.seq < m.seq) i--;
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
    const d = m.data || {};
    const targets = [];
    if (m.event_type === "snapshot_saved") {
      const seqs = [m.seq]; if (d.event_seq) seqs.push(d.event_seq);
      for (const s of seqs) { const x = this.media.get(s) || {}; if (!x.snapshot) { x.snapshot = d.url; x.thumb = mediaUrl(d.thumb_media_id); x.captured = d.captured; } this.media.set(s, x); targets.push(s); }
    } else if (m.event_type === "clip_saved") {
      for (const s of [m.seq, ...(d.events || [])]) {
        const x = this.media.get(s) || {};
        x.clip = d.url; x.poster = d.poster_url || null; x.clipDuration = d.duration;
        if (!x.thumb && d.poster_media_id) x.thumb = mediaUrl(d.poster_media_id);
        this.media.set(s, x); targets.push(s);
      }
    }
    for (const s of targets) {
      const entry = this.bySeq.get(s);
      if (entry && entry.node) entry.node.replaceWith(entry.node = this.render(entry.m, false));
    }
  }

  render(m, fresh) {
    const [what, detail] = describe(m, this.labelOf(m.event_type));
    const media = this.media.get(m.seq);
    const group = this.groupOf(m.event_type);
    const thumb = media && media.thumb
      ? el("img", { class: "thumb", src: media.thumb, alt: "", loading: "lazy", decoding: "async" })
      : el("span", { class: `thumb icon ${group}`, "aria-hidden": "true" }, ICON[group] || group.toUpperCase());
    const playable = media && (media.clip || media.snapshot);
    const label = `${what}, ${clock(m.ts, true)}${media && media.clip ? ", has a clip" : media && media.snapshot ? ", has a snapshot" : ""}`;
    const button = el("button", { class: "item", type: "button", "aria-label": label, "aria-disabled": playable ? null : "true",
      onclick: () => this.open(m) },
      thumb,
      el("div", {}, el("div", { class: "what" }, what), el("div", { class: "when" }, `${clock(m.ts, true)} · #${m.seq}`),
        detail ? el("div", { class: "detail" }, detail) : null));
    return el("li", { "data-seq": m.seq, "data-type": m.event_type, class: fresh ? "new" : null }, button);
  }

  open(m) {
    const media = this.media.get(m.seq);
    const [what] = describe(m, this.labelOf(m.event_type));
    if (media && media.clip) this.viewer.clip(media.clip, media.poster, `${what} · ${clock(m.ts, true)}`);
    else if (media && media.snapshot) this.viewer.image(media.snapshot, `${what} · ${clock(m.ts, true)}`);
  }
}
