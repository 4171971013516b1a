// The page script of the @segment/analytics-next tests (sdks_browser.test.mjs bundles it with
// esbuild): window.runVisit(options) loads analytics.js 2.0 from npm with its settings given
// inline (no request to Segment's CDN) and pointed at Cartwatch, makes the visit's calls in
// order, and resolves to the events the SDK made of them.
import { AnalyticsBrowser } from '@segment/analytics-next';

// `apiHost`: host, port and path prefix of the collector ("127.0.0.1:8080/v1"); `batching`:
// deliveryStrategy batching (one POST /v1/b) instead of one request an event.
window.runVisit = async ({ writeKey, apiHost, batching, userId, calls }) => {
  const segmentio = {
    apiHost,
    protocol: 'http',
    // size: all the calls, so that the batch leaves once the last is made.
    ...(batching
      ? { deliveryStrategy: { strategy: 'batching', config: { size: calls.length, timeout: 10_000 } } }
      : {}),
  };
  const [analytics] = await AnalyticsBrowser.load(
    {
      writeKey,
      // What the CDN would answer for this write key: only the Segment.io destination, and
      // no telemetry to ${apiHost}/m.
      cdnSettings: { integrations: { 'Segment.io': { apiKey: writeKey } }, metrics: { sampleRate: 0 } },
    },
    { integrations: { 'Segment.io': segmentio } },
  );
  const events = [];
  for (const call of calls) {
    let ctx;
    switch (call.type) {
      case 'identify':
        ctx = await analytics.identify(userId, call.traits);
        break;
      case 'page':
        ctx = await analytics.page(call.category, call.name, call.properties);
        break;
      case 'track':
        ctx = await analytics.track(call.event, call.properties);
        break;
      case 'alias':
        ctx = await analytics.alias(userId, call.previousId);
        break;
      case 'group':
        ctx = await analytics.group(call.groupId, call.traits);
        break;
      default:
        throw new Error(`no analytics.js call for ${call.type}`);
    }
    // Default delivery: the promise settles once the event was posted (or failed).
    const failed = ctx.failedDelivery();
    if (failed) throw new Error(`${call.type} was not delivered: ${failed.reason}`);
    events.push(JSON.parse(JSON.stringify(ctx.event)));
  }
  return events;
};
