// harness.mjs — test helpers: compile patches with the real CLI
// (`patchbay compile`, either backend) against a room file, and load them
// into the real runtime main module (runtime/, built with Emscripten) in
// node, calling vars through the registry.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

export const CLI = process.env.PB_CLI;
export const RUNTIME_JS = process.env.PB_RUNTIME_JS;
export const BACKEND = process.env.PB_BACKEND || 'process';
if (!CLI || !RUNTIME_JS)
  throw new Error('set PB_CLI and PB_RUNTIME_JS (ctest does)');

// A room: a folder with the room file the CLI reads and updates.
export class Room {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'pb-abi-'));
    this.file = join(this.dir, 'room.tsv');
    this.n = 0;
  }
  // Compiles src (C, or Lisp with ext 'cljc') with the given backend
  // (default $PB_BACKEND); returns {ok, module, stderr, status}.
  compile(src, { update = true, ext = 'c', backend = BACKEND } = {}) {
    const n = ++this.n;
    const in_ = join(this.dir, `p${n}.${ext}`);
    const out = join(this.dir, `p${n}.wasm`);
    writeFileSync(in_, src);
    const args = ['compile', '--backend', backend, '--room', this.file, '-q',
                  '-o', out, in_];
    if (update) args.splice(5, 0, '--update-room');
    try {
      execFileSync(CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      return { ok: true, module: readFileSync(out), stderr: '', status: 0 };
    } catch (e) {
      return { ok: false, module: null, stderr: String(e.stderr),
               status: e.status };
    }
  }
  // The room file: one line per var (name, signature, deps, prototype).
  vars() { return readFileSync(this.file, 'utf8'); }
  dispose() { rmSync(this.dir, { recursive: true, force: true }); }
}

// One runtime instance (the main module) in this node process.
export async function makeRuntime() {
  const create = require(RUNTIME_JS);
  const wasmBinary = readFileSync(RUNTIME_JS.replace(/\.js$/, '.wasm'));
  const logs = [];
  const M = await create({ wasmBinary, print: (s) => logs.push(s),
                           printErr: (s) => logs.push(s) });
  let version = 0;
  return {
    M, logs,
    // prepare (load + stage) then commit; returns {ok, error}
    apply(module) {
      const path = `/patch-${++version}.wasm`;
      M.FS.writeFile(path, module);
      M.ccall('rt_prepare_begin', null, [], []);
      M.ccall('rt_load', 'number', ['string'], [path]);
      const errors = M.ccall('rt_prepare_end', 'number', [], []);
      if (errors)
        return { ok: false,
                 error: M.ccall('rt_prepare_errors', 'string', [], []) };
      M.ccall('rt_commit', 'number', [], []);
      return { ok: true };
    },
    call(name, ...args) {
      const fn = M.ccall('rt_var_fn', 'number', ['string'], [name]);
      if (!fn) throw new Error(`var ${name} is not defined`);
      return M.wasmTable.get(fn)(...args);
    },
    rollback(name) { return M.ccall('rt_rollback', 'number', ['string'], [name]); },
  };
}
