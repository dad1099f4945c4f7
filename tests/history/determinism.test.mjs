// determinism.test.mjs — what makes a replay show what happened
// (docs/ARCHITECTURE.md § Determinism): a runtime that catches up runs
// every patch's pb_init and every expression in order, as the room did;
// rand() is seeded per patch from its origin (room, seq), so a replay into
// another room draws the same picture and builds the same state, while the
// same sources evaluated afresh do not; a generation reload keeps the seed.
// Real relay, real compiler, real signed patches fed to node runtimes.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, encode, decode } from '../runtime/harness.mjs';
import { Peer } from '../peer.mjs';

const H = '#include <patchbay.h>\n';
// Every piece of it draws random numbers: pb_init (twice), pb_frame and an
// expression. Evaluated in order as seq 1..4.
const SESSION = [
  { source: H + 'PB_STATE(unsigned, acc, 7);\nPB_STATE(int, inits, 0);\n' +
            'void pb_init(void) { acc = acc * 31u + (unsigned)rand(); inits++; }\n' +
            'unsigned state_acc(void) { return acc; }\nint state_inits(void) { return inits; }\n' },
  { source: H + 'void pb_frame(double t, pb_canvas *c) { (void)t; pb_clear(c, pb_rgb(0, 0, 0));\n' +
            '  for (int i = 0; i < 200; i++)\n' +
            '    pb_pixel(c, rand() % c->width, rand() % c->height, pb_rgb(rand() % 256, 255, 9)); }\n' },
  { source: H + 'PB_STATE(unsigned, acc, 7);\nPB_STATE(int, inits, 0);\n' +
            'void pb_init(void) { acc = acc * 17u + (unsigned)rand(); inits++; }\n' },
  { source: 'PB_STATE_OF(unsigned, acc) += (unsigned)(rand() % 1000)', expr: true },
];
const T = 12.5; // the room time every picture is drawn for (s)
const FAR_FUTURE = 4e15;

let relay, editor, key;
const rooms = {}; // room -> raw patch frames by seq
const heads = {}; // room -> its first signed head (it names the room's epoch)

// Evaluates the session in room as editor `ed`; origin: the room whose
// patches these repeat (a replay), or none.
async function evaluate(room, origin) {
  const rec = new Recorder(relay, room);
  await rec.ready;
  const ed = await Peer.join(relay, room, 'editor', 'ed');
  rooms[room] = {};
  for (const [i, s] of SESSION.entries()) {
    const req = i + 1;
    ed.send({ t: 'eval', req, lang: 'c', source: s.source, expr: !!s.expr,
              ...(origin ? { origin_room: origin, origin_seq: i + 1 } : {}) });
    const d = await ed.waitFor((f) => (f.t === 'diag' || f.t === 'error') && f.req === req, `eval ${req}`);
    assert.ok(d.ok, `${room} eval ${req}: ${JSON.stringify(d)}`);
    rooms[room][d.seq] = await rec.patch(d.seq);
  }
  heads[room] = rec.heads[0];
  ed.close();
  rec.close();
}

before(async () => {
  relay = await new Relay().start();
  key = relay.key();
  await evaluate('jam');
  await evaluate('replay', 'jam');
  await evaluate('afresh');
  editor = null;
});
afterEach(closeBareRuntimes);
after(async () => { editor?.close(); await relay?.stop(); });

// What a runtime holds: its state and the picture of room time T.
function look(rt) {
  if (!rt.canvas) rt.attachCanvas(64, 48);
  const r = rt.drawAt(T);
  assert.ok(r.ok, `pb_frame: ${JSON.stringify(r)}`);
  return { acc: rt.call('state_acc') >>> 0, inits: rt.call('state_inits'),
           pixels: Buffer.from(rt.canvas.pixels()).toString('base64') };
}

// A runtime of room that received its patches one by one, as they came.
async function live(room) {
  const rt = await bareRuntime(room, key, { now: FAR_FUTURE, head: heads[room] });
  for (const seq of Object.keys(rooms[room]).map(Number).sort((a, b) => a - b)) {
    const ev = rt.receive(rooms[room][seq]);
    assert.ok(ev.ok, `${room} seq ${seq}: ${ev.error}`);
  }
  return rt;
}

// A runtime of room that got them all in one catch-up batch (a
// reconnect's range catch-up, a replay player).
async function caughtUp(room) {
  const rt = await bareRuntime(room, key, { now: FAR_FUTURE, head: heads[room] });
  const items = Object.keys(rooms[room]).map(Number).sort((a, b) => a - b).map((s) => {
    const p = decode(rooms[room][s]);
    return { stmt: p.stmt, sig: p.sig, module: p.module, source: p.source };
  });
  const ev = rt.receive(encode({ v: 1, t: 'history', req: 0, head_seq: items.length, more: false, items }));
  assert.equal(ev.failed, 0, JSON.stringify(ev));
  return rt;
}

test('a catch-up runs every pb_init and expression in order, as the room did', async () => {
  const a = look(await live('jam'));
  assert.equal(a.inits, 2, 'both pb_inits ran live');
  const b = look(await caughtUp('jam'));
  assert.equal(b.inits, 2, 'both pb_inits ran in the catch-up, not only the last');
  assert.deepEqual(b, a);
});

test('a replay into another room draws the same picture and builds the same state', async () => {
  const original = look(await live('jam'));
  const replayed = look(await live('replay'));
  assert.deepEqual(replayed, original);
  // the replayed statements say where they come from
  const st = decode(decode(rooms.replay[2]).stmt);
  assert.equal(st[0], 3, 'a version 3 statement');
  assert.deepEqual([st[13], st[14]], ['jam', 2]);
  // the same sources evaluated afresh are other patches: other numbers
  const afresh = look(await live('afresh'));
  assert.notEqual(afresh.pixels, original.pixels);
  assert.notEqual(afresh.acc, original.acc);
});

test('the same room time draws the same picture; another one another', async () => {
  const rt = await live('jam');
  const one = look(rt);
  assert.deepEqual(look(rt), one);
  rt.drawAt(T + 1);
  assert.notEqual(Buffer.from(rt.canvas.pixels()).toString('base64'), one.pixels);
});

test('a generation reload keeps the seed of the last patch', async () => {
  const rt = await live('jam');
  const before = look(rt);
  assert.equal(await rt.reload(), true, 'reloaded');
  assert.deepEqual(look(rt), before);
});

test('an eval naming half an origin is refused', async () => {
  const ed = await Peer.join(relay, 'jam', 'editor', 'ed2');
  try {
    ed.send({ t: 'eval', req: 9, lang: 'c', source: SESSION[0].source, origin_room: 'jam' });
    const e = await ed.waitFor((f) => f.t === 'error' && f.req === 9, 'the refusal');
    assert.equal(e.code, 10);
    assert.match(e.message, /origin_room without origin_seq/);
    ed.send({ t: 'eval', req: 10, lang: 'c', source: SESSION[0].source, origin_seq: 3 });
    const e2 = await ed.waitFor((f) => f.t === 'error' && f.req === 10, 'the refusal');
    assert.match(e2.message, /origin_seq without origin_room/);
  } finally {
    ed.close();
  }
});
