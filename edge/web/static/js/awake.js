// Keeping the tablet's screen on while Live shows. In a secure context (https, or localhost) the Screen
// Wake Lock API holds it, taken again each time the page becomes visible (the browser drops the lock
// when the page is hidden). Over plain http on a LAN address that API does not exist: the page says what
// it cannot do there and how to fix it (trust the device's certificate, open its https address), and
// plays a silent looping video instead, which Chrome on Android also keeps the screen on for.

export const SECURE = window.isSecureContext;

export class KeepAwake {
  constructor(store) {
    this.store = store;
    this.lock = null;
    this.wanted = false;
    this.note = document.getElementById("awake");
    this.video = document.getElementById("awake-video");
    document.addEventListener("visibilitychange", () => { if (this.wanted && document.visibilityState === "visible") this.hold(); });
    if (!SECURE) this.explain();
  }

  /** Keep the screen on from now until release(). */
  hold() {
    this.wanted = true;
    return SECURE && "wakeLock" in navigator ? this.lockScreen() : this.playVideo();
  }

  release() {
    this.wanted = false;
    if (this.lock) { this.lock.release().catch(() => {}); this.lock = null; }
    if (!SECURE) this.video.pause();
    this.say(null);
  }

  async lockScreen() {
    if (this.lock) return;
    try {
      const lock = await navigator.wakeLock.request("screen");
      if (!this.wanted) { lock.release().catch(() => {}); return; }
      this.lock = lock;
      lock.addEventListener("release", () => { if (this.lock === lock) { this.lock = null; this.say(null); } });
      this.say("Screen kept on while Live shows");
    } catch (e) {
      // refused: the page is hidden (taken again when it shows), or the browser's policy says no
      if (document.visibilityState === "visible") this.say(`The screen may dim: the browser would not keep it on (${e.message})`, true);
    }
  }

  async playVideo() {
    const v = this.video;
    v.muted = true; // autoplay is allowed for muted media only
    try {
      await v.play();
      if (this.wanted) this.say("Screen kept on with a silent video (see “Not a secure connection”)");
    } catch {
      // the browser wants a tap before any video plays: the next tap anywhere starts it
      this.say("Tap anywhere to keep the screen on", true);
      document.addEventListener("pointerdown", () => { if (this.wanted) this.playVideo(); }, { once: true });
    }
  }

  say(text, bad = false) {
    this.note.hidden = !text;
    this.note.textContent = text || "";
    this.note.classList.toggle("error-text", bad);
  }

  /** The plain-http explanation, with the way to fix it: the setup page when the device names one, else its CA certificate. */
  explain() {
    document.getElementById("insecure").hidden = false;
    document.getElementById("insecure-origin").textContent = location.origin;
    const link = () => {
      const setup = this.store.info && this.store.info.setup_url;
      const a = document.getElementById("insecure-fix");
      a.href = setup || "/ca.crt";
      a.textContent = setup ? "Open the setup page" : "Download the device's certificate";
    };
    link();
    this.store.addEventListener("change", (e) => { if (e.detail === "connection") link(); });
  }
}
