// The size ledger of the npm build: wasm bytes by crate and by function
// (twiggy, on the same build with its names kept), and the generated glue's
// bytes by import. Needs twiggy (`cargo install twiggy`) and a built agent
// (npm run build).
//   node tests/bench/ledger.mjs [--top N]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const top = Number(process.argv[process.argv.indexOf('--top') + 1]) || 25;
const wasm = join(root, 'target/wasm-small/wasm32-unknown-unknown/wasm-release/vitalsign_agent.wasm');
const dir = mkdtempSync(join(tmpdir(), 'vitalsign-ledger-'));
const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
run('wasm-bindgen', ['--target', 'bundler', '--keep-debug', '--out-dir', dir, '--out-name', 'agent', wasm]);
const named = join(dir, 'named.wasm');
run(join(root, 'npm/node_modules/.bin/wasm-opt'), ['-Oz', '-g', '--enable-bulk-memory', '--enable-nontrapping-float-to-int',
  '--enable-sign-ext', '--enable-mutable-globals', '--enable-reference-types', '--enable-multivalue', join(dir, 'agent_bg.wasm'), '-o', named]);
const rows = run('twiggy', ['top', '--format', 'csv', '-n', '100000', named]).trim().split('\n').slice(1).map((line) => {
  const m = line.match(/^(.*),(\d+),([\d.]+),[^,]*,[^,]*$/);
  return { name: m[1].replace(/^"|"$/g, '').replace(/""/g, '"'), bytes: Number(m[2]) };
});
const crate = (name) => {
  if (name.includes('"function names"') || name.startsWith('"')) return '(name section, stripped in the build)';
  if (/flt2dec|::fmt|fmt::|Display|Debug|bignum|unicode::printable|escape_debug|count_chars|Formatter|WithDecimalPoint/.test(name)) return 'core::fmt (via serde errors)';
  const m = name.match(/^[<&\s]*([a-z_][a-z0-9_]*)\[[0-9a-f]+\]/);
  if (m) return m[1];
  if (/^(code|data)\[|^import |^export |^type\[|^table|^elem|^global|^memory|^wasm-bindgen/.test(name)) return `(${name.split(/[[ ]/)[0]})`;
  if (/externref shim|__wbindgen|__externref/.test(name)) return 'wasm-bindgen (generated shims)';
  return '(other)';
};
const byCrate = new Map();
for (const r of rows) byCrate.set(crate(r.name), (byCrate.get(crate(r.name)) || 0) + r.bytes);
const total = rows.filter((r) => !crate(r.name).startsWith('(name')).reduce((n, r) => n + r.bytes, 0);
console.log(`wasm by crate (bytes after wasm-opt -Oz, before name minification; ${total} in all):`);
for (const [c, b] of [...byCrate].sort((a, b) => b[1] - a[1])) if (!c.startsWith('(name')) console.log(`  ${String(b).padStart(7)}  ${c}`);
console.log(`\nwasm by function, top ${top}:`);
for (const r of rows.filter((r) => !crate(r.name).startsWith('(name')).slice(0, top)) console.log(`  ${String(r.bytes).padStart(7)}  ${r.name.slice(0, 140)}`);
// The glue: one function per import in wasm-bindgen's output (unminified).
const glue = readFileSync(join(dir, 'agent_bg.js'), 'utf8');
const fns = [...glue.matchAll(/^export function (__wbg_\w+|__wbindgen_\w+)\([\s\S]*?^}/gm)].map((m) => ({ name: m[1].replace(/_[0-9a-f]{16}$/, ''), bytes: m[0].length }));
const importBytes = fns.reduce((n, f) => n + f.bytes, 0);
console.log(`\nglue (wasm-bindgen's agent_bg.js, before terser): ${glue.length} bytes, of which ${fns.length} import functions ${importBytes} bytes; largest:`);
for (const f of fns.sort((a, b) => b.bytes - a.bytes).slice(0, 15)) console.log(`  ${String(f.bytes).padStart(7)}  ${f.name}`);
