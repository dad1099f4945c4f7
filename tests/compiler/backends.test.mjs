// backends.test.mjs — the warm backend (clang and lld in one process) and
// the process backend (clang-14 and wasm-ld-14 as programs) are two ways
// to the same module: for each patch, both compile it, define the same
// vars with the same signatures, dependencies and prototypes, their modules
// load into the runtime and compute the same results — and are in fact the
// same bytes. And `patchbay compile` reads stdin when asked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Room, makeRuntime, CLI } from './harness.mjs';

const H = '#include <patchbay.h>\n';

// [name, source, ext, calls: [var, args, expected]]
const patches = [
  ['the seed', H + 'double ggg(double v) { return v + 49; }\n', 'c',
   [['ggg', [10], 59]]],
  ['state, math and vars calling vars', H +
    'PB_STATE(int, hits, 0);\n' +
    'static float wobble(float t) { return sinf(t) * cosf(t); }\n' +
    'double helper(double x) { return x * 2 + wobble((float)x); }\n' +
    'int bump(int by) { hits += by; return hits; }\n' +
    'double frame(double x) { return helper(x) + bump(1); }\n' +
    'long long wide(long long a, int b) { return a * b; }\n', 'c',
   [['bump', [2], 2], ['frame', [0], 3], ['wide', [3n, 4], 12n]]],
  ['a Lisp patch', '(defn twice [x] (* 2 x))\n(defn four [x] (twice (twice x)))\n',
   'cljc', [['four', [2.5], 10]]],
];

for (const [name, src, ext, calls] of patches) {
  test(`both backends compile ${name} to equivalent modules`, async () => {
    const rooms = { warm: new Room(), process: new Room() };
    const out = {};
    for (const backend of ['warm', 'process']) {
      const r = rooms[backend].compile(src, { ext, backend });
      assert.ok(r.ok, `${backend}: ${r.stderr}`);
      assert.equal(r.module.subarray(0, 4).toString('latin1'), '\0asm');
      const rt = await makeRuntime();
      assert.deepEqual(rt.apply(r.module), { ok: true }, backend);
      out[backend] = {
        vars: rooms[backend].vars(),
        module: r.module,
        results: calls.map(([fn, args]) => rt.call(fn, ...args)),
      };
    }
    assert.ok(out.warm.vars.length > 0);
    assert.equal(out.warm.vars, out.process.vars);
    assert.deepEqual(out.warm.results, out.process.results);
    assert.deepEqual(out.warm.results, calls.map((c) => c[2]));
    // Same flags, same pass, same LLVM 14.0.6: the very same bytes.
    assert.ok(out.warm.module.equals(out.process.module),
              `modules differ: ${out.warm.module.length} vs ${out.process.module.length} bytes`);
    for (const room of Object.values(rooms)) room.dispose();
  });
}

test('patchbay compile --stdin (or -) reads the source from stdin and writes the module to stdout', async () => {
  const src = H + 'double ggg(double v) { return v + 49; }\n';
  for (const how of ['--stdin', '-']) {
    const module = execFileSync(CLI, ['compile', '-q', how], { input: src, stdio: ['pipe', 'pipe', 'pipe'] });
    assert.equal(module.subarray(0, 4).toString('latin1'), '\0asm', how);
    const rt = await makeRuntime();
    assert.deepEqual(rt.apply(module), { ok: true }, how);
    assert.equal(rt.call('ggg', 10), 59, how);
  }
  // one input only
  assert.throws(() => execFileSync(CLI, ['compile', 'a.c', '--stdin'], { stdio: 'pipe' }),
                (e) => e.status === 2 && /one FILE at a time/.test(String(e.stderr)));
});
