// rollup.config.mjs — bundles the pages' scripts from web/src with the npm
// packages of the committed lockfile (CodeMirror 6), minified, into
// $PB_WEB_OUT (CMake sets it to <build>/www, which the relay serves).
import { nodeResolve } from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';
import { fileURLToPath } from 'node:url';

const out = process.env.PB_WEB_OUT;
if (!out) throw new Error('set PB_WEB_OUT to the output folder');
const src = (f) => fileURLToPath(new URL(`./src/${f}`, import.meta.url));

const page = (name, format = 'es') => ({
  input: src(name),
  output: { file: `${out}/${name}`, format, sourcemap: false },
  plugins: [nodeResolve(), terser()],
});

export default [
  page('editor.js'),
  page('runtime-page.js'),
  // a classic worker script: it loads the Emscripten runtime with importScripts
  page('runtime-worker.js', 'iife'),
  // inlined by `patchbay export` into one page that also plays from file://
  page('player-page.js', 'iife'),
];
