// Builds npm/dist from the agent crate: cargo (wasm32, size profile) ->
// wasm-bindgen (ESM glue) -> wasm-opt -Oz (npm binaryen; Debian's is broken)
// -> the hand-written entry points from src/.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(here, 'dist');
// Built beside dist and swapped in at the end, so a page loading the agent
// during a build never sees half of it.
const out = join(here, 'dist.tmp');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });

run('cargo', ['build', '-p', 'vitalsign-agent', '--target', 'wasm32-unknown-unknown', '--profile', 'wasm-release', '--features', 'bundle']);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const wasm = join(root, 'target/wasm32-unknown-unknown/wasm-release/agent.wasm');
run('wasm-bindgen', ['--target', 'web', '--no-typescript', '--out-dir', out, '--out-name', 'agent', wasm]);
const bg = join(out, 'agent_bg.wasm');
run(join(here, 'node_modules/.bin/wasm-opt'), [
  '-Oz', '--strip-debug', '--strip-producers',
  '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext',
  '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue',
  bg, '-o', bg,
]);
for (const f of readdirSync(join(here, 'src'))) copyFileSync(join(here, 'src', f), join(out, f));
// Minify what pages download (the wasm-bindgen glue, the loader, the
// script-tag starter); the wasm itself went through wasm-opt.
const terser = join(here, 'node_modules/.bin/terser');
for (const [f, module] of [['agent.js', true], ['index.js', true], ['vitalsign.js', false]]) {
  const file = join(out, f);
  run(terser, [file, ...(module ? ['--module'] : []), '--compress', 'passes=2', '--mangle', '-o', file]);
}
rmSync(dist, { recursive: true, force: true });
renameSync(out, dist);
console.log('npm/dist:', readdirSync(dist).join(' '));
