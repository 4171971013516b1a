// The page script of the @rudderstack/analytics-js tests (sdks_browser.test.mjs bundles it
// with esbuild): window.runVisit(options) loads the SDK's bundled build (its plugins inside,
// none fetched from RudderStack's CDN) with the source config given by getSourceConfig (no
// request to api.rudderstack.com), pointed at Cartwatch, makes the visit's calls in order,
// and resolves to the events the SDK queued for delivery.
import { RudderAnalytics } from '@rudderstack/analytics-js/bundled';

// What api.rudderstack.com would answer: an enabled source with no device-mode destinations
// and no error or metrics reporting.
const SOURCE_CONFIG = {
  source: {
    id: 'cartwatch-e2e',
    name: 'Cartwatch e2e',
    workspaceId: 'cartwatch',
    enabled: true,
    config: { statsCollection: { errors: { enabled: false }, metrics: { enabled: false } } },
    destinations: [],
  },
};

// The bodies the page gave navigator.sendBeacon, for the test (which sees a beacon's request
// but not its Blob body): promises of { url, text }.
window.sentBeacons = [];
if (navigator.sendBeacon) {
  const sendBeacon = navigator.sendBeacon.bind(navigator);
  navigator.sendBeacon = (url, data) => {
    window.sentBeacons.push(new Response(data).text().then((text) => ({ url: String(url), text })));
    return sendBeacon(url, data);
  };
}

// `transport`: 'xhr' (one POST /v1/<type> an event), 'xhr-batch' (POST /v1/batch) or
// 'beacon' (navigator.sendBeacon to /beacon/v1/batch?writeKey=...). With 'xhr' the events go
// out in parallel, and the skew-corrected times the collector orders them by differ by each
// request's latency, so calls a millisecond apart (a script's, not a shopper's) could swap;
// so that the cart ends as the calls say (Order Completed empties it), each call waits until
// the collector has its predecessor (window.cartwatchStored, which the test exposes, polls
// GET /v1/events).
window.runVisit = ({ writeKey, dataPlaneUrl, transport, userId, calls }) =>
  new Promise((resolve, reject) => {
    const rudderanalytics = new RudderAnalytics();
    rudderanalytics.load(writeKey, dataPlaneUrl, {
      getSourceConfig: () => SOURCE_CONFIG,
      useBeacon: transport === 'beacon',
      // Batches leave once they hold all the calls (the beacon queue's default is every 10
      // events or 10 minutes), so the visit goes in one request, in order.
      beaconQueueOptions: { maxItems: calls.length, flushQueueInterval: 10_000 },
      queueOptions:
        transport === 'xhr-batch'
          ? { batch: { enabled: true, maxItems: calls.length, flushInterval: 10_000 } }
          : {},
      logLevel: 'ERROR',
    });
    rudderanalytics.ready(async () => {
      try {
        const events = [];
        // Each callback gets the event as queued for delivery.
        const queued = (e) => events.push(JSON.parse(JSON.stringify(e)));
        for (const call of calls) {
          if (transport === 'xhr' && events.length > 0) {
            await window.cartwatchStored(events[events.length - 1].messageId);
          }
          switch (call.type) {
            case 'identify':
              rudderanalytics.identify(userId, call.traits, {}, queued);
              break;
            case 'page':
              rudderanalytics.page(call.category, call.name, call.properties, {}, queued);
              break;
            case 'track':
              rudderanalytics.track(call.event, call.properties, {}, queued);
              break;
            case 'alias':
              rudderanalytics.alias(userId, call.previousId, {}, queued);
              break;
            case 'group':
              rudderanalytics.group(call.groupId, call.traits, {}, queued);
              break;
            default:
              throw new Error(`no RudderStack call for ${call.type}`);
          }
        }
        resolve(events);
      } catch (err) {
        reject(err);
      }
    });
  });
