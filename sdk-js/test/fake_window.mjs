// A window for the tracker in Node: localStorage, cookies, location, navigator.sendBeacon,
// fetch and timers, all recorded and driven by the test (no real time passes).

export class FakeStorage {
  constructor() {
    this.map = new Map();
    this.broken = false; // true: every call throws, as in Safari's private mode of old
  }
  getItem(k) {
    if (this.broken) throw new Error('storage disabled');
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    if (this.broken) throw new Error('storage disabled');
    this.map.set(k, String(v));
  }
  removeItem(k) {
    if (this.broken) throw new Error('storage disabled');
    this.map.delete(k);
  }
}

export function response(status, headers = {}) {
  return { status, ok: status >= 200 && status < 300, headers: { get: (h) => headers[h] ?? null } };
}

export class FakeWindow {
  constructor({ storage = new FakeStorage(), href = 'https://shop.example/p?utm_source=news&utm_campaign=nov' } = {}) {
    this.localStorage = storage;
    const u = new URL(href);
    this.location = { href, pathname: u.pathname, search: u.search };
    this.cookies = new Map();
    this.cookiesBroken = false;
    const win = this;
    this.document = {
      title: 'Shop',
      referrer: 'https://mail.example/',
      visibilityState: 'visible',
      get cookie() {
        if (win.cookiesBroken) throw new Error('cookies disabled');
        return [...win.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      },
      set cookie(text) {
        if (win.cookiesBroken) throw new Error('cookies disabled');
        const [pair] = text.split(';');
        const eq = pair.indexOf('=');
        win.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      },
    };
    this.beacons = [];
    this.navigator = {
      userAgent: 'FakeBrowser/1.0',
      language: 'de-DE',
      sendBeacon: (url, body) => {
        this.beacons.push({ url, body: JSON.parse(body) });
        return true;
      },
    };
    this.screen = { width: 1280, height: 800 };
    this.crypto = globalThis.crypto;
    this.requests = []; // {url, init, body}
    this.answer = () => Promise.resolve(response(200)); // what fetch does next
    this.fetch = (url, init) => {
      this.requests.push({ url, init, body: JSON.parse(init.body) });
      return this.answer(url, init);
    };
    this.now = 0;
    this.timers = [];
    this.nextTimer = 1;
    this.listeners = {};
  }
  setTimeout(f, ms) {
    const id = this.nextTimer++;
    this.timers.push({ id, at: this.now + ms, f });
    return id;
  }
  clearTimeout(id) {
    this.timers = this.timers.filter((t) => t.id !== id);
  }
  // The delay of the one pending timer (undefined when none).
  pendingDelay() {
    return this.timers.length ? this.timers[0].at - this.now : undefined;
  }
  // Runs the timers due within `ms`, and lets the promises they start settle.
  async advance(ms) {
    const until = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (!t || t.at > until) break;
      this.timers.shift();
      this.now = t.at;
      t.f();
      await settle();
    }
    this.now = until;
    await settle();
  }
  addEventListener(type, f) {
    (this.listeners[type] ||= []).push(f);
  }
  dispatch(type) {
    for (const f of this.listeners[type] || []) f();
  }
}

export async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

export const messages = (win) => win.requests.flatMap((r) => r.body.batch);
