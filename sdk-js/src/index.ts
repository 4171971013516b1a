// Cartwatch storefront tracker: Segment HTTP Tracking API messages (E-commerce Spec v2) sent
// in batches to POST {host}/v1/batch. Delivery: fetch with keepalive while the page lives,
// navigator.sendBeacon when it is hidden or unloaded; undelivered messages wait in a bounded
// localStorage queue that survives reloads and offline periods, retried with exponential
// backoff on network errors, 429 and 5xx (honouring Retry-After), dropped on other 4xx.
// Every public method catches everything: the tracker never throws into the host page.

export interface Options {
  /** The site's write key (sent in the body, so no CORS preflight is needed). */
  writeKey: string;
  /** Collector origin, e.g. "https://collect.shop.example". */
  host: string;
  /** Messages that trigger a send at once. Default 10. */
  batchSize?: number;
  /** Milliseconds a message may wait for its batch. Default 5000. */
  flushInterval?: number;
  /** Messages kept in the queue; beyond it the oldest are dropped. Default 1000. */
  maxQueue?: number;
  /** First retry delay in ms, doubled on each failure up to 5 minutes. Default 1000. */
  retryDelay?: number;
  /** Treat navigator.globalPrivacyControl (Sec-GPC) as an opt-out. Default false. */
  respectGpc?: boolean;
}

export type Properties = Record<string, unknown>;

export interface Product extends Properties {
  product_id?: string;
  sku?: string;
  name?: string;
  category?: string;
  brand?: string;
  price?: number;
  quantity?: number;
  currency?: string;
  url?: string;
  image_url?: string;
}

export interface Tracker {
  page(name?: string, properties?: Properties): void;
  track(event: string, properties?: Properties): void;
  identify(userId: string, traits?: Properties): void;
  productViewed(product: Product): void;
  productAdded(product: Product): void;
  productRemoved(product: Product): void;
  /** The whole cart now (Cartwatch's "Cart Updated": it replaces the cart). */
  cartUpdated(products: Product[], properties?: Properties): void;
  checkoutStarted(properties?: Properties): void;
  orderCompleted(order: Properties): void;
  /** On logout: forgets the userId and starts a new anonymous id. */
  reset(): void;
  /** Stops all tracking in this browser and drops what was not sent yet. */
  optOut(): void;
  optIn(): void;
  /** Sends what is queued now. */
  flush(): Promise<void>;
  readonly anonymousId: string;
}

type Message = Record<string, unknown> & { messageId: string; timestamp: string };

const KEY = 'cw_';
const MAX_BYTES = 60000; // a request's messages: under the 64 KB keepalive/sendBeacon budget
const MAX_MESSAGE = 32000; // the collector's (and Segment's) limit for one message

// The UTF-8 length of a string (no TextEncoder needed). A surrogate pair is 4 bytes; JSON
// text has no lone surrogates (JSON.stringify escapes them).
function utf8(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 128 ? 1 : c < 2048 ? 2 : c >> 10 == 54 ? (i++, 4) : 3;
  }
  return n;
}

export function createTracker(options: Options, w: any = globalThis): Tracker {
  const o = { batchSize: 10, flushInterval: 5000, maxQueue: 1000, retryDelay: 1000, ...options };
  const url = o.host.replace(/\/$/, '') + '/v1/batch';
  let ls: any;
  try {
    ls = w.localStorage; // the getter itself throws where the browser blocks site data
  } catch {}
  const nav = w.navigator || {};
  const mem: Record<string, string> = {};

  const get = (k: string): string | null => {
    try {
      const v = ls.getItem(KEY + k);
      if (v != null) return v;
    } catch {}
    return mem[k] ?? null;
  };
  const set = (k: string, v: string | null) => {
    if (v == null) delete mem[k];
    else mem[k] = v;
    try {
      if (v == null) ls.removeItem(KEY + k);
      else ls.setItem(KEY + k, v);
    } catch {}
  };
  const cookie = (v?: string): string | undefined => {
    try {
      if (v) w.document.cookie = `${KEY}aid=${v};path=/;max-age=31536000;samesite=lax`;
      else return (w.document.cookie.match(/(?:^|; )cw_aid=([^;]+)/) || [])[1];
    } catch {}
  };
  const uuid = (): string => {
    try {
      return w.crypto.randomUUID(); // secure contexts only
    } catch {}
    let b: ArrayLike<number>;
    try {
      b = w.crypto.getRandomValues(new Uint8Array(16));
    } catch {
      b = Array.from({ length: 16 }, () => (Math.random() * 256) | 0);
    }
    const h = Array.from(b, (x, i) => (i == 6 ? (x & 15) | 64 : i == 8 ? (x & 63) | 128 : x).toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  // UTF-8 bytes of a message as it is sent (its JSON and a comma).
  const bytes = (m: Message): number => utf8(JSON.stringify(m)) + 1;
  const newAnonymousId = () => {
    aid = uuid();
    set('aid', aid);
    cookie(aid);
  };

  let aid = cookie() || get('aid') || '';
  if (aid) {
    set('aid', aid);
    cookie(aid);
  } else newAnonymousId();

  const load = (): Message[] => {
    try {
      return JSON.parse(get('q') || '[]');
    } catch {
      return [];
    }
  };
  let queue: Message[] = load();
  let timer: any;
  let attempt = 0;
  let sending: Promise<void> | undefined;
  // What was handed to sendBeacon since the page last sent, and the bytes left of the
  // browser's 64 KB budget for it (shared by visibilitychange and pagehide).
  let beaconed = new Set<string>();
  let budget = 64000;

  const optedOut = () => get('optout') == '1' || (o.respectGpc && nav.globalPrivacyControl === true);

  // Merges with what other tabs stored (by messageId), leaves out `gone` (delivered),
  // keeps the newest maxQueue in time order, and stores it. After an opt-out (maybe in
  // another tab) there is nothing to keep.
  const save = (gone?: Message[]) => {
    const ids = new Set(queue.map((m) => m.messageId));
    const out = new Set(gone?.map((m) => m.messageId));
    queue = optedOut()
      ? []
      : load()
          .filter((m) => !ids.has(m.messageId))
          .concat(queue)
          .filter((m) => !out.has(m.messageId))
          .sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0))
          .slice(-o.maxQueue);
    set('q', queue.length ? JSON.stringify(queue) : null);
  };

  const body = (batch: Message[]) =>
    JSON.stringify({ batch, sentAt: new Date().toISOString(), writeKey: o.writeKey });
  // Consecutive chunks of the queue, each body under MAX_BYTES of UTF-8.
  const chunks = (list = queue): Message[][] => {
    const out: Message[][] = [];
    let cur: Message[] = [];
    let size = 0;
    for (const m of list) {
      const n = bytes(m);
      if (cur.length && size + n > MAX_BYTES) {
        out.push(cur);
        cur = [];
        size = 0;
      }
      cur.push(m);
      size += n;
    }
    if (cur.length) out.push(cur);
    return out;
  };

  const schedule = (ms: number) => {
    w.clearTimeout(timer);
    timer = w.setTimeout(flush, ms);
  };

  const send = async (): Promise<void> => {
    for (const batch of chunks()) {
      if (optedOut()) return;
      let res: any;
      try {
        res = await w.fetch(url, {
          method: 'POST',
          body: body(batch),
          headers: { 'Content-Type': 'text/plain' },
          keepalive: true,
          credentials: 'omit',
        });
      } catch {}
      const status = res ? res.status : 0;
      if (status && status < 500 && status != 429) {
        // 2xx: delivered. Other 4xx: the collector will never take it; retrying cannot help.
        save(batch);
        attempt = 0;
        continue;
      }
      // Retry-After: seconds or an HTTP date; at most an hour.
      const ra = res && res.headers.get('Retry-After');
      let after = Number(ra) * 1000;
      if (isNaN(after)) after = Date.parse(ra) - Date.now();
      const delay =
        after > 0 ? Math.min(after, 36e5) : Math.min(o.retryDelay * 2 ** attempt, 3e5) * (0.5 + Math.random() / 2);
      attempt++;
      schedule(Math.round(delay));
      return;
    }
    if (queue.length) schedule(queue.length >= o.batchSize ? 0 : o.flushInterval);
  };

  // Never rejects: it also runs from timers, where a rejection would reach the page's
  // error reporting.
  const flush = (): Promise<void> => {
    w.clearTimeout(timer);
    timer = undefined;
    beaconed = new Set();
    budget = 64000;
    if (optedOut()) queue = [];
    if (!queue.length) return Promise.resolve();
    if (!sending) sending = send().catch(() => {}).finally(() => (sending = undefined));
    return sending;
  };

  // The page is going away: hand everything to the browser. Messages stay queued until a
  // fetch is answered, so a beacon the collector never got is sent again on the next page
  // (the collector drops the duplicates by messageId).
  // `visibilitychange` and `pagehide` both fire on the way out: what was handed over once
  // is not handed over again, and the browser's 64 KB budget for beacons ends the loop.
  const beacon = () => {
    try {
      save();
      for (const batch of chunks(queue.filter((m) => !beaconed.has(m.messageId)))) {
        const b = body(batch);
        budget -= utf8(b);
        if (budget < 0 || !nav.sendBeacon(url, b)) return;
        for (const m of batch) beaconed.add(m.messageId);
      }
    } catch {}
  };

  const campaign = (search: string) => {
    const c: Record<string, string> = {};
    try {
      new URLSearchParams(search).forEach((v, k) => {
        if (k.startsWith('utm_')) c[k == 'utm_campaign' ? 'name' : k.slice(4)] = v;
      });
    } catch {}
    return c;
  };

  const context = () => {
    const l = w.location || {};
    const d = w.document || {};
    const s = w.screen || {};
    const ctx: Record<string, unknown> = {
      library: { name: 'cartwatch-sdk', version: '0.1.0' },
      page: { url: l.href, path: l.pathname, search: l.search, title: d.title, referrer: d.referrer },
      userAgent: nav.userAgent,
      locale: nav.language,
      screen: { width: s.width, height: s.height },
    };
    const c = campaign(l.search || '');
    if (Object.keys(c).length) ctx.campaign = c;
    return ctx;
  };

  const enqueue = (type: string, fields: Properties) => {
    if (optedOut()) return;
    aid = cookie() || get('aid') || aid; // another tab may have reset it
    const uid = get('uid');
    const m: Message = {
      type,
      messageId: uuid(),
      anonymousId: aid,
      ...(uid ? { userId: uid } : {}),
      timestamp: new Date().toISOString(),
      context: context(),
      ...fields,
    };
    let n: number;
    try {
      n = bytes(m);
    } catch {
      return; // not serialisable (a BigInt, a cycle): dropped, the rest goes on
    }
    if (n > MAX_MESSAGE) return; // the collector would refuse it
    queue.push(m);
    save();
    if (attempt) return; // a retry is scheduled
    if (queue.length >= o.batchSize) flush();
    else if (!timer) schedule(o.flushInterval);
  };

  const safe =
    <A extends unknown[]>(f: (...a: A) => void) =>
    (...a: A) => {
      try {
        f(...a);
      } catch {}
    };
  const track = (event: string, properties: Properties = {}) => enqueue('track', { event, properties });

  try {
    w.addEventListener('pagehide', beacon);
    w.addEventListener('visibilitychange', () => w.document.visibilityState == 'hidden' && beacon());
    w.addEventListener('online', () => {
      attempt = 0;
      flush();
    });
    if (queue.length) schedule(0); // left by an earlier page
  } catch {}

  return {
    page: safe((name?: string, properties: Properties = {}) => {
      const l = w.location || {};
      const d = w.document || {};
      enqueue('page', {
        ...(name ? { name } : {}),
        properties: { url: l.href, path: l.pathname, search: l.search, title: d.title, referrer: d.referrer, ...properties },
      });
    }),
    track: safe(track),
    identify: safe((userId: string, traits: Properties = {}) => {
      if (userId) set('uid', String(userId));
      enqueue('identify', { traits });
    }),
    productViewed: safe((p: Product) => track('Product Viewed', p)),
    productAdded: safe((p: Product) => track('Product Added', p)),
    productRemoved: safe((p: Product) => track('Product Removed', p)),
    cartUpdated: safe((products: Product[], properties: Properties = {}) => track('Cart Updated', { ...properties, products })),
    checkoutStarted: safe((p: Properties = {}) => track('Checkout Started', p)),
    orderCompleted: safe((order: Properties) => track('Order Completed', order)),
    reset: safe(() => {
      set('uid', null);
      newAnonymousId();
    }),
    optOut: safe(() => {
      set('optout', '1');
      queue = [];
      set('q', null);
      w.clearTimeout(timer);
      timer = undefined;
      attempt = 0;
    }),
    optIn: safe(() => set('optout', null)),
    flush: () => {
      try {
        return flush().catch(() => {});
      } catch {
        return Promise.resolve();
      }
    },
    get anonymousId() {
      return aid;
    },
  };
}
