// Small helpers shared by the screens: DOM building, time and number formatting, URLs.

/** Create an element: el("div", {class: "x", onclick: f}, child, "text"). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

/** ws:// or wss:// URL on the page's own host (the device serves both). */
export function wsUrl(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

const pad = (n) => String(n).padStart(2, "0");
export function clock(ts, seconds = false) {
  if (ts === null || ts === undefined) return "—";
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}${seconds ? ":" + pad(d.getSeconds()) : ""}`;
}
export function dayOf(ts) {
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
// The device's clock minus this browser's, in seconds, learned from the stamps of the device's own live messages
// (connection, telemetry): "today" and "5 min ago" are the device's, whether the tablet's clock is wrong or the
// device runs a test clock (DOGMON_TEST_CLOCK).
let deviceOffset = 0;
export function learnDeviceClock(ts) { if (Number.isFinite(ts)) deviceOffset = ts - Date.now() / 1000; }
export function deviceNow() { return Date.now() / 1000 + deviceOffset; }
export function today() { return dayOf(deviceNow()); }
/** Unix seconds of local midnight starting the day "YYYY-MM-DD", and of the next one. */
export function dayRange(day) {
  const [y, m, d] = day.split("-").map(Number);
  return [new Date(y, m - 1, d).getTime() / 1000, new Date(y, m - 1, d + 1).getTime() / 1000];
}
export function since(ts) {
  if (!ts) return "";
  const s = Math.max(0, deviceNow() - ts);
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
export function duration(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
export function num(v, digits = 1) {
  return v === null || v === undefined || Number.isNaN(v) ? "—" : Number(v).toFixed(digits);
}
export function mediaUrl(id) { return `/media/${encodeURIComponent(id)}`; }
