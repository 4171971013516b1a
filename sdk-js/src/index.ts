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

type Message = Record<string, unknown> & { messageId: string };

const KEY = 'cw_';
const MAX_BYTES = 60000; // under the 64 KB keepalive/sendBeacon budget

export function createTracker(options: Options, w: any = globalThis): Tracker {
  const o = { batchSize: 10, flushInterval: 5000, maxQueue: 1000, retryDelay: 1000, ...options };
  const url = o.host.replace(/\/$/, '') + '/v1/batch';
  const ls = w.localStorage;
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
      return w.crypto.randomUUID();
    } catch {
      return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
        const r = (Math.random() * 16) | 0;
        return (c == 'x' ? r : (r & 3) | 8).toString(16);
      });
    }
  };
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

  const optedOut = () => get('optout') == '1' || (o.respectGpc && nav.globalPrivacyControl === true);

  // Merges with what other tabs stored (by messageId), leaves out `gone` (delivered),
  // keeps the newest maxQueue, and stores it.
  const save = (gone?: Message[]) => {
    const ids = new Set(queue.map((m) => m.messageId));
    const out = new Set(gone?.map((m) => m.messageId));
    queue = load()
      .filter((m) => !ids.has(m.messageId))
      .concat(queue)
      .filter((m) => !out.has(m.messageId))
      .slice(-o.maxQueue);
    set('q', JSON.stringify(queue));
  };

  const body = (batch: Message[]) =>
    JSON.stringify({ batch, sentAt: new Date().toISOString(), writeKey: o.writeKey });
  // Consecutive chunks of the queue, each body under MAX_BYTES.
  const chunks = (): Message[][] => {
    const out: Message[][] = [];
    let cur: Message[] = [];
    let size = 0;
    for (const m of queue) {
      const n = JSON.stringify(m).length + 1;
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
      const after = res && Number(res.headers.get('Retry-After'));
      const delay = after > 0 ? after * 1000 : Math.min(o.retryDelay * 2 ** attempt, 3e5) * (0.5 + Math.random() / 2);
      attempt++;
      schedule(delay);
      return;
    }
    if (queue.length) schedule(queue.length >= o.batchSize ? 0 : o.flushInterval);
  };

  const flush = (): Promise<void> => {
    w.clearTimeout(timer);
    timer = undefined;
    if (optedOut() || !queue.length) return Promise.resolve();
    if (!sending) sending = send().finally(() => (sending = undefined));
    return sending;
  };

  // The page is going away: hand everything to the browser. Messages stay queued until a
  // fetch is answered, so a beacon the collector never got is sent again on the next page
  // (the collector drops the duplicates by messageId).
  const beacon = () => {
    try {
      if (optedOut() || !queue.length) return;
      save();
      for (const batch of chunks()) nav.sendBeacon(url, body(batch));
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
