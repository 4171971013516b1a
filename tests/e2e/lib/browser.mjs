// What every Chromium test shares (sdk-js's tests and tests/e2e's browser SDK tests): where
// Debian's chromium is, the flags for a closed network, and whether to skip. Each test
// launches it with its own playwright-core:
//
//   import { CHROMIUM, CHROMIUM_ARGS, browserSkip } from '.../tests/e2e/lib/browser.mjs';
//   test('...', { skip: browserSkip }, async () => {
//     const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });

import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

// CARTWATCH_REQUIRE_BROWSER (CTest sets it) turns a missing browser into a failure.
if (process.env.CARTWATCH_REQUIRE_BROWSER && !existsSync(CHROMIUM)) {
  throw new Error(`no browser at ${CHROMIUM}: scripts/install-deps.sh --test installs Debian's chromium`);
}

// Flags for a closed network (docs/testing.md): no background connections, no sandbox (root).
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A reason to skip (no binary to test, no browser), or false.
export const browserSkip = !process.env.CARTWATCH_BIN
  ? 'CARTWATCH_BIN is not set (ctest sets it)'
  : !existsSync(CHROMIUM)
    ? `no browser at ${CHROMIUM} (scripts/install-deps.sh --test installs Debian's chromium)`
    : false;
