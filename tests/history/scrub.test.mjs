// scrub.test.mjs — the history player (web/src/player.js) in node: the
// room at patch N, reached by a seek from checkpoints or by walking
// forward, is the room a fresh runtime has after receiving only patches
// 1..N — every PB_STATE cell byte for byte, and the same pixels for the
// same room time — for N forward, backward, at and between checkpoints;
// a frame drawn in between does not leak into the next seek; and a
// session with a broken link stops at it. Real relay, compiler and signed
// patches.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, decode, encode, RUNTIME_DIR } from '../runtime/harness.mjs';
import { Peer } from '../peer.mjs';
import { HistoryPlayer } from '../../web/src/player.js';

const { loadRuntime } = await import(pathToFileURL(resolve(RUNTIME_DIR, 'node', 'runtime.mjs')).href);
const H = '#include <patchbay.h>\n';
const T = 41.25; // the room time pictures are drawn for (s)
const N = 30;

// A session that builds state every way there is: cells declared late,
// pb_init that draws random numbers, expressions that change state,
// redefinitions of the picture, a var that traps, Lisp.
function session() {
  const out = [];
  for (let i = 1; i <= N; i++) {
    if (i === 1)
      out.push({ source: H + 'PB_STATE(unsigned, acc, 3);\nunsigned acc_of(void) { return acc; }\n' });
    else if (i % 7 === 0)
      out.push({ source: `PB_STATE_OF(unsigned, acc) = PB_STATE_OF(unsigned, acc) * 3u + (unsigned)(rand() % 97) + ${i}u`,
                 expr: true });
    else if (i % 5 === 0)
      out.push({ source: H + `PB_STATE(unsigned, acc, 3);\nPB_STATE(int, level${i}, ${i});\n` +
                 `void pb_init(void) { acc = acc * 31u + (unsigned)rand() + ${i}u; level${i}++; }\n` });
    else if (i % 3 === 0)
      out.push({ source: H + 'PB_STATE(unsigned, acc, 3);\nvoid pb_frame(double t, pb_canvas *c) {\n' +
                 `  pb_clear(c, pb_rgb((int)(acc % 200), ${i * 7}, (int)(t * 10) % 256));\n` +
                 `  for (int k = 0; k < ${i}; k++) pb_pixel(c, rand() % c->width, rand() % c->height, pb_rgb(255, 255, ${i}));\n` +
                 '  acc += 1; /* a frame changes state too */\n}\n' });
    else if (i === 11)
      out.push({ source: '(defonce lcount (atom 0))\n(defn bump [] (swap! lcount inc))\n', lang: 'lisp' });
    else if (i === 13)
      out.push({ source: '(bump)', lang: 'lisp' });
    else
      out.push({ source: H + `double g${i % 4}(double v) { return v * ${i}; }\n` });
  }
  return out;
}

let relay, key, head, epoch;
const frames = []; // raw patch frames of room jam, seq 1..N

before(async () => {
  relay = await new Relay({ args: ['--evals-per-second', '200'] }).start(); // 30 evals at once
  key = relay.key();
  const rec = new Recorder(relay, 'jam');
  await rec.ready;
  const ed = await Peer.join(relay, 'jam', 'editor', 'ed');
  for (const [i, s] of session().entries()) {
    ed.send({ t: 'eval', req: i + 1, lang: s.lang || 'c', source: s.source, expr: !!s.expr });
    const d = await ed.waitFor((f) => (f.t === 'diag' || f.t === 'error') && f.req === i + 1, `eval ${i + 1}`);
    assert.ok(d.ok, `eval ${i + 1}: ${JSON.stringify(d)}`);
    assert.equal(d.seq, i + 1);
    frames.push(await rec.patch(d.seq));
  }
  ed.close();
  head = rec.heads[0]; // it names the room's epoch
  epoch = decode(decode(head).stmt)[3];
  rec.close();
});
afterEach(closeBareRuntimes);
after(async () => { await relay?.stop(); });

function newPlayer(every) {
  const { createRuntime, moduleArgs } = loadRuntime();
  const p = new HistoryPlayer({ createRuntime, moduleArgs, room: 'jam', key, epoch, canvas: { width: 48, height: 32 },
                                every });
  p.setPatches(frames);
  return p;
}

// Every PB_STATE cell (name -> hex) and the picture of room time T (its
// sha256), drawn through draw (the player's own drawAt for the player: a
// frame may change state, and the player must know it drew one).
function look(host, draw = (t) => host.drawAt(t)) {
  const cells = {};
  for (const st of host.generation({ withFrames: false }).states)
    cells[st.name] = Buffer.from(st.bytes).toString('hex');
  if (!host.canvas) host.attachCanvas(48, 32);
  const r = draw(T);
  return { seq: host.committedSeq, cells,
           pixels: r.ok ? createHash('sha256').update(host.canvas.pixels()).digest('hex') : 'none' };
}
const lookPlayer = async (p, n) => { const host = await p.seek(n); return look(host, (t) => p.drawAt(t)); };

// A fresh runtime that received only patches 1..n.
async function fresh(n) {
  const rt = await bareRuntime('jam', key, { now: 4e15, head });
  for (let s = 1; s <= n; s++) {
    const ev = rt.receive(frames[s - 1]);
    assert.ok(ev.ok || ev.code === 62, `seq ${s}: ${ev.error}`);
  }
  return rt;
}

test('the room at patch N is what a fresh runtime given 1..N has', async () => {
  const p = newPlayer(4);
  await p.index();
  assert.ok(p.checkpoints.length >= N / 4, `${p.checkpoints.length} checkpoints`);
  // forward, backward, at and between checkpoints, walking on by one
  for (const n of [N, 12, 5, 29, 0, 17, 18, 19, 8, 4, 1, 26]) {
    // drawing changes the player's state (acc += 1): the next seek must
    // not start from it
    assert.deepEqual(await lookPlayer(p, n), look(await fresh(n)), `patch ${n}`);
  }
  p.close();
});

test('a seek without checkpoints walks from the start and agrees', async () => {
  const p = newPlayer(1000); // no checkpoint but the empty room
  for (const n of [9, 3, N]) assert.deepEqual(await lookPlayer(p, n), look(await fresh(n)), `patch ${n}`);
  p.close();
});

test('a session with a broken link stops before it', async () => {
  const p = newPlayer(4);
  const damaged = frames.map((f, i) => {
    if (i !== 9) return f;
    const d = decode(f);
    d.stmt = Uint8Array.from(d.stmt);
    d.stmt[d.stmt.length - 3] ^= 1; // in the key: the statement is changed
    return encode(d);
  });
  const v = await p.verify(damaged);
  assert.equal(v.good, 9);
  assert.equal(v.failure.index, 10);
  assert.equal(v.failure.code, 20, 'bad signature');
  const clean = await p.verify(frames);
  assert.equal(clean.good, N);
  assert.equal(clean.failure, null);
  p.close();
});
