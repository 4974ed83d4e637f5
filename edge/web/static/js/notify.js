// Notifications for the events the owner picks — the dog left, barking for more than N s, a zone's dwell
// alert — shown while the page is open. Permission is asked only when "Notify me" is tapped; the choices
// are kept in localStorage. A notification goes through the service worker's registration where there is
// one (Chrome on Android has no `new Notification`), and each one is listed in the card's log.

import { clock, deviceNow, duration, el } from "./util.js";

const KEY = "dogmon.notify";
const DEFAULTS = { dog_left: true, barking: true, bark_seconds: 30, zone_dwell: true };
const FRESH_S = 120;   // an event replayed after a reconnect that is older than this is not news any more
const LOG_LENGTH = 5;

function load() {
  try { return { ...DEFAULTS, ...JSON.parse(localStorage.getItem(KEY) || "{}") }; } catch { return { ...DEFAULTS }; }
}

export class Notifier {
  constructor(store) {
    this.store = store;
    this.choices = load();
    this.barkNotified = null;   // start of the barking episode already notified
    this.button = document.getElementById("notify-on");
    this.status = document.getElementById("notify-status");
    this.log = document.getElementById("notify-log");
    for (const box of document.querySelectorAll("[data-notify]")) {
      box.checked = !!this.choices[box.dataset.notify];
      box.addEventListener("change", () => { this.choices[box.dataset.notify] = box.checked; this.save(); });
    }
    const seconds = document.getElementById("notify-bark-s");
    seconds.value = this.choices.bark_seconds;
    seconds.addEventListener("change", () => {
      const n = Math.round(Number(seconds.value));
      if (n >= 1 && n <= 3600) { this.choices.bark_seconds = n; this.save(); } else seconds.value = this.choices.bark_seconds;
    });
    this.button.addEventListener("click", () => this.enable());
    store.addEventListener("event", (e) => this.onEvent(e.detail));
    setInterval(() => this.checkBarking(), 1000);
    this.render();
  }

  get supported() { return window.isSecureContext && "Notification" in window; }
  get on() { return this.supported && Notification.permission === "granted"; }

  save() { localStorage.setItem(KEY, JSON.stringify(this.choices)); }

  async enable() {
    if (this.supported) await Notification.requestPermission();
    this.render();
  }

  render() {
    const p = this.supported ? Notification.permission : null;
    this.button.disabled = !this.supported || p === "denied";
    this.status.textContent =
      !window.isSecureContext ? "Notifications need the device's https address (see “Not a secure connection”)."
        : !this.supported ? "This browser cannot show notifications."
          : p === "granted" ? "On: this tablet notifies you of the ticked events while this page is open."
            : p === "denied" ? "Notifications are blocked for this page: allow them in the browser's site settings."
              : "Tick the events, then tap “Notify me”.";
    this.button.hidden = p === "granted";
  }

  onEvent(m) {
    if (!this.on || deviceNow() - m.ts > FRESH_S) return;
    const d = m.data || {};
    switch (m.event_type) {
      case "dog_left":
        if (this.choices.dog_left) this.show("dog_left", "The dog left", `Out of view since ${clock(m.ts, true)}`);
        break;
      case "zone_dwell":
        if (this.choices.zone_dwell) this.show("zone_dwell", `The dog stayed in ${d.zone}`, `${duration(d.seconds)} so far`);
        break;
      case "bark": case "howl": case "whimper": // an episode ended: long enough, and not told while it lasted?
        if (this.choices.barking && d.duration_s >= this.choices.bark_seconds && !this.toldOfBarking(d.start)) {
          this.barkNotified = d.start;
          this.show("barking", `The dog barked for ${duration(d.duration_s)}`, `From ${clock(d.start, true)}`);
        }
        break;
      default: break;
    }
  }

  toldOfBarking(start) { return this.barkNotified !== null && Math.abs(this.barkNotified - start) < 5; }

  /** While an episode goes on: once it has lasted the owner's N seconds, once per episode. */
  checkBarking() {
    const b = this.store.bark;
    if (!this.on || !this.choices.barking || !b.active || !b.since || this.toldOfBarking(b.since)) return;
    const lasted = deviceNow() - b.since;
    if (lasted < this.choices.bark_seconds) return;
    this.barkNotified = b.since;
    this.show("barking", "The dog is barking", `For ${duration(lasted)} now, since ${clock(b.since, true)}`);
  }

  async show(kind, title, body) {
    const options = { body, tag: `dogmon-${kind}`, icon: "/static/icons/icon-192.png", data: { kind } };
    let outcome = "notified";
    try {
      const reg = "serviceWorker" in navigator ? await navigator.serviceWorker.getRegistration() : undefined;
      if (reg) await reg.showNotification(title, options);
      else new Notification(title, options);
    } catch (e) { outcome = `not shown: ${e.message}`; }
    this.log.prepend(el("li", { "data-kind": kind, "data-outcome": outcome === "notified" ? "notified" : "failed" },
      `${clock(deviceNow(), true)} ${title} — ${outcome}`));
    while (this.log.children.length > LOG_LENGTH) this.log.lastElementChild.remove();
  }
}
