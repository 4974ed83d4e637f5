// The tablet app's service worker (served at /sw.js, scope "/", secure contexts only). It keeps the app
// shell — the page, its stylesheet, modules, icons and manifest — in a cache named by the version of the
// static files, so the app opens at once and can say "device unreachable" when the device is. Everything
// else (/api/*, /media/*, /snapshot.jpg, /healthz, the WebSockets) is not touched: camera data and the
// device's answers are never stored here. The server fills in VERSION and SHELL (edge/web/static.py);
// a release that changes any static file changes this script, so the browser installs the new shell and
// the old cache is deleted.

const VERSION = "__SHELL_VERSION__";
const SHELL = ["__SHELL_FILES__"];
const PREFIX = "dogmon-shell-";
const CACHE = PREFIX + VERSION;

self.addEventListener("install", (event) => {
  // "no-cache": revalidate with the device, never take a copy the HTTP cache kept from the old release
  event.waitUntil(caches.open(CACHE)
    .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "no-cache" }))))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith(PREFIX) && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return; // the network's, untouched
  event.respondWith(caches.open(CACHE)
    .then((cache) => cache.match(url.pathname))
    .then((hit) => hit || fetch(request)));
});

// A tap on one of the page's notifications brings the app to the front.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.matchAll({ type: "window" })
    .then((windows) => (windows.length ? windows[0].focus() : self.clients.openWindow("/#live"))));
});
