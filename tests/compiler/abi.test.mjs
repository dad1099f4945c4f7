// abi.test.mjs — the patch ABI end to end without a browser: patches
// compiled by `patchbay compile` are loaded into the runtime main module in
// node. Var rebinding, state survival, signature-change rejection, the
// import check and the seed demo (58 then 59).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Room, makeRuntime } from './harness.mjs';

const H = '#include <patchbay.h>\n';

test('the seed demo: ggg(10) is 58, then 59 after redefinition', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  const a = room.compile(H + 'double ggg(double v) { return v + 48; }\n');
  assert.ok(a.ok, a.stderr);
  assert.deepEqual(rt.apply(a.module), { ok: true });
  assert.equal(rt.call('ggg', 10), 58);
  const b = room.compile(H + 'double ggg(double v) { return v + 49; }\n');
  assert.ok(b.ok, b.stderr);
  assert.deepEqual(rt.apply(b.module), { ok: true });
  assert.equal(rt.call('ggg', 10), 59);
  room.dispose();
});

test('redefining helper changes what an older caller calls', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  const a = room.compile(H +
    'double helper(double x) { return x * 2; }\n' +
    'double frame(double x) { return helper(x) + 1; }\n');
  assert.ok(a.ok, a.stderr);
  assert.ok(rt.apply(a.module).ok);
  assert.equal(rt.call('frame', 3), 7);
  // only helper is re-sent; frame (from the first patch) must see it
  const b = room.compile(H + 'double helper(double x) { return x * 10; }\n');
  assert.ok(b.ok, b.stderr);
  assert.ok(rt.apply(b.module).ok);
  assert.equal(rt.call('frame', 3), 31);
  assert.equal(rt.call('helper', 3), 30);
  room.dispose();
});

test('two versions both defining helper do not bind to the first', async () => {
  // Emscripten's linker binds a name to its first definition forever; the
  // ABI exports no user names, so the third version's code must run.
  const room = new Room();
  const rt = await makeRuntime();
  for (const k of [1, 2, 3]) {
    const p = room.compile(H + `int helper(void) { return ${k}; }\n` +
                           `int use(void) { return helper() * 100; }\n`);
    assert.ok(p.ok, p.stderr);
    assert.ok(rt.apply(p.module).ok);
    assert.equal(rt.call('use'), k * 100);
  }
  room.dispose();
});

test('a var calling a room var declared in an earlier patch', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  assert.ok(rt.apply(room.compile(H +
    'int add(int a, int b) { return a + b; }\n').module).ok);
  const b = room.compile(H + 'int twice(int a) { return add(a, a); }\n');
  assert.ok(b.ok, b.stderr);
  assert.ok(rt.apply(b.module).ok);
  assert.equal(rt.call('twice', 21), 42);
  room.dispose();
});

test('PB_STATE keeps its value across three redefinitions', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  const steps = ['counter += 1', 'counter += 10', 'counter += 100'];
  const seen = [];
  for (const step of steps) {
    const p = room.compile(H + 'PB_STATE(int, counter, 5);\n' +
                           `int bump(void) { ${step}; return counter; }\n`);
    assert.ok(p.ok, p.stderr);
    assert.ok(rt.apply(p.module).ok);
    seen.push(rt.call('bump'), rt.call('bump'));
  }
  assert.deepEqual(seen, [6, 7, 17, 27, 127, 227]);
  room.dispose();
});

test('a state whose size changes is refused at load', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  assert.ok(rt.apply(room.compile(H + 'PB_STATE(int, n, 1);\n' +
                                  'int get(void) { return n; }\n').module).ok);
  const p = room.compile(H + 'PB_STATE(double, n, 1);\n' +
                         'double get2(void) { return n; }\n');
  assert.ok(p.ok, p.stderr);
  const r = rt.apply(p.module);
  assert.equal(r.ok, false);
  assert.match(r.error, /state 'n' is 4 bytes, the patch declares it with 8/);
  assert.equal(rt.call('get'), 1);
  room.dispose();
});

test('changing a signature that other vars call is rejected, naming them',
     () => {
  const room = new Room();
  assert.ok(room.compile(H + 'double helper(double x) { return x; }\n' +
                         'double frame(double x) { return helper(x); }\n').ok);
  const bad = room.compile(H + 'int helper(int x) { return x; }\n');
  assert.equal(bad.ok, false);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr,
    /p2\.c:2:1: error: changing the signature of 'helper' \(dd to ii\) would break the vars that call it: frame/);
  // redefining the caller in the same patch makes it fine
  const good = room.compile(H + 'int helper(int x) { return x; }\n' +
                            'int frame(int x) { return helper(x); }\n');
  assert.ok(good.ok, good.stderr);
  room.dispose();
});

test('an unknown function is a compile error naming it', () => {
  const room = new Room();
  const r = room.compile(H + 'int f(void) { return nosuch(1); }\n');
  assert.equal(r.ok, false);
  assert.match(r.stderr, /p1\.c:2:22: error: .*'nosuch'/);
  // declared but defined nowhere: caught by the import check
  const s = room.compile(H + 'int secret(void);\nint g(void) { return secret(); }\n');
  assert.equal(s.ok, false);
  assert.match(s.stderr, /p2\.c:2:\d+: error: 'secret' is not defined in this patch, not a var of the room, and not part of the runtime API/);
  room.dispose();
});

test('redefining a runtime API function is refused', () => {
  const room = new Room();
  const r = room.compile(H + 'void pb_clear(pb_canvas *c, uint32_t x) { (void)c; (void)x; }\n');
  assert.equal(r.ok, false);
  assert.match(r.stderr, /'pb_clear' is part of the runtime API/);
  room.dispose();
});

test('printf from a patch reaches the runtime console', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  const p = room.compile(H + 'void hello(int n) { printf("hello %d\\n", n); }\n');
  assert.ok(p.ok, p.stderr);
  assert.ok(rt.apply(p.module).ok);
  rt.call('hello', 7);
  assert.ok(rt.logs.includes('hello 7'), JSON.stringify(rt.logs));
  room.dispose();
});

test('a frame function draws on a canvas through the API', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  const p = room.compile(H +
    'void pb_frame(double t, pb_canvas *c) {\n' +
    '  pb_clear(c, pb_rgb(0, 0, 0));\n' +
    '  pb_rect(c, 1, 1, 2, 2, pb_rgb(255, (int)t, 0));\n' +
    '}\n');
  assert.ok(p.ok, p.stderr);
  assert.ok(rt.apply(p.module).ok);
  const M = rt.M;
  const w = 4, h = 4;
  const px = M._malloc(w * h * 4), canvas = M._malloc(12);
  M.HEAP32[canvas >> 2] = w;
  M.HEAP32[(canvas >> 2) + 1] = h;
  M.HEAP32[(canvas >> 2) + 2] = px;
  rt.call('pb_frame', 7.0, canvas);
  const pixels = new Uint32Array(M.HEAPU8.buffer, px, w * h);
  assert.equal(pixels[0], 0xff000000);
  assert.equal(pixels[1 * w + 1], 0xff0007ff);
  M._free(px);
  M._free(canvas);
  room.dispose();
});
