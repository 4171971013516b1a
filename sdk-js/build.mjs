// Builds dist/: cartwatch.mjs (ES module), cartwatch.min.js (minified IIFE for a <script>
// tag; window.cartwatch) and the type declarations (dist/index.d.ts). Prints the IIFE's
// size, minified and gzipped.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import zlib from 'node:zlib';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const common = { bundle: true, target: 'es2019', logLevel: 'warning', absWorkingDir: here };
await esbuild.build({ ...common, entryPoints: ['src/index.ts'], format: 'esm', outfile: 'dist/cartwatch.mjs' });
await esbuild.build({ ...common, entryPoints: ['src/browser.ts'], format: 'iife', minify: true, outfile: 'dist/cartwatch.min.js' });
execFileSync(process.execPath, [path.join(here, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
  cwd: here,
  stdio: 'inherit',
});
const min = readFileSync(path.join(here, 'dist/cartwatch.min.js'));
console.log(`dist/cartwatch.min.js: ${min.length} bytes minified, ${zlib.gzipSync(min, { level: 9 }).length} bytes gzipped`);
