// The built files: the IIFE's size budget, the async snippet's queue, the type declarations.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import vm from 'node:vm';
import zlib from 'node:zlib';

import { FakeWindow, messages, settle } from './fake_window.mjs';

const dist = (f) => new URL(`../dist/${f}`, import.meta.url);
const BUDGET = 3 * 1024;

test(`the <script> build is at most ${BUDGET} bytes minified and gzipped`, (t) => {
  const min = readFileSync(dist('cartwatch.min.js'));
  const gz = zlib.gzipSync(min, { level: 9 }).length;
  t.diagnostic(`dist/cartwatch.min.js: ${min.length} bytes minified, ${gz} bytes gzipped (budget ${BUDGET})`);
  console.log(`cartwatch.min.js: ${gz} bytes min+gzip`);
  assert.ok(gz <= BUDGET, `${gz} bytes gzipped is over the budget of ${BUDGET}`);
});

// The snippet of src/snippet.js, and the minified copy the README shows.
const SNIPPETS = {
  'src/snippet.js': readFileSync(new URL('../src/snippet.js', import.meta.url), 'utf8'),
  'README.md': /```html\n<script>\n([\s\S]*?)<\/script>\n```/.exec(
    readFileSync(new URL('../README.md', import.meta.url), 'utf8'),
  )[1],
};

// A fake window where the snippet can inject its <script>; returns { w, injected, context,
// snippet } with the snippet's placeholders filled in.
function snippetWindow(text, batchSize) {
  const w = new FakeWindow();
  const injected = [];
  w.document.createElement = (tag) => ({ tag });
  w.document.head = { appendChild: (el) => injected.push(el) };
  w.window = w;
  const snippet = text
    .replace(/(["'])YOUR_WRITE_KEY\1/, "'wk'")
    .replace(/(["'])https:\/\/collect[.a-z]*example\1/, `'https://collect.example', batchSize: ${batchSize}`);
  return { w, injected, context: vm.createContext(w), snippet };
}

for (const [where, text] of Object.entries(SNIPPETS)) {
  test(`the async snippet (${where}) queues calls made before the script loads and runs them in order`, async () => {
    const { w, injected, context, snippet } = snippetWindow(text, 3);
    vm.runInContext(snippet, context);
    vm.runInContext("cartwatch.identify('ada', {email: 'ada@example.com'}); cartwatch.productAdded({product_id: 'sock'});", context);
    assert.equal(injected.length, 1);
    assert.match(injected[0].src, /\/cartwatch\.js$/); // served by the collector
    assert.equal(injected[0].async, true);
    assert.equal(w.requests.length, 0); // nothing can be sent before the script is there

    vm.runInContext(readFileSync(dist('cartwatch.min.js'), 'utf8'), context); // it loads
    await settle();
    assert.deepEqual(messages(w).map((m) => m.type + ':' + (m.event ?? m.userId ?? '')), [
      'page:',
      'identify:ada',
      'track:Product Added',
    ]);
    assert.equal(messages(w)[0].context.library.name, 'cartwatch-sdk');
    // window.cartwatch is the tracker now; running the snippet again changes nothing.
    vm.runInContext(snippet, context);
    vm.runInContext("cartwatch.track('A'); cartwatch.track('B'); cartwatch.track('C');", context);
    await settle();
    assert.equal(messages(w).length, 6);
  });
}

test('two copies of the snippet load one script, and loading the script twice keeps one tracker', async () => {
  const { w, injected, context, snippet } = snippetWindow(SNIPPETS['src/snippet.js'], 1);
  vm.runInContext(snippet, context);
  vm.runInContext(snippet, context);
  assert.equal(injected.length, 1);
  const script = readFileSync(dist('cartwatch.min.js'), 'utf8');
  vm.runInContext(script, context);
  const tracker = w.cartwatch;
  assert.match(tracker.anonymousId, /^[0-9a-f-]{36}$/);
  vm.runInContext(script, context); // a second copy arrives
  assert.equal(w.cartwatch, tracker);
  vm.runInContext("cartwatch.track('A')", context);
  for (let i = 0; i < 5; i++) await w.advance(10); // each answer lets the next send go
  // The queued page() of each snippet copy, then A: each once.
  assert.deepEqual(messages(w).map((m) => m.event ?? m.type), ['page', 'page', 'A']);
});

test('the package publishes its types', () => {
  const dts = readFileSync(dist('index.d.ts'), 'utf8');
  for (const name of ['createTracker', 'interface Options', 'interface Tracker', 'orderCompleted', 'optOut']) {
    assert.ok(dts.includes(name), `index.d.ts lacks ${name}`);
  }
});
