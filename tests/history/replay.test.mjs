// replay.test.mjs — `patchbay replay` against a real relay: a recorded
// session of 100 patches (state, pictures, an expression, tests; 1 s
// apart) replayed at 10× into a new room ends with runtimes in the same
// state as runtimes that lived through the original — every PB_STATE cell,
// the same pixels for the same room time, the same test results — paced
// within tolerance of the scaled original, each new patch naming its
// origin. A line per patch when stdout is not a terminal; the relay's
// eval rate is waited out, not broken; a token that may not write the
// target room is refused before anything is sent; Ctrl-C stops cleanly.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { promisify } from 'node:util';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, joinRoom, CLI, decode, until } from '../runtime/harness.mjs';
import { Peer } from '../peer.mjs';
import { decodeSequence } from '../../web/src/msgpack.js';

const run = promisify(execFile);
const GEN = resolve(dirname(CLI), '..', 'tests', 'history', 'pb_gen_history');
const H = '#include <patchbay.h>\n';
const N = 100;
// 100 ms at 10x: one eval is in flight at a time, and each is compiled
// by the relay, which takes a few hundred ms on a loaded 2-core machine
const GAP_MS = 1000;
const T = 77.5; // the room time pictures are drawn for (s)

// The patches the session repeats (in turn): state, a picture with
// random numbers, pb_init, an expression, tests.
const LIKES = [
  { source: H + 'PB_STATE(unsigned, acc, 5);\nPB_STATE(int, inits, 0);\n' +
            'void pb_init(void) { acc = acc * 31u + (unsigned)rand(); inits++; }\n' +
            'unsigned acc_of(void) { return acc; }\n' },
  { source: H + 'PB_STATE(unsigned, acc, 5);\nvoid pb_frame(double t, pb_canvas *c) {\n' +
            '  pb_clear(c, pb_rgb((int)(acc % 256), 30, (int)(t * 3) % 256));\n' +
            '  for (int k = 0; k < 60; k++) pb_pixel(c, rand() % c->width, rand() % c->height, pb_rgb(255, 240, 0));\n}\n' },
  { source: 'PB_STATE_OF(unsigned, acc) += (unsigned)(rand() % 1000)', expr: true },
  { source: H + 'PB_STATE(unsigned, acc, 5);\nPB_TEST(acc_is_odd) { PB_CHECK(acc % 2 == 1); }\n' +
            'PB_TEST(adds) { PB_CHECK(1 + 1 == 2); }\n' },
  { source: H + 'PB_STATE(unsigned, acc, 5);\nPB_STATE(int, inits, 0);\n' +
            'void pb_init(void) { acc ^= (unsigned)rand() << 3; inits += 2; }\n' },
];

let relay, key;
const likeFiles = [];

before(async () => {
  // rate limits above what 10× of 300 ms needs (the default is tested below)
  relay = await new Relay({ args: ['--evals-per-second', '200'] }).start();
  key = relay.key();
  // real modules for the session: the likes, compiled by the relay
  const rec = new Recorder(relay, 'likes');
  await rec.ready;
  const ed = await Peer.join(relay, 'likes', 'editor', 'ed');
  mkdirSync(join(relay.dir, 'likes'), { recursive: true });
  for (const [i, s] of LIKES.entries()) {
    ed.send({ t: 'eval', req: i + 1, lang: 'c', source: s.source, expr: !!s.expr });
    const d = await ed.waitFor((f) => (f.t === 'diag' || f.t === 'error') && f.req === i + 1, `like ${i + 1}`);
    assert.ok(d.ok, JSON.stringify(d));
    const f = join(relay.dir, 'likes', `${i + 1}.frame`);
    writeFileSync(f, await rec.patch(d.seq));
    likeFiles.push(f);
  }
  ed.close();
  rec.close();
  // the recorded session: 100 patches, 300 ms apart, as a relay records
  await run(GEN, [relay.data, 'jam', String(N), '--gap-ms', String(GAP_MS), ...likeFiles]);
});
afterEach(closeBareRuntimes);
after(async () => { await relay?.stop(); });

// A room's whole history, as patch frames (through export), with the
// room's epoch (frames.epoch).
async function framesOf(room) {
  const f = join(relay.dir, `${room}.pbb`);
  await run(CLI, ['export', '--room', room, '--data', relay.data, '-o', f]);
  const bytes = new Uint8Array(readFileSync(f));
  const values = decodeSequence(bytes);
  return Object.assign(values.slice(1).map((v) => bytes.subarray(v.at, v.end)),
                       { epoch: Number(values[0].value.epoch || 0) });
}

// A runtime's store that starts it at a room's epoch and keeps nothing (a
// generated room has no signed head to name it).
const atEpoch = (epoch) => ({ load: () => ({ epoch, seq: 0, hash: '' }), save() {} });

// Every PB_STATE cell, the picture of room time T, the tests' outcomes.
function look(host) {
  const cells = {};
  for (const st of host.generation({ withFrames: false }).states)
    cells[st.name] = Buffer.from(st.bytes).toString('hex');
  const tests = host.runTests(1, '', 0).map((r) => ({ name: r.name, status: r.status, line: r.line || 0,
                                                       message: r.message || '' }));
  if (!host.canvas) host.attachCanvas(64, 48);
  assert.ok(host.drawAt(T).ok);
  return { seq: host.committedSeq, cells, tests, pixels: Buffer.from(host.canvas.pixels()).toString('base64') };
}

function replay(args, env = {}) {
  return new Promise((resolveRun) => {
    const p = spawn(CLI, ['replay', '--data', relay.data, '--url', `ws://127.0.0.1:${relay.port}`, ...args],
                    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('exit', (code) => resolveRun({ code, stdout, stderr }));
    replay.last = p;
  });
}

test('100 patches replayed at 10x: the same state, pixels and tests, paced as the original', async () => {
  // the runtimes that watch the replay live, from before it starts
  const live = await joinRoom(relay.link('jam10', 'watcher'), { name: 'watcher' });
  try {
    await watchReplay(live);
  } finally {
    live.close(); // an open socket would keep the test process alive
  }
});

async function watchReplay(live) {
  await live.waitFor('state', (s) => s.state === 'live');
  const t0 = Date.now();
  const r = await replay(['--room', 'jam', '--into', 'jam10', '--speed', '10'],
                         { PATCHBAY_TOKEN: relay.token('jam10', 'editor', 'replayer') });
  const took = (Date.now() - t0) / 1000;
  assert.equal(r.code, 0, r.stderr);
  // a line per patch (not a terminal), then the summary
  const lines = r.stdout.split('\n').filter((l) => /^seq \d+ -> jam10#\d+ at \+/.test(l));
  assert.equal(lines.length, N, r.stdout);
  assert.match(r.stdout, new RegExp(`replayed ${N} patches of room jam \\(seq 1-${N}\\) into room jam10 as seq 1-${N}`));
  await until(() => live.committedSeq === N, 'the live runtime has all 100', 30000);

  // the original, as a runtime that lived through it had it
  const original = await framesOf('jam');
  const rt = await bareRuntime('jam', key, { now: 4e15, store: atEpoch(original.epoch) });
  for (const f of original) assert.ok(rt.receive(f).ok);
  assert.deepEqual(look(live), look(rt));

  // honest history: each names its origin; paced as the original / 10
  const replayed = await framesOf('jam10');
  const st = (f) => decode(decode(f).stmt);
  // A statement's time is when the relay signed it: after the replay sent
  // it (not before its scaled time, counted from at latest t0, when the
  // command started) and after the relay compiled it (one in flight: a
  // slow compile delays the rest, hence the span's tolerance).
  const c0 = st(replayed[0])[9], o0 = st(original[0])[9];
  let worst = 0;
  for (let i = 0; i < N; i++) {
    const s = st(replayed[i]);
    assert.equal(s[0], 3);
    assert.deepEqual([s[13], s[14]], ['jam', i + 1]);
    const want = (st(original[i])[9] - o0) / 10;
    assert.ok(s[9] >= t0 * 1000 + want, `seq ${i + 1} sent ${(t0 * 1000 + want - s[9]) / 1000} ms early`);
    worst = Math.max(worst, s[9] - c0 - want);
  }
  const span = (st(replayed[N - 1])[9] - c0) / 1e6, scaled = (N - 1) * GAP_MS / 10 / 1000;
  assert.ok(span >= scaled * 0.95 && span <= scaled * 1.5 + 2,
            `the replay took ${span.toFixed(2)} s for ${scaled.toFixed(2)} s scaled:\n${r.stdout}`);
  console.log(`# replay at 10x: ${span.toFixed(2)} s for ${scaled.toFixed(2)} s scaled ` +
              `(command ${took.toFixed(1)} s), the latest patch ${(worst / 1000).toFixed(0)} ms behind`);
}

test('the relay\'s eval rate is waited out, not broken', async () => {
  // one eval a second: slower than the relay compiles, even under load
  const slow = await new Relay({ args: ['--evals-per-second', '1'] }).start();

  try {
    await run(GEN, [slow.data, 'jam', '6', '--gap-ms', '10', ...likeFiles]);
    const r = await new Promise((resolveRun) => {
      execFile(CLI, ['replay', '--data', slow.data, '--room', 'jam', '--into', 'fast', '--speed', '100',
                     '--url', `ws://127.0.0.1:${slow.port}`, '--token', slow.token('fast', 'editor', 'r')],
               (e, stdout, stderr) => resolveRun({ code: e ? e.code : 0, stdout, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /replayed 6 patches/);
    assert.match(r.stdout, /the relay's eval rate held it back \d+\.\d s in all/);
  } finally {
    await slow.stop();
  }
});

test('a token that may not write the room is refused before anything is sent', async () => {
  for (const [token, want] of [
    [relay.token('elsewhere', 'editor', 'x'), /the token is for room "elsewhere", not "jam-r": nothing sent/],
    [relay.token('jam-r', 'viewer', 'x'), /the token's role is viewer; replaying into room jam-r needs an editor or owner token: nothing sent/],
  ]) {
    const r = await replay(['--room', 'jam', '--into', 'jam-r', '--token', token]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, want);
  }
  // nothing reached the room
  const v = await run(CLI, ['verify', '--data', relay.data, '--room', 'jam-r']);
  // (the refused connection may have begun the room: no patches in it)
  assert.match(v.stdout, /room jam-r: (no patches recorded|0 patches verify)/);
});

test('Ctrl-C stops after the patch in flight, cleanly', async () => {
  const running = replay(['--room', 'jam', '--into', 'jam-c', '--speed', '1'],
                         { PATCHBAY_TOKEN: relay.token('jam-c', 'editor', 'r') });
  await new Promise((r) => setTimeout(r, 4000)); // ~4 patches at 1 s
  replay.last.kill('SIGINT');
  const r = await running;
  assert.equal(r.code, 130, r.stderr);
  const m = /stopped by Ctrl-C after (\d+) of 100 patches \(each sent patch was answered and stays\)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  const sent = Number(m[1]);
  assert.ok(sent >= 2 && sent < 100);
  const v = await run(CLI, ['verify', '--data', relay.data, '--room', 'jam-c']);
  assert.match(v.stdout, new RegExp(`room jam-c: ${sent} patch(es)? verify`));
});

test('a session that does not verify is not sent', async () => {
  const r = await replay(['--room', 'jam', '--into', 'jam-x', '--file', join(relay.dir, 'nothing.pbb')],
                         { PATCHBAY_TOKEN: relay.token('jam-x', 'editor', 'r') });
  assert.equal(r.code, 2, 'usage: --file with --data');
  const r2 = await new Promise((resolveRun) => execFile(CLI, ['replay', '--file', join(relay.dir, 'nothing.pbb'),
    '--url', `ws://127.0.0.1:${relay.port}`, '--token', relay.token('jam-x', 'editor', 'r')],
    (e, stdout, stderr) => resolveRun({ code: e ? e.code : 0, stderr })));
  assert.equal(r2.code, 3);
  assert.match(r2.stderr, /cannot read .*nothing\.pbb/);
});

test('a progress bar on a terminal instead of a line per patch', async () => {
  // script(1) gives the command a pseudo-terminal for stdout and stderr
  const token = relay.token('jam-tty', 'editor', 'r');
  const cmd = [CLI, 'replay', '--data', relay.data, '--url', `ws://127.0.0.1:${relay.port}`, '--room', 'jam',
               '--into', 'jam-tty', '--to', '20', '--speed', '20', '--token', token]
    .map((a) => `'${a}'`).join(' ');
  const out = await new Promise((resolveRun) => {
    execFile('script', ['-qec', cmd, '/dev/null'], (e, stdout) => resolveRun({ code: e ? e.code : 0, stdout }));
  });
  assert.equal(out.code, 0, out.stdout);
  assert.match(out.stdout, /\rreplaying \[#+\.*\] \d+\/20 /);
  assert.match(out.stdout, /replaying \[#{24}\] 20\/20 /);
  assert.doesNotMatch(out.stdout, /^seq \d+ -> /m, 'no line per patch on a terminal');
  assert.match(out.stdout, /replayed 20 patches of room jam \(seq 1-20\) into room jam-tty/);
});
