// Builds npm/dist from the agent crate: cargo (wasm32, size profile, core
// and alloc rebuilt with panics as plain traps) -> wasm-opt -Oz (npm
// binaryen; Debian's is broken) -> the hand-written JS from src/ (the glue in
// src/agent.js calls the wasm's exports directly: no wasm-bindgen) -> terser.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(here, 'dist');
// Built beside dist and swapped in at the end, so a page loading the agent
// during a build never sees half of it.
const out = join(here, 'dist.tmp');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });

const cargo = ['build', '-p', 'vitalsign-agent', '--target', 'wasm32-unknown-unknown', '--profile', 'wasm-release', '--features', 'bundle'];
// Rebuilding core/alloc with `-Cpanic=immediate-abort` leaves out the panic
// message formatting that every bounds check otherwise pulls in (a third of
// the wasm). Both are unstable flags of the stable compiler, enabled with
// RUSTC_BOOTSTRAP for this one build; it needs the rust-src component
// (scripts/setup.sh adds it). Without it the build still works, larger.
const small = {
  ...process.env,
  RUSTC_BOOTSTRAP: '1',
  RUSTFLAGS: `${process.env.RUSTFLAGS ?? ''} -Zunstable-options -Cpanic=immediate-abort`.trim(),
  CARGO_TARGET_DIR: join(root, 'target', 'wasm-small'),
};
let targetDir = small.CARGO_TARGET_DIR;
try {
  run('cargo', [...cargo, '-Zbuild-std=core,alloc'], { env: small });
} catch {
  console.warn('npm build: the small build failed (is rust-src installed?); building with the standard core');
  run('cargo', cargo);
  targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const wasm = join(targetDir, 'wasm32-unknown-unknown/wasm-release/agent.wasm');
const bg = join(out, 'agent_bg.wasm');
run(join(here, 'node_modules/.bin/wasm-opt'), [
  '-Oz', '--strip-debug', '--strip-producers', '--strip-target-features',
  '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals',
  wasm, '-o', bg,
]);
// One- and two-letter export names instead of `vs_page_key`...: the glue is
// rewritten to match, and any name it uses that the wasm lacks fails here.
const minified = execFileSync(join(here, 'node_modules/.bin/wasm-opt'), [
  '--minify-imports-and-exports', '--enable-bulk-memory', '--enable-nontrapping-float-to-int',
  '--enable-sign-ext', '--enable-mutable-globals', bg, '-o', bg,
], { cwd: root, encoding: 'utf8' });
const names = new Map(JSON.parse(minified.slice(minified.indexOf('{'), minified.lastIndexOf('}') + 1)).exports);
for (const f of readdirSync(join(here, 'src'))) copyFileSync(join(here, 'src', f), join(out, f));
const glue = join(out, 'agent.js');
writeFileSync(glue, readFileSync(glue, 'utf8').replace(/\bw\.(vs_\w+|memory)\b/g, (_, name) => {
  if (!names.has(name)) throw new Error(`npm/src/agent.js uses ${name}, which the wasm does not export`);
  return `w.${names.get(name)}`;
}));
// Minify what pages download (the glue, the loader, the
// script-tag starter); the wasm itself went through wasm-opt.
const terser = join(here, 'node_modules/.bin/terser');
for (const [f, module] of [['agent.js', true], ['index.js', true], ['vitalsign.js', false]]) {
  const file = join(out, f);
  run(terser, [file, ...(module ? ['--module'] : []), '--compress', 'passes=2', '--mangle', '-o', file]);
}
rmSync(dist, { recursive: true, force: true });
renameSync(out, dist);
console.log('npm/dist:', readdirSync(dist).join(' '));
