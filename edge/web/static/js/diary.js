// Diary screen: the dog's day as episodes a person reads at a glance, each with its snapshot, the day's
// totals, "unusual for her" findings and (when the media feature made them) the day's highlight reel and
// time-lapse. Today is fetched again a moment after each event that changes the story (get_diary builds it
// live on the device); earlier days come from the day picker (the device keeps them once finished).
// Diaries are kept in store.diaries by day.

import { clock, duration, el, num, today } from "./util.js";

const STORY_EVENTS = new Set(["dog_detected", "dog_left", "sit", "stand", "lie", "zone_enter", "zone_exit", "bark",
  "howl", "whimper", "fetch_return", "bookmark_created", "snapshot_saved", "unusual_activity", "highlights_saved",
  "timelapse_saved"]);
const KIND_LABEL = { seen: "In view", away: "Away", resting: "Resting", zone: "Zone", barking: "Barking",
  fetch: "Fetch", bookmark: "Bookmark" };
const POSTURE_LABEL = { sit: "sitting", stand: "standing", lie: "lying" };
const REFRESH_MS = 1500;

export class DiaryScreen {
  constructor(store, viewer) {
    this.store = store;
    this.viewer = viewer;
    this.dayInput = document.getElementById("di-day");
    this.status = document.getElementById("di-status");
    this.day = today(); this.dayInput.value = this.day;
    this.todayWas = this.day;   // "today" as last reckoned: once the device's clock is known, today may move
    this.active = false;
    this.timer = null;
    this.dayInput.addEventListener("change", () => this.load(this.dayInput.value || today()));
    document.getElementById("di-today").addEventListener("click", () => this.load(today()));
    store.addEventListener("event", (e) => {
      if (!this.active || this.day !== today() || !STORY_EVENTS.has(e.detail.event_type)) return;
      clearTimeout(this.timer);   // a burst of events: one request once it settles
      this.timer = setTimeout(() => this.load(this.day, true), REFRESH_MS);
    });
    store.addEventListener("change", (e) => {
      if (e.detail === "connection" && this.day === this.todayWas && this.day !== today()) {
        if (this.active) this.load(today()); else { this.day = this.todayWas = today(); this.dayInput.value = this.day; }
      }
      if (this.active && e.detail === "diary") this.render();
    });
  }

  show() { this.active = true; this.render(); this.load(this.day); }
  hide() { this.active = false; clearTimeout(this.timer); }

  async load(day, quiet = false) {
    this.day = day; this.dayInput.value = day;
    if (day === today()) this.todayWas = day;
    if (!quiet) this.status.textContent = "Loading…";
    this.render();
    try {
      const r = await this.store.call("get_diary", { day });
      if (this.day !== day) return;
      this.status.textContent = r.diary.final ? "" : `Today so far, updating live (as of ${clock(r.diary.computed_at)}).`;
    } catch (e) { this.status.textContent = `Could not load: ${e.message}`; }
    this.render();
  }

  render() {
    const d = this.store.diaries.get(this.day);
    const list = document.getElementById("di-list");
    if (!d) { list.replaceChildren(el("li", { class: "muted" }, "Loading…")); return; }
    list.replaceChildren(...(d.episodes.length ? d.episodes.map((ep) => this.episode(ep))
      : [el("li", { class: "muted" }, "Nothing happened in view this day.")]));
    this.renderMedia(d.media || {});
    this.renderTotals(d.totals);
    this.renderUnusual(d);
  }

  episode(ep) {
    const snap = ep.snapshot && (ep.snapshot.thumb_url || ep.snapshot.url);
    const thumb = snap ? el("img", { class: "thumb", src: snap, alt: `Snapshot: ${ep.text}`, loading: "lazy" })
      : el("span", { class: `thumb icon ${ep.kind}`, "aria-hidden": "true" }, (KIND_LABEL[ep.kind] || ep.kind).toUpperCase());
    const open = snap ? () => this.viewer.image(ep.snapshot.url || snap, ep.text) : null;
    return el("li", { "data-kind": ep.kind, "data-start": ep.start },
      el(open ? "button" : "div", { class: "item", type: open ? "button" : null, onclick: open },
        thumb,
        el("span", {},
          el("span", { class: "when" }, KIND_LABEL[ep.kind] || ep.kind), el("br"),
          el("span", { class: "what" }, ep.text))));
  }

  renderMedia(media) {
    const box = document.getElementById("di-media");
    const links = [["highlights", "Watch the day's highlights"], ["timelapse", "Watch the day's time-lapse"]]
      .filter(([key]) => media[key] && media[key].url)
      .map(([key, label]) => el("button", { class: "btn", type: "button", "data-media": key,
        onclick: () => this.viewer.clip(media[key].url, null, label) }, label));
    box.replaceChildren(...links);
    box.hidden = links.length === 0;
  }

  renderTotals(t) {
    const rows = [["Seen", duration(t.seen_seconds) || "0 s"]];
    for (const [p, s] of Object.entries(t.posture_seconds)) rows.push([`Time ${POSTURE_LABEL[p] || p}`, duration(s)]);
    for (const [z, s] of Object.entries(t.zone_seconds)) rows.push([`In ${z}`, duration(s)]);
    rows.push(["Barking", `${num(t.barking_minutes, 1)} min (${t.barks} barks)`], ["Fetch returns", String(t.fetch_returns)]);
    if (t.bookmarks.length) rows.push(["Bookmarks", t.bookmarks.map((b) => b || "(no label)").join(", ")]);
    document.getElementById("di-totals").replaceChildren(el("table", { class: "kv" },
      ...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "num" }, v)))));
  }

  renderUnusual(d) {
    const box = document.getElementById("di-unusual");
    const learning = d.baseline ? d.baseline.learning_days_left : 0;
    const note = learning > 0
      ? el("p", { class: "muted", id: "di-learning" }, `Still learning her usual days: alerts stay silent for the first week (${learning} more day${learning === 1 ? "" : "s"}).`)
      : el("p", { class: "muted" }, "Compared with the last 4 same weekdays, up to the same hour.");
    const items = (d.unusual || []).map((u) => el("li", {}, `${clock(u.ts)} ${u.text}`));
    box.replaceChildren(items.length ? el("ul", { class: "problems" }, ...items) : el("p", {}, "Nothing unusual."), note);
  }
}
