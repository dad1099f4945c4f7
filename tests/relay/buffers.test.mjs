// buffers.test.mjs — the relay's side of shared buffers (docs/PROTOCOL.md
// § Shared buffers) against `patchbay serve` on a free loopback port and
// its real SQLite file, with plain WebSocket clients carrying real Yjs
// updates (npm's yjs): what is acknowledged is stored and survives kill -9,
// the others get it in order with its author, a late joiner converges from
// the stored updates, roles hold (viewers and runtimes cannot write,
// runtimes get nothing), presence is relayed and replayed, the limits
// refuse with messages that name them, and a compaction keeps a join short.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join as path } from 'node:path';
import * as Y from 'yjs';
import { Awareness, encodeAwarenessUpdate, applyAwarenessUpdate } from 'y-protocols/awareness';
import { ServedRelay } from '../serve.mjs';
import { Peer } from '../peer.mjs';

const CLI = process.env.PB_CLI;
if (!CLI) throw new Error('set PB_CLI (ctest does)');
let relay;

// The tests type faster than a person; the rate per token name has a test
// of its own.
const ARGS = ['--quiet', '--buffer-writes-per-second', '100000'];

before(async () => {
  relay = new ServedRelay(CLI, 'pb-buffers-');
  await relay.serve(ARGS);
});

after(async () => {
  await relay?.stop();
});

const E = { FIELD_RANGE: 10, FORBIDDEN: 46, RATE_LIMITED: 47, ROOM_FULL: 48, UNEXPECTED: 50, TOO_BIG: 4 };

// An editor page's side, by hand: a Yjs document per buffer fed from the
// relay's frames.
class Editor {
  static async join(r, room, role, name, extra = { buffers: true }) {
    const e = new Editor();
    e.peer = await Peer.join(r, room, role, name, extra);
    e.peer.on((f) => e.onFrame(f));
    for (const f of e.peer.frames) e.onFrame(f);
    e.req = 0;
    return e;
  }

  constructor() { this.docs = new Map(); this.list = null; this.useq = new Map(); }

  doc(id) {
    if (!this.docs.has(id)) this.docs.set(id, new Y.Doc());
    return this.docs.get(id);
  }

  text(id) { return this.doc(id).getText('text').toString(); }

  onFrame(f) {
    if (f.t === 'buffers') this.list = f.buffers || [];
    if (f.t === 'buffer_sync') for (const u of f.updates || []) Y.applyUpdate(this.doc(f.buffer), u.data);
    if (f.t === 'buffer_sync' && !f.more) this.useq.set(f.buffer, f.useq || 0);
    if (f.t === 'buffer_update') { Y.applyUpdate(this.doc(f.buffer), f.data); this.useq.set(f.buffer, f.useq); }
  }

  synced(id) { return this.peer.waitFor((f) => f.t === 'buffer_sync' && f.buffer === id && !f.more, `sync of ${id}`); }

  async create(name, lang = 'c') {
    const req = ++this.req;
    this.peer.send({ t: 'buffer_op', req, op: 'create', name, lang });
    const f = await this.peer.waitFor((x) => (x.t === 'buffers' && x.req === req && x.peer === this.peer.welcome.client_id) ||
                                              (x.t === 'error' && x.req === req), `create ${name}`);
    if (f.t === 'error') throw Object.assign(new Error(f.message), { code: f.code });
    return f.buffers.find((b) => b.name === name).id;
  }

  // Types text at index in buffer id; resolves with the relay's answer
  // (buffer_ack or error).
  type(id, index, text) {
    const doc = this.doc(id);
    let update;
    const grab = (u) => { update = u; };
    doc.on('update', grab);
    doc.getText('text').insert(index, text);
    doc.off('update', grab);
    return this.sendUpdate(id, update);
  }

  sendUpdate(id, data) {
    const req = ++this.req;
    this.peer.send({ t: 'buffer_update', buffer: id, req, data });
    return this.peer.waitFor((x) => (x.t === 'buffer_ack' || x.t === 'error') && x.req === req, `answer to ${req}`);
  }

  close() { this.peer.close(); }
}

const until = async (what, fn, ms = 10000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('an update is acknowledged with its place, forwarded in order with its author, and a late joiner converges', async () => {
  const a = await Editor.join(relay, 'two', 'editor', 'ada');
  const b = await Editor.join(relay, 'two', 'editor', 'bob');
  assert.deepEqual(a.list, [], 'a new room has no buffer');
  const id = await a.create('main.c');
  await b.peer.waitFor((f) => f.t === 'buffers' && (f.buffers || []).length === 1, 'bob sees the new buffer');
  const ack = await a.type(id, 0, 'double ggg(double v) { return v + 48; }\n');
  assert.equal(ack.t, 'buffer_ack');
  assert.equal(ack.useq, 1);
  const fwd = await b.peer.waitFor((f) => f.t === 'buffer_update' && f.useq === 1, 'forwarded');
  assert.equal(fwd.peer, a.peer.welcome.client_id, 'the forwarded update names its author');
  assert.equal(fwd.req, undefined);
  assert.equal(a.peer.frames.filter((f) => f.t === 'buffer_update').length, 0, 'the author is not sent its own update');
  // both type at once; every update gets the next place
  const acks = await Promise.all([a.type(id, 0, '// ada\n'), b.type(id, 0, '// bob\n')]);
  assert.deepEqual(acks.map((x) => x.useq).sort(), [2, 3]);
  await until('the two converge', () => a.text(id) === b.text(id) && a.text(id).includes('// bob'));
  const c = await Editor.join(relay, 'two', 'editor', 'cy');
  await c.synced(id);
  assert.equal(c.text(id), a.text(id));
  assert.equal(c.useq.get(id), 3);
  for (const e of [a, b, c]) e.close();
});

test('viewers see the text and cannot change it; runtimes and clients that did not ask get no buffer traffic', async () => {
  const a = await Editor.join(relay, 'roles', 'owner', 'ada');
  const id = await a.create('main.c');
  await a.type(id, 0, 'int x;\n');
  const v = await Editor.join(relay, 'roles', 'viewer', 'vi');
  await v.synced(id);
  assert.equal(v.text(id), 'int x;\n');
  // a crafted update from the viewer's token
  const forged = new Y.Doc();
  forged.getText('text').insert(0, 'viewer was here');
  const refused = await v.sendUpdate(id, Y.encodeStateAsUpdate(forged));
  assert.equal(refused.t, 'error');
  assert.equal(refused.code, E.FORBIDDEN);
  assert.match(refused.message, /viewer may not send buffer_update/);
  v.peer.send({ t: 'buffer_op', req: 9, op: 'create', name: 'x.c', lang: 'c' });
  await v.peer.waitFor((f) => f.t === 'error' && f.code === E.FORBIDDEN && /buffer_op/.test(f.message), 'op refused');
  const rt = await Peer.join(relay, 'roles', 'runtime', 'rt', { buffers: true });
  const plain = await Peer.join(relay, 'roles', 'editor', 'cli'); // no hello.buffers
  plain.send({ t: 'buffer_update', buffer: id, req: 1, data: Y.encodeStateAsUpdate(forged) });
  await plain.waitFor((f) => f.t === 'error' && f.code === E.UNEXPECTED, 'refused: did not ask for buffers');
  rt.send({ t: 'buffer_aware', buffer: id, data: new Uint8Array([0]) });
  await rt.waitFor((f) => f.t === 'error' && f.code === E.FORBIDDEN, 'runtime presence refused');
  await a.type(id, 7, 'int y;\n');
  const late = await Editor.join(relay, 'roles', 'editor', 'late');
  await late.synced(id);
  assert.equal(late.text(id), 'int x;\nint y;\n', 'nothing of the refused updates was stored');
  for (const c of [rt, plain]) assert.deepEqual(c.frames.filter((f) => f.t.startsWith('buffer')), [], 'no buffer frames');
  assert.ok(!v.peer.frames.some((f) => f.t === 'buffer_ack'));
  for (const c of [a, v, late]) c.close();
  for (const c of [rt, plain]) c.close();
});

test('presence is forwarded with its sender and replayed to those who join later', async () => {
  const a = await Editor.join(relay, 'here', 'editor', 'ada');
  const id = await a.create('main.c');
  const b = await Editor.join(relay, 'here', 'editor', 'bob');
  const aw = new Awareness(a.doc(id));
  try {
    aw.setLocalState({ user: { name: 'ada', color: '#e0803a' }, cursor: { anchor: 1, head: 3 } });
    a.peer.send({ t: 'buffer_aware', buffer: id, data: encodeAwarenessUpdate(aw, [a.doc(id).clientID]) });
    const got = await b.peer.waitFor((f) => f.t === 'buffer_aware', 'bob sees ada');
    assert.equal(got.peer, a.peer.welcome.client_id);
    const seen = new Awareness(new Y.Doc());
    applyAwarenessUpdate(seen, got.data, 'relay');
    assert.deepEqual(seen.getStates().get(a.doc(id).clientID).user, { name: 'ada', color: '#e0803a' });
    seen.destroy();
    const c = await Editor.join(relay, 'here', 'viewer', 'cy');
    const replay = await c.peer.waitFor((f) => f.t === 'buffer_aware', 'the late viewer sees ada');
    assert.equal(replay.peer, a.peer.welcome.client_id);
    // a viewer is seen too
    c.peer.send({ t: 'buffer_aware', buffer: id, data: replay.data });
    await a.peer.waitFor((f) => f.t === 'buffer_aware' && f.peer === c.peer.welcome.client_id, 'ada sees the viewer');
    c.close();
  } finally {
    aw.destroy();
  }
  a.close();
  b.close();
});

test('buffers are created, renamed and closed for everyone; bad names and unknown buffers are refused', async () => {
  const a = await Editor.join(relay, 'tabs', 'editor', 'ada');
  const b = await Editor.join(relay, 'tabs', 'editor', 'bob');
  const one = await a.create('main.c');
  const two = await a.create('visual.cljc', 'lisp');
  await assert.rejects(b.create('main.c'), (e) => e.code === E.FIELD_RANGE && /already has a buffer named "main.c"/.test(e.message));
  await assert.rejects(b.create(''), (e) => e.code === E.FIELD_RANGE);
  await assert.rejects(b.create('a\tb'), (e) => e.code === E.FIELD_RANGE && /control characters/.test(e.message));
  b.peer.send({ t: 'buffer_op', req: 50, op: 'set', buffer: two, name: 'sketch.cljc' });
  await a.peer.waitFor((f) => f.t === 'buffers' && f.req === 50 && f.buffers.some((x) => x.name === 'sketch.cljc' && x.lang === 'lisp'), 'renamed');
  b.peer.send({ t: 'buffer_op', req: 51, op: 'close', buffer: one });
  await a.peer.waitFor((f) => f.t === 'buffers' && f.req === 51 && (f.buffers || []).length === 1, 'closed');
  const late = await b.sendUpdate(one, Y.encodeStateAsUpdate(new Y.Doc()));
  assert.equal(late.code, E.FIELD_RANGE);
  assert.match(late.message, /^buffer_update \d+: room tabs has no open buffer/);
  b.peer.send({ t: 'buffer_aware', buffer: one, data: new Uint8Array([0]) });
  const aw = await b.peer.waitFor((f) => f.t === 'error' && /^buffer_aware:/.test(f.message), 'presence in a closed buffer refused');
  assert.equal(aw.message, `buffer_aware: room tabs has no open buffer ${one}`);
  a.close();
  b.close();
});

test('an eval from a buffer is announced with its range and author once it is a patch', async () => {
  const a = await Editor.join(relay, 'evals', 'editor', 'ada');
  const id = await a.create('main.c');
  const b = await Editor.join(relay, 'evals', 'viewer', 'vi');
  const src = 'double ggg(double v) { return v + 49; }\n';
  await a.type(id, 0, src);
  const t = a.doc(id).getText('text');
  const start = Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(t, 0));
  const end = Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(t, src.length - 1));
  a.peer.send({ t: 'eval', req: 77, lang: 'c', source: src, buffer: id, start, end });
  const diag = await a.peer.waitFor((f) => f.t === 'diag' && f.req === 77, 'diag', 30000);
  assert.ok(diag.ok, JSON.stringify(diag));
  for (const who of [a, b]) {
    const ev = await who.peer.waitFor((f) => f.t === 'buffer_eval', 'buffer_eval');
    assert.equal(ev.seq, diag.seq);
    assert.equal(ev.author, 'ada');
    assert.equal(ev.peer, a.peer.welcome.client_id);
    assert.deepEqual([...ev.start], [...start]);
    assert.deepEqual([...ev.end], [...end]);
  }
  a.close();
  b.close();
});

test('kill -9 after acknowledgements loses none of them', async () => {
  const a = await Editor.join(relay, 'crash', 'editor', 'ada');
  const id = await a.create('main.c');
  let acked = 0;
  for (let i = 0; i < 50; i++) {
    const r = await a.type(id, a.text(id).length, `${i};`);
    assert.equal(r.t, 'buffer_ack');
    acked = r.useq;
  }
  const text = a.text(id);
  await relay.kill();
  await relay.serve(ARGS);
  const b = await Editor.join(relay, 'crash', 'editor', 'bob');
  await b.synced(id);
  assert.equal(b.useq.get(id), acked);
  assert.equal(b.text(id), text);
  b.close();
});

test('the limits: bytes per buffer, buffers per room, writes per token name, each refused by name', async () => {
  const small = new ServedRelay(CLI, 'pb-buffers-limits-');
  try {
    await small.serve(['--quiet', '--buffer-bytes', '4000', '--max-buffers', '2', '--buffer-writes-per-second', '5']);
    const a = await Editor.join(small, 'lim', 'editor', 'ada');
    const id = await a.create('main.c');
    await a.create('b.c');
    await assert.rejects(a.create('c.c'), (e) => e.code === E.ROOM_FULL && /--max-buffers/.test(e.message));
    const big = await a.type(id, 0, 'x'.repeat(5000));
    assert.equal(big.code, E.TOO_BIG);
    assert.match(big.message, /buffer main.c holds 0 of its 4000 bytes \(serve --buffer-bytes\)/);
    // 5 a second with a burst of 20 (the ops above took 4): sent at once,
    // so that a slow machine does not refill the bucket between them
    const answers = await Promise.all(Array.from({ length: 25 }, () => a.type(id, 0, 'y')));
    const limited = answers.filter((x) => x.t === 'error');
    assert.ok(limited.length >= 4, `${limited.length} refused`);
    assert.equal(limited[0].code, E.RATE_LIMITED);
    assert.match(limited[0].message, /ada sends more than 5 buffer writes per second \(serve --buffer-writes-per-second\)/);
    // the same name on a second connection does not get a fresh budget
    // (a fresh budget would take a burst of 20)
    const again = await Editor.join(small, 'lim', 'editor', 'ada');
    await again.synced(id);
    const more = await Promise.all(Array.from({ length: 6 }, () => again.type(id, 0, 'z')));
    assert.ok(more.some((x) => x.code === E.RATE_LIMITED), JSON.stringify(more.map((x) => x.t)));
    a.close();
    again.close();
  } finally {
    await small.stop();
  }
});

test('compaction: the relay asks for it, a snapshot replaces the stored updates, and a join gets one update', async () => {
  const a = await Editor.join(relay, 'long', 'editor', 'ada');
  const id = await a.create('main.c');
  const mirror = new Y.Doc(); // exactly what the relay stored
  let last;
  for (let i = 0; i < 520; i++) {
    const doc = a.doc(id);
    let update;
    const grab = (u) => { update = u; };
    doc.on('update', grab);
    doc.getText('text').insert(doc.getText('text').length, `${i % 10}`);
    doc.off('update', grab);
    last = await a.sendUpdate(id, update);
    assert.equal(last.t, 'buffer_ack');
    Y.applyUpdate(mirror, update);
  }
  assert.ok(last.compact, 'past 500 updates the ack asks for a compaction');
  a.peer.send({ t: 'buffer_compact', buffer: id, req: 900, useq: last.useq, data: Y.encodeStateAsUpdate(mirror) });
  const done = await a.peer.waitFor((f) => (f.t === 'buffer_ack' || f.t === 'error') && f.req === 900, 'compaction answered');
  assert.equal(done.t, 'buffer_ack');
  await a.type(id, 0, '>');
  a.peer.send({ t: 'buffer_compact', buffer: id, req: 901, useq: last.useq, data: Y.encodeStateAsUpdate(mirror) });
  const again = await a.peer.waitFor((f) => f.t === 'error' && f.req === 901, 'a second compaction to the same point');
  assert.equal(again.code, E.FIELD_RANGE);
  const b = await Editor.join(relay, 'long', 'editor', 'bob');
  const sync = await b.synced(id);
  assert.equal(sync.updates.length, 2, 'the snapshot and the update after it');
  assert.ok(!sync.compact);
  assert.equal(b.text(id), a.text(id));
  assert.equal(b.useq.get(id), last.useq + 1);
  a.close();
  b.close();
});
