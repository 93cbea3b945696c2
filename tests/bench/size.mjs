// What a page downloads for the agent, brotli -q 11, against the reference
// web-vitals (measured here from its npm build) and published figures for
// agents we cannot build here. Both builds: the core package (`vitalsign`,
// npm/dist) and the attribution entry point (`vitalsign/attribution`,
// npm/dist/attribution), each against its web-vitals counterpart.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const br = (file) => brotliCompressSync(readFileSync(file), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const kb = (b) => (b / 1024).toFixed(1) + ' KB';
const wvDist = join(root, 'tests', 'node_modules', 'web-vitals', 'dist');

const measure = (label, dist, reference, budget) => {
  const parts = ['index.js', 'agent.js', 'agent_bg.wasm'].map((f) => [f, br(join(dist, f))]);
  const npmTotal = parts.reduce((n, [, b]) => n + b, 0);
  const scriptTag = npmTotal + br(join(dist, 'vitalsign.js'));
  const webVitals = br(join(wvDist, reference));
  console.log(`${label}, brotli -q 11:`);
  for (const [f, b] of parts) console.log(`  ${f.padEnd(16)} ${String(b).padStart(6)} B`);
  const verdict = budget ? `; budget 14 KB: ${npmTotal <= 14 * 1024 ? 'within' : 'OVER'}, aim 12 KB` : '';
  console.log(`  npm import total   ${String(npmTotal).padStart(6)} B  (${kb(npmTotal)}${verdict})`);
  console.log(`  script-tag total   ${String(scriptTag).padStart(6)} B  (${kb(scriptTag)})`);
  console.log(`  against ${reference} (measured, no transport)  ${kb(webVitals)}  ratio ${(npmTotal / webVitals).toFixed(2)}x`);
  return npmTotal;
};

const core = measure('agent download (vitalsign)', join(root, 'npm', 'dist'), 'web-vitals.js', true);
console.log(`  SpeedCurve lux.js (published 10.4 KB)  ratio ${(core / (10.4 * 1024)).toFixed(2)}x`);
const attributed = measure('agent download with attribution (vitalsign/attribution)', join(root, 'npm', 'dist', 'attribution'), 'web-vitals.attribution.js', false);
console.log(`attribution costs ${attributed - core} B more (${kb(attributed - core)}), only on pages that import vitalsign/attribution`);
