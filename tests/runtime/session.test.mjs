// session.test.mjs — the runtime's session against real, signed patches:
// a real relay compiles and signs them, a recorder keeps their bytes, and
// each test feeds them (intact or tampered with) to a fresh runtime with no
// socket and a clock the test sets. Every rejection has its own test and
// checks that nothing changed; then prepare/commit order, scheduling,
// trap rollback, state, logs and tests.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, joinRoom, encode, decode, frame, statementApplyUs, statementSeq, PB }
  from './harness.mjs';

const H = '#include <patchbay.h>\n';
// The room's history, in seq order (the relay assigns 1..9).
const SOURCES = [
  H + 'double ggg(double v) { return v + 48; }\n',                        // 1
  H + 'double ggg(double v) { return v + 49; }\n',                        // 2
  H + 'PB_STATE(int, counter, 5);\nint bump(void) { counter += 1; return counter; }\n', // 3
  H + 'PB_STATE(int, counter, 5);\nint bump(void) { counter += 10; return counter; }\n', // 4
  H + 'int chatty(int n) { for (int i = 0; i < n; i++) printf("line %d\\n", i); return n; }\n' +
      'int longline(void) { static char b[10001]; memset(b, \'x\', 10000); b[10000] = 0;\n' +
      '  puts(b); return 0; }\n',                                          // 5
  H + 'PB_TEST(ggg_adds) { PB_CHECK(ggg(1) == 50); }\n' +
      'PB_TEST(ggg_is_zero) { PB_CHECK(ggg(1) == 0); }\n' +
      'PB_TEST(traps) { int z = (int)ggg(-49); PB_CHECK(10 / z == 1); }\n', // 6
  H + 'double ggg(double v) { int d = (int)v - 10; return v + 50 + 100 / d; }\n', // 7
  H + 'void pb_frame(double t, pb_canvas *c) { (void)t; pb_clear(c, pb_rgb(1, 2, 3));\n' +
      '  pb_pixel(c, 1, 0, pb_rgb(9, 9, 9)); }\n',                         // 8
  H + 'PB_STATE(double, counter, 0);\ndouble cnt(void) { return counter; }\n', // 9
];

let relay, fork, rec, forkRec, key;
const P = {};      // seq -> raw patch frame of room jam
let other1, fork2; // room "other" seq 1; a forked seq 2 signed by the same key

before(async () => {
  // A lead of 3 s: seq 2 is signed before seq 1 is due, so a runtime can
  // hold both before either applies (a runtime's room clock is never
  // behind a statement's signed creation time).
  relay = await new Relay({ leadMs: 3000 }).start();
  key = relay.key();
  rec = new Recorder(relay, 'jam');
  await rec.ready;
  for (const src of SOURCES) {
    const { seq } = await relay.eval('jam', src);
    P[seq] = await rec.patch(seq);
  }
  const otherRec = new Recorder(relay, 'other');
  await otherRec.ready;
  await relay.eval('other', SOURCES[0]);
  other1 = await otherRec.patch(1);
  otherRec.close();
  // Same relay key, its own history: its seq 2 links to another seq 1.
  fork = await new Relay({ keyFrom: relay }).start();
  forkRec = new Recorder(fork, 'jam');
  await forkRec.ready;
  await fork.eval('jam', H + 'double ggg(double v) { return v + 60; }\n');
  await fork.eval('jam', H + 'double ggg(double v) { return v + 61; }\n');
  fork2 = await forkRec.patch(2);
});

afterEach(closeBareRuntimes);

after(async () => {
  rec?.close();
  forkRec?.close();
  await relay?.stop();
  await fork?.stop();
});

const FAR_FUTURE = 4e15; // room time after every apply time
const tamper = (bytes, fn) => { const f = decode(bytes); fn(f); return encode(f); };

async function fresh(opts = {}) {
  // the room's signed head first (it names the epoch), unless the runtime
  // pins another key, which would refuse it
  const rt = await bareRuntime('jam', opts.key || key,
                               { now: FAR_FUTURE, head: opts.key ? null : rec.heads[0], ...opts });
  return rt;
}

// Feeds seqs 1..n in order.
function feed(rt, n) {
  for (let s = 1; s <= n; s++) {
    const ev = rt.receive(P[s]);
    assert.ok(ev.ok, `seq ${s}: ${ev.error}`);
  }
}

// A rejection: the specific code in the answer, the event and the failed
// ack; the head, the committed seq and the registry as they were.
function assertRejected(rt, bytes, code, seq, before) {
  const rejects = [];
  const off = rt.on('reject', (r) => rejects.push(r));
  const ev = rt.receive(bytes);
  off();
  assert.equal(ev.ok ?? false, false);
  assert.equal(ev.code, code, ev.error);
  assert.equal(rejects.length, 1);
  assert.equal(rejects[0].code, code);
  const failed = rt.acks('failed').at(-1);
  assert.ok(failed, 'a failed ack is sent');
  assert.equal(failed.code, code);
  assert.equal(failed.seq, seq);
  assert.equal(rt.headSeq, before.head);
  assert.equal(rt.committedSeq, before.committed);
  if (before.ggg === undefined) assert.equal(rt.varFn('ggg'), 0);
  else assert.equal(rt.call('ggg', 10), before.ggg);
}

test('a session that cannot open says which input is wrong, with a code for each cause', async () => {
  const long = 'r'.repeat(65);
  await assert.rejects(joinRoom(`http://127.0.0.1:1/runtime.html#room=${long}&token=t&key=${key}`, { connect: false }),
                       (e) => e.code === PB.PB_ERR_FIELD_RANGE && /room name has 65 bytes: 1 to 64/.test(e.message));
  await assert.rejects(joinRoom({ url: 'ws://127.0.0.1:1', room: 'jam', token: 't', key: 'zz' }, { connect: false }),
                       (e) => e.code === PB.PB_ERR_MALFORMED && /relay key "zz" is not 64 hex digits/.test(e.message));
  // a NUL would end the room for C but not for the floor's file name
  await assert.rejects(joinRoom(`http://127.0.0.1:1/runtime.html#room=jam%00x&token=t&key=${key}`, { connect: false }),
                       /join link room "jam\\u0000x" has a control character/);
});

test('the seed demo: a real patch commits and ggg(10) is 58, then 59', async () => {
  const rt = await fresh();
  feed(rt, 1);
  assert.equal(rt.call('ggg', 10), 58);
  assert.ok(rt.receive(P[2]).ok);
  assert.equal(rt.call('ggg', 10), 59);
  assert.deepEqual(rt.acks().map((a) => `${a.seq} ${a.state}`),
                   ['1 prepared', '1 committed', '2 prepared', '2 committed']);
  rt.close();
});

test('test_runtime_rejects_bad_signature', async () => {
  const rt = await fresh();
  const bad = tamper(P[1], (f) => { f.sig[0] ^= 1; });
  // seq 0: the statement of a signature that does not verify is not read
  assertRejected(rt, bad, PB.PB_ERR_BAD_SIGNATURE, 0, { head: 0, committed: 0 });
  assert.ok(rt.receive(P[1]).ok, 'the genuine patch is still accepted');
  assert.equal(rt.call('ggg', 10), 58);
  rt.close();
});

test('test_runtime_rejects_wrong_key', async () => {
  // signed by another relay: its signature does not verify with the pinned key
  const rt = await fresh({ key: 'ab'.repeat(32) });
  assertRejected(rt, P[1], PB.PB_ERR_BAD_SIGNATURE, 0, { head: 0, committed: 0 });
  assert.match(rt.acks('failed')[0].error, /does not verify with the room's key abababab/);
  rt.close();
});

test('test_runtime_checks_the_signature_before_reading_the_statement', async () => {
  // statement bytes that are not even msgpack, under a made-up signature:
  // refused as a bad signature, never parsed (before: a decode error)
  const rt = await fresh();
  const junk = tamper(P[1], (f) => { f.stmt = new Uint8Array([0xc1, 0xc1, 0xc1]); });
  assertRejected(rt, junk, PB.PB_ERR_BAD_SIGNATURE, 0, { head: 0, committed: 0 });
  rt.close();
});

test('test_runtime_rejects_module_hash_mismatch', async () => {
  const rt = await fresh();
  feed(rt, 1);
  const bad = tamper(P[2], (f) => { f.module[f.module.length - 1] ^= 0x40; });
  assertRejected(rt, bad, PB.PB_ERR_HASH_MISMATCH, 2, { head: 1, committed: 1, ggg: 58 });
  rt.close();
});

test('test_runtime_rejects_seq_gap', async () => {
  const rt = await fresh();
  assertRejected(rt, P[2], PB.PB_ERR_CHAIN_GAP, 2, { head: 0, committed: 0 });
  // and reconnects to catch up from its head (after sending the failed ack)
  assert.deepEqual(rt.socket.closedWith, { code: 4000, reason: 'seq gap: reconnecting to catch up' });
  rt.close();
});

test('test_runtime_rejects_forked_chain', async () => {
  const rt = await fresh();
  feed(rt, 1);
  assert.equal(statementSeq(decode(fork2).stmt), 2);
  assertRejected(rt, fork2, PB.PB_ERR_CHAIN_FORK, 2, { head: 1, committed: 1, ggg: 58 });
  assert.ok(rt.receive(P[2]).ok, 'the room\'s own seq 2 still follows');
  assert.equal(rt.call('ggg', 10), 59);
  rt.close();
});

test('test_runtime_rejects_replay_of_an_old_seq', async () => {
  const rt = await fresh();
  feed(rt, 2);
  assertRejected(rt, P[1], PB.PB_ERR_CHAIN_REPLAY, 1, { head: 2, committed: 2, ggg: 59 });
  assertRejected(rt, P[2], PB.PB_ERR_CHAIN_REPLAY, 2, { head: 2, committed: 2, ggg: 59 });
  rt.close();
});

test('test_runtime_rejects_wrong_room', async () => {
  const rt = await fresh();
  assertRejected(rt, other1, PB.PB_ERR_WRONG_ROOM, 1, { head: 0, committed: 0 });
  rt.close();
});

test('test_runtime_rejects_oversized_frame_and_module', async () => {
  const rt = await fresh();
  // a frame over PB_MAX_FRAME_BYTES is refused before anything is read;
  // one of 48 MiB does not even reach wasm memory (it never shrinks)
  const huge = tamper(P[1], (f) => { f.pad = new Uint8Array(2 * 1024 * 1024); });
  assertRejected(rt, huge, PB.PB_ERR_TOO_BIG, 0, { head: 0, committed: 0 });
  const mem = rt.M.HEAPU8.length;
  assertRejected(rt, new Uint8Array(48 * 1024 * 1024), PB.PB_ERR_TOO_BIG, 0, { head: 0, committed: 0 });
  assert.equal(rt.M.HEAPU8.length, mem, 'wasm memory did not grow');
  // a module over this runtime's own limit
  const small = await fresh({ limits: { maxModuleBytes: 64 } });
  assertRejected(small, P[1], PB.PB_ERR_TOO_BIG, 1, { head: 0, committed: 0 });
  assert.match(small.acks('failed')[0].error, /over this runtime's limit of 64/);
  rt.close();
  small.close();
});

test('every truncation, and a flipped bit in every byte, of a real patch is refused or harmless', async () => {
  // Hostile frames: no prefix of a patch, and no patch with a byte
  // changed, may load anything unverified or break the runtime.
  let rt = await fresh();
  feed(rt, 1);
  const bytes = P[2];
  for (let n = 0; n < bytes.length; n++) {
    const ev = rt.receive(bytes.subarray(0, n));
    assert.ok(ev.code > 0 && !ev.ok, `prefix of ${n} bytes: ${JSON.stringify(ev)}`);
  }
  assert.equal(rt.headSeq, 1);
  // Each flip must be refused, unless it changed nothing the runtime
  // relies on (say, the name of the optional source field, which then
  // reads as an unknown key and is ignored): then it is the genuine patch.
  const harmless = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes.slice();
    b[i] ^= 0x01;
    const ev = rt.receive(b);
    if (!ev.ok) {
      assert.ok(ev.code > 0, `byte ${i}: ${JSON.stringify(ev)}`);
      assert.equal(rt.headSeq, 1, `byte ${i} refused, the head stays`);
      continue;
    }
    harmless.push(i);
    assert.equal(rt.headSeq, 2);
    assert.equal(rt.call('ggg', 10), 59, `byte ${i} accepted: it must be seq 2 itself`);
    rt.close(); // the head moved: go on from seq 1 with a fresh runtime
    rt = await fresh();
    feed(rt, 1);
  }
  assert.ok(harmless.length < 16, `only a few bytes are harmless (${harmless})`);
  assert.equal(rt.call('ggg', 10), 58);
});

test('a verified patch whose module does not load: failed ack, the head moves, the registry does not', async () => {
  const rt = await fresh();
  feed(rt, 8);
  assert.equal(rt.call('bump'), 15);
  const ev = rt.receive(P[9]); // counter was declared as an int by seq 3
  assert.equal(ev.ok, false);
  assert.equal(ev.code, PB.PB_ERR_PREPARE);
  const failed = rt.acks('failed').at(-1);
  assert.equal(failed.seq, 9);
  assert.equal(failed.code, PB.PB_ERR_PREPARE);
  assert.match(failed.error, /state 'counter' is 4 bytes, the patch declares it with 8/);
  assert.equal(rt.headSeq, 9, 'authentic, so the chain moves on');
  assert.equal(rt.committedSeq, 8);
  assert.equal(rt.varFn('cnt'), 0);
  assert.equal(rt.call('bump'), 25);
});

test('prepare acks first, commits wait for the apply time, in seq order', async () => {
  const a1 = statementApplyUs(decode(P[1]).stmt), a2 = statementApplyUs(decode(P[2]).stmt);
  assert.ok(a2 > a1);
  const rt = await fresh({ now: a1 - 1000 });
  const commits = [];
  rt.on('commit', (c) => commits.push(c));
  assert.ok(rt.receive(P[1]).ok);
  assert.ok(rt.receive(P[2]).ok);
  assert.equal(rt.varFn('ggg'), 0, 'nothing commits before its apply time');
  assert.equal(rt.pendingCount, 2);
  rt.setNow(a1 - 1);
  rt.step();
  assert.equal(commits.length, 0, 'not even 1 µs early');
  rt.setNow(a1);
  rt.step();
  assert.deepEqual(commits.map((c) => c.seq), [1]);
  assert.equal(rt.call('ggg', 10), 58);
  rt.setNow(a2 + 250);
  rt.step();
  assert.deepEqual(commits.map((c) => c.seq), [1, 2]);
  assert.equal(rt.call('ggg', 10), 59);
  assert.deepEqual(rt.acks().map((a) => `${a.seq} ${a.state}`),
                   ['1 prepared', '2 prepared', '1 committed', '2 committed']);
  const [c1, c2] = rt.acks('committed');
  assert.equal(c1.commit_at_us, a1);
  assert.equal(c1.late_us ?? 0, 0);
  assert.equal(c2.late_us, 250, 'a late commit says how late');
  assert.ok(c1.prepare_us > 0 && c1.modules >= 1 && c1.mem_bytes > 0 && c1.table_size > 0);
  rt.close();
});

test('a patch that arrives after its apply time commits at once and says how late', async () => {
  const a1 = statementApplyUs(decode(P[1]).stmt);
  const rt = await fresh({ now: a1 + 7000 });
  assert.ok(rt.receive(P[1]).ok);
  assert.equal(rt.call('ggg', 10), 58);
  assert.equal(rt.acks('committed')[0].late_us, 7000);
  rt.close();
});

test('a trap rolls back the patch, sends a failed ack, and the runtime keeps running', async () => {
  const rt = await fresh();
  feed(rt, 7);
  const traps = [];
  rt.on('trap', (t) => traps.push(t));
  assert.equal(rt.call('ggg', 11), 11 + 50 + 100); // seq 7 is live
  assert.throws(() => rt.call('ggg', 10), /trap in 'ggg' \(seq 7\).*divide by zero/);
  assert.equal(traps.length, 1);
  assert.deepEqual(traps[0].vars, ['ggg']);
  const failed = rt.acks('failed');
  assert.equal(failed.length, 1);
  assert.equal(failed[0].seq, 7);
  assert.equal(failed[0].code, PB.PB_ERR_TRAP);
  assert.equal(failed[0].var, 'ggg');
  assert.match(failed[0].error, /divide by zero/);
  assert.ok(rt.sent.some((f) => f.t === 'log' && f.level === 'trap' && f.seq === 7));
  // the previous definition (seq 2) runs again, and keeps running
  assert.equal(rt.call('ggg', 10), 59);
  assert.equal(rt.call('ggg', 11), 60);
  rt.close();
});

test('PB_STATE keeps its value when its patch is redefined', async () => {
  const rt = await fresh();
  feed(rt, 3);
  assert.equal(rt.call('bump'), 6);
  assert.equal(rt.call('bump'), 7);
  assert.ok(rt.receive(P[4]).ok);
  assert.equal(rt.call('bump'), 17);
  rt.close();
});

test('patch output becomes log frames, rate limited with a count of what was dropped', async () => {
  const rt = await fresh();
  feed(rt, 5);
  const t0 = FAR_FUTURE;
  rt.setNow(t0);
  rt.call('chatty', 100);
  const lines = rt.sent.filter((f) => f.t === 'log' && f.level === 'info');
  assert.ok(lines.length >= 40 && lines.length < 100, `${lines.length} lines passed`);
  assert.equal(lines[0].text, 'line 0');
  assert.equal(lines[0].var, 'chatty');
  assert.equal(lines[0].seq, 5);
  rt.setNow(t0 + 10e6); // the budget refills on the room clock
  rt.step();
  const marker = rt.sent.find((f) => f.t === 'log' && f.level === 'warn');
  assert.ok(marker, 'a marker says lines were dropped');
  const dropped = Number(/\[(\d+) log lines dropped/.exec(marker.text)[1]);
  assert.equal(lines.length + dropped, 100);
  rt.close();
});

test('a log line over the limit is cut with a marker', async () => {
  const rt = await fresh();
  feed(rt, 5);
  rt.call('longline');
  const log = rt.sent.find((f) => f.t === 'log');
  assert.equal(log.truncated, true);
  assert.ok(Buffer.byteLength(log.text) <= 4096);
  assert.match(log.text, /^x+ \[truncated by the runtime\]$/);
  rt.close();
});

test('test_req runs the PB_TEST tests and answers test_result', async () => {
  const rt = await fresh();
  feed(rt, 6);
  rt.receive(frame('test_req', { req: 9, filter: '' }));
  const r = rt.sent.find((f) => f.t === 'test_result');
  assert.ok(r, 'a test_result is sent');
  assert.equal(r.req, 9);
  assert.equal(r.seq, 6);
  const by = Object.fromEntries(r.results.map((x) => [x.name, x]));
  assert.deepEqual(Object.keys(by).sort(), ['ggg_adds', 'ggg_is_zero', 'traps']);
  assert.equal(by.ggg_adds.ok, true);
  assert.equal(by.ggg_adds.status, 'pass');
  // a failed check: its expression, file and line
  assert.equal(by.ggg_is_zero.ok, false);
  assert.equal(by.ggg_is_zero.status, 'fail');
  assert.equal(by.ggg_is_zero.message, 'ggg(1) == 0');
  assert.match(by.ggg_is_zero.file, /\.c$/, 'the file the patch was evaluated as');
  assert.equal(by.ggg_is_zero.line, 3); // H is one line
  // a trap: the var whose code trapped and the patch that defined it
  assert.equal(by.traps.ok, false);
  assert.equal(by.traps.status, 'trap');
  assert.match(by.traps.message, /divide by zero/);
  assert.equal(by.traps.var, 'pb_test__traps');
  assert.equal(by.traps.var_seq, 6);
  // a filter is a name prefix; a failing test rolls nothing back
  rt.receive(frame('test_req', { req: 10, filter: 'ggg_' }));
  const r2 = rt.sent.filter((f) => f.t === 'test_result').at(-1);
  assert.deepEqual(r2.results.map((x) => x.name).sort(), ['ggg_adds', 'ggg_is_zero']);
  assert.equal(rt.call('ggg', 10), 59);
  rt.close();
});

test('hello carries the device_id it is given (one per restarted runtime), else one of its own', async () => {
  const id = '0123456789abcdef0123456789abcdef';
  const a = await fresh({ deviceId: id });
  const b = await fresh({ deviceId: id }); // what a watchdog starts in a's place
  const c = await fresh();
  const d = await fresh();
  assert.equal(a.sent[0].t, 'hello');
  assert.equal(a.sent[0].device_id, id);
  assert.equal(b.sent[0].device_id, id);
  assert.match(c.sent[0].device_id, /^[0-9a-f]{32}$/);
  assert.match(d.sent[0].device_id, /^[0-9a-f]{32}$/);
  assert.notEqual(c.sent[0].device_id, d.sent[0].device_id);
  for (const rt of [a, b, c, d]) rt.close();
});

test('with a canvas attached, a frame commits what is due, then calls pb_frame', async () => {
  const a8 = statementApplyUs(decode(P[8]).stmt);
  const rt = await fresh({ now: a8 - 10 });
  feed(rt, 8);
  const c = rt.attachCanvas(4, 2);
  assert.equal(rt.frame().ok, false, 'no pb_frame before its apply time');
  rt.setNow(a8);
  assert.equal(rt.frame().ok, true);
  const px = c.pixels();
  assert.equal(px.length, 4 * 2 * 4);
  assert.deepEqual([...px.slice(0, 4)], [1, 2, 3, 255]);
  assert.deepEqual([...px.slice(4, 8)], [9, 9, 9, 255]);
  assert.deepEqual([...px.slice(28, 32)], [1, 2, 3, 255]);
});

test('a generation reload moves to a fresh instance: same vars, state and head, fewer modules', async () => {
  const rt = await fresh({ reloadAfterModules: 0 });
  feed(rt, 3);
  assert.equal(rt.call('bump'), 6);
  assert.ok(rt.receive(P[4]).ok);
  assert.equal(rt.call('bump'), 16);
  const old = rt.M, tableBefore = rt.M.wasmTable.length;
  assert.equal(rt.modules, 4);
  const gens = [];
  rt.on('generation', (g) => gens.push(g));
  assert.equal(await rt.reload(), true);
  assert.notEqual(rt.M, old);
  // only the patches that still define a current var: ggg (2) and bump (4)
  assert.deepEqual(gens, [{ modules_before: 4, modules: 2, patches: 2, states: 1 }]);
  assert.ok(rt.M.wasmTable.length < tableBefore);
  assert.equal(rt.varSeq('ggg'), 2);
  assert.equal(rt.call('ggg', 10), 59);
  assert.equal(rt.call('bump'), 26, 'PB_STATE carried across');
  assert.equal(rt.headSeq, 4);
  assert.equal(rt.committedSeq, 4);
  // the chain goes on from the adopted head
  assert.ok(rt.receive(P[5]).ok);
  assert.equal(rt.call('chatty', 1), 1);
  assert.equal(rt.receive(P[4]).code, PB.PB_ERR_CHAIN_REPLAY, 'and still refuses a replay');
});

test('the host reloads by itself once reloadAfterModules modules are loaded', async () => {
  const rt = await fresh({ reloadAfterModules: 3 });
  const gen = rt.waitFor('generation');
  feed(rt, 3);
  const g = await gen;
  assert.equal(g.modules_before, 3);
  assert.equal(rt.generations, 1);
  assert.equal(rt.call('ggg', 10), 59);
  assert.equal(rt.call('bump'), 6);
});
