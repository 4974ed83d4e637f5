// The tablet app's entry point: sign-in (once: the device sets a session cookie), the /ws/ui connection
// and the store that folds it, the live feed, the seven screens behind hash routes (#home, #live, #timeline,
// #diary, #zones, #analytics, #device), the offline banner ("device unreachable" when the page, opened from
// the service worker's cache, cannot reach the device), the notifications and the media viewer. Each
// screen gets the store (and the feed or viewer it shows things in) and nothing else. Home lists every device
// of the home: its tab shows once the device has peers, and it is then the first screen of a page opened
// without a route. The service worker (/sw.js, secure contexts only) keeps the app shell so the app opens
// without the device.

import { AnalyticsScreen } from "./analytics.js";
import { DeviceConnection, login, session } from "./conn.js";
import { DeviceScreen } from "./device.js";
import { DiaryScreen } from "./diary.js";
import { HomeScreen } from "./home.js";
import { LiveScreen } from "./live.js";
import { Notifier } from "./notify.js";
import { Store } from "./store.js";
import { TimelineScreen } from "./timeline.js";
import { el } from "./util.js";
import { VideoFeed } from "./video.js";
import { ZonesScreen } from "./zones.js";

const conn = new DeviceConnection();
const store = new Store(conn);
const feed = new VideoFeed();
new Notifier(store);

const viewer = {
  dialog: document.getElementById("viewer"),
  open(title, node) {
    document.getElementById("viewer-h").textContent = title;
    document.getElementById("viewer-body").replaceChildren(node);
    if (!this.dialog.open) this.dialog.showModal();
  },
  image(url, title) { this.open(title, el("img", { src: url, alt: title })); },
  clip(url, poster, title) {
    this.open(title, el("video", { id: "player", src: url, poster: poster || null, controls: true, playsinline: true, preload: "auto", autoplay: true, muted: true }));
  },
};
viewer.dialog.addEventListener("close", () => document.getElementById("viewer-body").replaceChildren());
document.getElementById("viewer-close").addEventListener("click", () => viewer.dialog.close());

const screens = {
  home: new HomeScreen(store, viewer),
  live: new LiveScreen(store, feed, viewer),
  timeline: new TimelineScreen(store, viewer),
  diary: new DiaryScreen(store, viewer),
  zones: new ZonesScreen(store, feed),
  analytics: new AnalyticsScreen(store),
  device: new DeviceScreen(store, feed),
};
let current = null;

function route() {
  const name = location.hash ? location.hash.slice(1) : store.peers.size ? "home" : "live";
  const next = screens[name] ? name : "live";
  if (next === current) return;
  if (current) screens[current].hide();
  for (const key of Object.keys(screens)) {
    document.getElementById(`screen-${key}`).classList.toggle("active", key === next);
    document.getElementById(`tab-${key}`).setAttribute("aria-selected", String(key === next));
  }
  current = next;
  screens[next].show();
}
window.addEventListener("hashchange", route);

// --- connection status ---
const connEl = document.getElementById("conn");
const banner = document.getElementById("offline");
let countdown = null;
conn.addEventListener("status", (e) => {
  const { online, retryAt, reason } = e.detail;
  clearInterval(countdown);
  connEl.classList.toggle("online", online);
  connEl.classList.toggle("offline", !online);
  if (online) {
    connEl.textContent = "online";
    banner.hidden = true;
    return;
  }
  const tick = () => {
    const s = Math.max(0, Math.round((retryAt - Date.now()) / 1000));
    const retry = `Retrying ${s ? "in " + s + " s" : "now"}…`;
    connEl.textContent = conn.info ? "offline" : "unreachable";
    banner.hidden = false;
    // never connected since the page opened: it may have come from the service worker's cache alone
    banner.textContent = conn.info
      ? `The device is offline${reason ? " (" + reason + ")" : ""}. ${retry} What you see may be out of date.`
      : `Device unreachable: this page cannot reach the device at ${location.host}. Is it on, and is this tablet on its network? ${retry}`;
  };
  tick();
  countdown = setInterval(tick, 1000);
});
store.addEventListener("change", (e) => {
  if (e.detail === "peers") {
    document.getElementById("tab-home").hidden = store.peers.size === 0;
    if (!location.hash) route();   // no screen chosen yet: Home once there are peers
  }
  if (e.detail !== "connection") return;
  document.getElementById("title").textContent = `Dog monitor · ${store.info.device_id}`;
  document.title = `${store.info.device_id} · Dog monitor`;
});
window.addEventListener("online", () => conn.retryNow());
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") conn.retryNow(); });

// --- sign-in ---
const loginDialog = document.getElementById("login");
function askToken() {
  return new Promise((resolve) => {
    const form = document.getElementById("login-form");
    const input = document.getElementById("login-token");
    const error = document.getElementById("login-error");
    form.onsubmit = async (e) => {
      e.preventDefault();
      const problem = await login(input.value);
      if (problem) { error.textContent = problem; input.select(); return; }
      input.value = ""; error.textContent = "";
      loginDialog.close();
      resolve();
    };
    loginDialog.addEventListener("cancel", (e) => e.preventDefault()); // nothing works without it
    if (!loginDialog.open) loginDialog.showModal();
    input.focus();
  });
}
conn.needLogin = askToken;

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => { /* the app works without it, only not offline */ });
}

async function start() {
  const s = await session();
  if (s && s.auth_required && !s.authenticated) await askToken();
  route();
  conn.start();
}
start();
