// Builds npm/dist from the agent crate (feature `bundle`):
//   cargo (wasm32, size profile, std rebuilt with panics as plain traps)
//   -> wasm-bindgen (the CLI of exactly the version in Cargo.lock, bundler
//      target: the glue is a module of import functions)
//   -> wasm-opt -Oz (npm binaryen; Debian's is broken)
//   -> import, export and module names minified (the glue rewritten to match)
//   -> terser on the glue, the loader (src/index.js) and the script-tag starter.
// Twice: the core package (feature `bundle`) into dist/, and the
// attribution entry point (`vitalsign/attribution`, features `bundle` and
// `attribution`) into dist/attribution/, each its own wasm, glue and
// loader, so pages that do not ask for attribution never download it.
// Any failing step fails the build: no other artefact is shipped silently.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const dist = join(here, 'dist');
// Built beside dist and swapped in at the end, so a page loading the agent
// during a build never sees half of it.
const out = join(here, 'dist.tmp');
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
const fail = (msg) => {
  console.error(`npm build: ${msg}`);
  process.exit(1);
};

const build = (cargoFeatures, out) => {
  // 1. The wasm. Rebuilding std with `-Cpanic=immediate-abort` leaves out the
  // panic message formatting that every bounds check otherwise pulls in;
  // `-Zfmt-debug=none` and `-Zlocation-detail=none` drop the `Debug` impls and
  // file/line strings nothing in the shipped agent prints (-3.5 KB brotli: the
  // agent's messages are assembled from `&str`, never with `{:?}`). All are
  // unstable flags, allowed on the pinned stable compiler
  // (rust-toolchain.toml) by RUSTC_BOOTSTRAP for this one build; they need the
  // rust-src component (scripts/setup.sh adds it).
  const targetDir = join(root, 'target', 'wasm-small');
  try {
    run('cargo', [
      'build', '-p', 'vitalsign-agent', '--lib', '--target', 'wasm32-unknown-unknown', '--profile', 'wasm-release',
      '--features', cargoFeatures, '-Zbuild-std=std,panic_abort', '-Zbuild-std-features=optimize_for_size',
    ], {
      env: {
        ...process.env,
        RUSTC_BOOTSTRAP: '1',
        RUSTFLAGS: `${process.env.RUSTFLAGS ?? ''} -Zunstable-options -Cpanic=immediate-abort -Zfmt-debug=none -Zlocation-detail=none`.trim(),
        CARGO_TARGET_DIR: targetDir,
      },
    });
  } catch {
    fail('the wasm build failed (rust-src missing? run scripts/setup.sh)');
  }
  const wasm = join(targetDir, 'wasm32-unknown-unknown/wasm-release/vitalsign_agent.wasm');

  // 2. wasm-bindgen, of the version Cargo.lock pins (its output format is
  // tied to the macro's).
  const lock = readFileSync(join(root, 'Cargo.lock'), 'utf8');
  const pinned = lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/)?.[1];
  let cli = '';
  try {
    cli = execFileSync('wasm-bindgen', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    fail('wasm-bindgen is not installed (scripts/setup.sh installs it)');
  }
  if (cli !== `wasm-bindgen ${pinned}`) fail(`${cli} found, Cargo.lock pins wasm-bindgen ${pinned} (scripts/setup.sh installs it)`);
  const bindgen = join(out, 'bindgen');
  mkdirSync(bindgen, { recursive: true });
  run('wasm-bindgen', ['--target', 'bundler', '--out-dir', bindgen, '--out-name', 'agent', wasm]);

  // 3. wasm-opt -Oz, then minified names.
  const wasmOpt = join(here, 'node_modules/.bin/wasm-opt');
  const features = [
    '--enable-bulk-memory', '--enable-nontrapping-float-to-int', '--enable-sign-ext', '--enable-mutable-globals',
    '--enable-reference-types', '--enable-multivalue',
  ];
  const bg = join(out, 'agent_bg.wasm');
  run(wasmOpt, ['-Oz', '--strip-debug', '--strip-producers', '--strip-target-features', ...features, join(bindgen, 'agent_bg.wasm'), '-o', bg]);
  const map = execFileSync(wasmOpt, ['--minify-imports-and-exports-and-modules', ...features, bg, '-o', bg], { cwd: root, encoding: 'utf8' });
  const { imports, exports } = JSON.parse(map.slice(map.indexOf('{'), map.lastIndexOf('}') + 1));
  const importNames = new Map(imports.map(([, from, to]) => [from, to]));
  const exportNames = new Map(exports);
  const modules = new Set(WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(bg))).map((i) => i.module));
  if (modules.size !== 1) fail(`the wasm imports from ${[...modules].join(', ')}, not from one glue module`);
  const [module] = modules;

  // 4. The glue: wasm-bindgen's agent_bg.js with the new names. A name the
  // glue uses that the wasm does not have fails here, not in a browser.
  let glue = readFileSync(join(bindgen, 'agent_bg.js'), 'utf8');
  glue = glue.replace(/^export function (__wbg_\w+|__wbindgen_\w+)\(/gm, (all, name) => {
    if (name === '__wbg_set_wasm') return all;
    if (!importNames.has(name)) fail(`the glue exports ${name}, which the wasm does not import`);
    return `export function ${importNames.get(name)}(`;
  });
  glue = glue.replace(/\bwasm\.(\w+)/g, (_, name) => {
    if (!exportNames.has(name)) fail(`the glue uses wasm.${name}, which the wasm does not export`);
    return `wasm.${exportNames.get(name)}`;
  });
  for (const name of importNames.keys()) {
    if (!glue.includes(`export function ${importNames.get(name)}(`)) fail(`the wasm imports ${name}, which the glue lacks`);
  }
  writeFileSync(join(out, 'agent.js'), glue);

  // 5. The loader (its wasm module and start names), the script-tag starter,
  // and the TypeScript declarations written on the Rust side.
  const start = exportNames.get('__wbindgen_start');
  if (!start) fail('the wasm has no __wbindgen_start export');
  const loader = readFileSync(join(here, 'src/index.js'), 'utf8')
    .replace("'./agent_bg.js'", JSON.stringify(module))
    .replace('exports.__wbindgen_start', `exports.${start}`);
  writeFileSync(join(out, 'index.js'), loader);
  let tag = readFileSync(join(here, 'src/vitalsign.js'), 'utf8');
  if (cargoFeatures.includes('attribution')) {
    const marker = '/* data-attribution: in the attribution build (npm/build.mjs) */';
    if (!tag.includes(marker)) fail('src/vitalsign.js lacks the data-attribution marker');
    tag = tag.replace(marker, "if ('attribution' in d) opts.attribution = d.attribution !== 'false';");
  }
  writeFileSync(join(out, 'vitalsign.js'), tag);
  const dts = readFileSync(join(bindgen, 'agent.d.ts'), 'utf8');
  const types = dts.match(/\/\/ <vitalsign-types>\n([\s\S]*?)\/\/ <\/vitalsign-types>/)?.[1];
  if (!types) fail('the TypeScript section is missing from the wasm-bindgen output');
  // The attribution build adds its types (agent/src/web/attribution/js.rs).
  const extra = dts.match(/\/\/ <vitalsign-attribution-types>\n([\s\S]*?)\/\/ <\/vitalsign-attribution-types>/)?.[1] ?? '';
  if (cargoFeatures.includes('attribution') !== Boolean(extra)) fail(`attribution types ${extra ? 'in' : 'missing from'} the ${cargoFeatures} build`);
  writeFileSync(join(out, 'index.d.ts'), types + extra);
  rmSync(bindgen, { recursive: true });

  // 6. Minify what pages download; the wasm itself went through wasm-opt.
  const terser = join(here, 'node_modules/.bin/terser');
  for (const [f, module] of [['agent.js', true], ['index.js', true], ['vitalsign.js', false]]) {
    const file = join(out, f);
    run(terser, [file, ...(module ? ['--module'] : []), '--compress', 'passes=2', '--mangle', '-o', file]);
  }
};

rmSync(out, { recursive: true, force: true });
build('bundle', out);
build('bundle,attribution', join(out, 'attribution'));
rmSync(dist, { recursive: true, force: true });
renameSync(out, dist);
console.log('npm/dist:', readdirSync(dist).join(' '));
