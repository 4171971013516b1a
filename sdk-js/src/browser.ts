// The <script> build: window.cartwatch becomes the tracker. With the async snippet
// (README), calls made before this file loaded were queued on the stub and run now, in order.
import { createTracker, Options, Tracker } from './index';

const w = window as any;
const stub = w.cartwatch || {};
const start = (options: Options): Tracker => {
  const t: any = createTracker(options, w);
  t.load = () => t; // a second copy of the snippet finds it loaded
  w.cartwatch = t;
  for (const [m, a] of stub.q || []) {
    try {
      t[m](...a);
    } catch {}
  }
  return t;
};
try {
  // Loaded twice (two copies of the snippet): the first one is the tracker.
  if (!stub.anonymousId) {
    if (stub.o) start(stub.o);
    else w.cartwatch = { load: start, createTracker };
  }
} catch {}
