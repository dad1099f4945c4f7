// devices.test.mjs — the relay's side of the device farm (docs/PROTOCOL.md
// § Device testing), against `patchbay serve` on a free loopback port with
// plain WebSocket clients speaking the frames by hand: a runtime's
// description reaches the editors, test requests carry the seq they are
// for, a picture goes to the editor who asked and nobody else, a damaged
// picture is refused and counted against the runtime's budget of refused
// frames (until it is disconnected, while everyone else is served), a
// runtime back on a new connection (the same device_id) replaces its old
// one, and the room's recent device output is replayed to whoever asks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join as path } from 'node:path';
import { ServedRelay } from '../serve.mjs';
import { Peer } from '../peer.mjs';
import { encode } from '../../web/src/msgpack.js';
import { encodePNG } from '../../runtime/png.js';

const CLI = process.env.PB_CLI;
if (!CLI) throw new Error('set PB_CLI (ctest does)');
const ROOM = 'farm';
let relay;

const join = (role, name, extra) => Peer.join(relay, ROOM, role, name, extra);

const DEVICE = { label: 'phone-sim', platform: 'node test', canvas_w: 390, canvas_h: 844, screen_w: 390,
                 screen_h: 844, dpr: 3, features: 'bigint,simd', ram_bytes: 4 * 2 ** 30, cores: 4 };

before(async () => {
  relay = new ServedRelay(CLI, 'pb-devices-');
  await relay.serve([]);
});

after(async () => {
  await relay?.stop();
});

test('a runtime describes itself: editors see its label, canvas, screen, features and clock uncertainty', async () => {
  const ed = await join('editor', 'ada');
  const rt = await join('runtime', 'rt', DEVICE);
  rt.send({ t: 'ping', t0_us: Date.now() * 1000, unc_us: 420 });
  await rt.waitFor((f) => f.t === 'pong', 'pong');
  const joined = await ed.waitFor((f) => f.t === 'peers' && f.event === 'join', 'join announced');
  const p = joined.peers[0];
  for (const [k, v] of Object.entries(DEVICE)) assert.equal(p[k], v, k);
  // a later snapshot carries the uncertainty from the runtime's ping
  const late = await join('viewer', 'late');
  const snap = await late.waitFor((f) => f.t === 'peers' && f.event === 'snapshot', 'snapshot');
  const me = snap.peers.find((x) => x.id === rt.welcome.client_id);
  assert.equal(me.label, 'phone-sim');
  assert.equal(me.unc_us, 420);
  for (const c of [ed, rt, late]) c.close();
});

test('a test request carries the room head it is for, unless the editor names a seq', async () => {
  const src = path(relay.dir, 'one.c');
  writeFileSync(src, '#include <patchbay.h>\ndouble one(void) { return 1; }\n');
  execFileSync(CLI, ['eval', '--url', `ws://127.0.0.1:${relay.port}`, '--room', ROOM,
                     '--token', relay.token(ROOM, 'editor', 'ada'), src]);
  const ed = await join('editor', 'ada');
  const rt = await join('runtime', 'rt', DEVICE);
  ed.send({ t: 'test_req', req: 3, filter: 'x' });
  const q = await rt.waitFor((f) => f.t === 'test_req' && f.req === 3, 'test_req forwarded');
  assert.equal(q.seq, ed.welcome.head_seq);
  assert.ok(q.seq >= 1);
  ed.send({ t: 'test_req', req: 4, seq: 99 });
  assert.equal((await rt.waitFor((f) => f.t === 'test_req' && f.req === 4, 'second')).seq, 99);
  // a runtime may not ask for tests or pictures
  rt.send({ t: 'snapshot_req', req: 1 });
  const e = await rt.waitFor((f) => f.t === 'error', 'forbidden');
  assert.equal(e.code, 46);
  assert.match(e.message, /a runtime may not send snapshot_req/);
  for (const c of [ed, rt]) c.close();
});

test('a picture goes to the editor who asked, checked, and to nobody else', async () => {
  const ada = await join('editor', 'ada');
  const bob = await join('editor', 'bob');
  const rt = await join('runtime', 'rt', DEVICE);
  ada.send({ t: 'snapshot_req', req: 11, at_us: 5 });
  const q = await rt.waitFor((f) => f.t === 'snapshot_req' && f.req === 11, 'snapshot_req forwarded');
  assert.equal(q.editor_id, ada.welcome.client_id);
  assert.equal(q.at_us, 5);
  const rgba = new Uint8Array(4 * 3 * 2).fill(200);
  const png = await encodePNG(rgba, 3, 2);
  rt.send({ t: 'snapshot', req: 11, editor_id: q.editor_id, seq: 1, at_us: 5, width: 3, height: 2, png });
  const got = await ada.waitFor((f) => f.t === 'snapshot' && f.req === 11, 'picture delivered');
  assert.equal(got.runtime_id, rt.welcome.client_id);
  assert.deepEqual([...got.png], [...png]);
  // a picture that claims another size, or is not a PNG, goes nowhere
  rt.send({ t: 'snapshot', req: 12, editor_id: q.editor_id, width: 4, height: 2, png });
  let e = await rt.waitFor((f) => f.t === 'error' && f.req === 12, 'size mismatch refused');
  assert.match(e.message, /the PNG is 3x2, the frame says 4x2/);
  const broken = png.slice();
  broken[17] ^= 1; // inside IHDR: its CRC no longer matches
  rt.send({ t: 'snapshot', req: 13, editor_id: q.editor_id, width: 3, height: 2, png: broken });
  e = await rt.waitFor((f) => f.t === 'error' && f.req === 13, 'damaged IHDR refused');
  assert.match(e.message, /IHDR chunk is damaged/);
  rt.send({ t: 'snapshot', req: 14, editor_id: q.editor_id, width: 3, height: 2, png: png.slice(0, png.length - 5) });
  e = await rt.waitFor((f) => f.t === 'error' && f.req === 14, 'cut short refused');
  assert.match(e.message, /does not end with IEND/);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(ada.frames.filter((f) => f.t === 'snapshot').map((f) => f.req), [11]);
  assert.equal(bob.frames.filter((f) => f.t === 'snapshot').length, 0);
  for (const c of [ada, bob, rt]) c.close();
});

test('a runtime back with its device_id replaces its old connection, which was left open', async () => {
  const ed = await join('editor', 'ada');
  const id = '5e1f0c2a9b8d4e7f8a6b3c2d1e0f9a8b';
  // a page whose worker the watchdog terminated, or a phone now on another
  // network: its old socket is still open (and says nothing) when the
  // runtime says hello on a new one
  const old = await join('runtime', 'phone', { ...DEVICE, device_id: id });
  const twin = await join('runtime', 'phone', { ...DEVICE, device_id: 'f'.repeat(32) }); // another phone, same link
  const other = await join('runtime', 'tablet', { ...DEVICE, device_id: id }); // another token name
  const back = await join('runtime', 'phone', { ...DEVICE, device_id: id });
  const fatal = await old.waitFor((f) => f.t === 'error' && f.fatal, 'the old connection told why it is closed');
  assert.equal(fatal.code, 51);
  assert.match(fatal.message, new RegExp(`joined again as client ${back.welcome.client_id} \\(the same device_id\\)`));
  assert.ok((await old.closed).code > 0, 'the relay closed the old connection');
  // the editor saw the old one leave before the new one joined
  await ed.waitFor((f) => f.t === 'peers' && f.event === 'join' && f.peers[0].id === back.welcome.client_id,
                   'the new connection joins');
  const events = ed.frames.filter((f) => f.t === 'peers' && f.event !== 'snapshot')
    .map((f) => `${f.event} ${f.peers[0].id}`);
  assert.deepEqual(events.slice(-2), [`leave ${old.welcome.client_id}`, `join ${back.welcome.client_id}`]);
  // one entry per runtime for whoever comes next; the device_id is shown to nobody
  const late = await join('viewer', 'late');
  const snap = await late.waitFor((f) => f.t === 'peers' && f.event === 'snapshot', 'snapshot');
  const runtimes = snap.peers.filter((p) => p.role === 'runtime');
  assert.deepEqual(runtimes.map((p) => p.id).sort((a, b) => a - b),
                   [twin, other, back].map((c) => c.welcome.client_id));
  assert.ok(runtimes.every((p) => !('device_id' in p)));
  for (const c of [twin, other, back]) assert.equal(c.frames.filter((f) => f.t === 'error').length, 0);
  for (const c of [ed, twin, other, back, late]) c.close();
});

test('a runtime that keeps sending refused frames is disconnected; the room is still served', async () => {
  const ed = await join('editor', 'ada');
  const rt = await join('runtime', 'spammer', DEVICE);
  const bad = encode({ v: 1, t: 'test_result', req: 1, results: [{ name: 'x' }] }); // "ok" missing
  for (let i = 0; i < 40; i++) rt.ws.send(bad);
  const fatal = await rt.waitFor((f) => f.t === 'error' && f.fatal, 'disconnected', 15000);
  assert.equal(fatal.code, 47);
  assert.match(fatal.message, /more than 20 refused frames .* required field "ok" is missing/);
  const first = rt.frames.find((f) => f.t === 'error');
  assert.equal(first.code, 8); // each refusal says why
  await rt.closed;
  // everyone else is still served
  ed.send({ t: 'ping', t0_us: 1 });
  await ed.waitFor((f) => f.t === 'pong', 'the editor is still served');
  ed.close();
});

test('the room keeps its recent device output for whoever asks', async () => {
  const rt1 = await join('runtime', 'one', { ...DEVICE, label: 'one' });
  const rt2 = await join('runtime', 'two', { ...DEVICE, label: 'two' });
  for (let i = 0; i < 3; i++) rt1.send({ t: 'log', level: 'info', text: `one says ${i}`, seq: 1, var: 'pb_frame' });
  rt2.send({ t: 'log', level: 'trap', text: 'two trapped', seq: 1, var: 'ggg' });
  rt1.send({ t: 'ack', seq: 1, state: 'committed', prepare_us: 900 });
  const viewer = await join('viewer', 'late');
  // the frames reached the relay before the viewer asked: wait for one's ack
  await new Promise((r) => setTimeout(r, 300));
  viewer.send({ t: 'log_req', req: 5 });
  const end = await viewer.waitFor((f) => f.t === 'log_end' && f.req === 5, 'log_end');
  // in the order each runtime sent them (two sockets race each other)
  const of = (rt) => viewer.frames.filter((f) => (f.t === 'log' || f.t === 'ack') && f.runtime_id === rt.welcome.client_id)
    .map((f) => f.text || `ack ${f.state}`);
  assert.deepEqual(of(rt1), ['one says 0', 'one says 1', 'one says 2', 'ack committed']);
  assert.deepEqual(of(rt2), ['two trapped']);
  assert.ok(end.count >= 5);
  // one runtime's only
  viewer.send({ t: 'log_req', req: 6, runtime_id: rt2.welcome.client_id });
  const end2 = await viewer.waitFor((f) => f.t === 'log_end' && f.req === 6, 'second log_end');
  assert.equal(end2.count, 1);
  for (const c of [rt1, rt2, viewer]) c.close();
});
