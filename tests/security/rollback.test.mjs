// rollback.test.mjs — rollback through an unsigned welcome (issue 15, hole
// 2). A man in the middle records what the relay sent a runtime when the
// room was at seq 1 (welcome, the signed head, the catch-up: all authentic)
// and later, when the room is at seq 3, answers a runtime's join with that
// recording. welcome is not signed, so its head_seq proves nothing; the
// old signed head and the old patches are authentic but old. A runtime
// must not go back: it never resets on welcome (only on a signed head of a
// later epoch), refuses the replayed patches, and remembers the highest
// head it verified per (relay key, room) — a file for the node runtime,
// localStorage for a page — so a restarted runtime refuses them too. When
// the attacker stops, it catches up honestly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Recorder, joinRoom, until, PB } from '../runtime/harness.mjs';
import { typeOf } from './attacker.mjs';
import { H, mitm, relay, relayBehindMitm, runtimePage } from './scene.mjs';


relayBehindMitm();

const honest = (b) => [b];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Room `name` at seq 1 (ggg + 48); a runtime that joins then is recorded:
// what the relay sent it on joining (welcome, signed head, catch-up). Then
// seqs 2 (ggg + 49) and 3 (hhh).
async function recordedRoom(name) {
  await relay.eval(name, `${H}double ggg(double v) { return v + 48; }\n`);
  const from = mitm.seen.length;
  const rec = await joinRoom(mitm.link(relay.link(name, 'recorded')), { name: 'recorded', store: null });
  const old = {};
  try {
    await until(() => rec.committedSeq === 1, 'the recorded runtime at seq 1');
    for (const s of mitm.seen.slice(from))
      if (s.dir === 'client' && ['welcome', 'head', 'history'].includes(s.t)) old[s.t] ??= s.bytes;
  } finally {
    rec.close();
  }
  assert.ok(old.welcome && old.history, 'the join was recorded');
  await relay.eval(name, `${H}double ggg(double v) { return v + 49; }\n`);
  await relay.eval(name, `${H}double hhh(double v) { return v * 2; }\n`);
  return old;
}

// The attacker answers every join with the recording; nothing else of the
// relay's reaches the runtime.
const replay = (old) => (bytes) => {
  const t = typeOf(bytes);
  if (t === 'welcome') return [old.welcome, ...(old.head ? [old.head] : []), old.history];
  return t === 'room' || t === 'pong' ? [bytes] : [];
};

test('node runtime: a forged welcome with a lower head_seq, and the old catch-up, do not take it back', async () => {
  const old = await recordedRoom('live');
  const rt = await joinRoom(mitm.link(relay.link('live', 'node')), { name: 'node', backoffMs: 100 });
  try {
    await until(() => rt.committedSeq === 3, 'caught up to seq 3');
    const rejects = [], resets = [];
    rt.on('reject', (r) => rejects.push(r));
    rt.on('reset', (r) => resets.push(r));
    mitm.toClient = replay(old);
    mitm.cut();
    await until(() => rejects.some((r) => r.code === PB.PB_ERR_CHAIN_REPLAY), 'the replayed catch-up refused');
    assert.deepEqual(resets, [], 'no reset on an unsigned welcome');
    assert.equal(rt.headSeq, 3, 'the head did not go back');
    assert.equal(rt.call('ggg', 10), 59);
    assert.equal(rt.call('hhh', 10), 20);
    mitm.toClient = honest;
    mitm.cut();
    const { seq } = await relay.eval('live', `${H}double ggg(double v) { return v + 50; }\n`);
    await until(() => rt.committedSeq === seq, `the next honest patch, seq ${seq}`);
    assert.equal(rt.call('ggg', 10), 60);
  } finally {
    rt.close();
    mitm.toClient = honest;
  }
});

test('node runtime: restarted, it remembers its highest verified head and refuses the old history', async () => {
  const old = await recordedRoom('restart');
  let rt = await joinRoom(mitm.link(relay.link('restart', 'node')), { name: 'node', backoffMs: 100 });
  try {
    await until(() => rt.committedSeq === 3, 'caught up to seq 3');
    rt.close();
    // a new process of the same device: same key, room and state folder
    mitm.toClient = replay(old);
    rt = await joinRoom(mitm.link(relay.link('restart', 'node')), { name: 'node', backoffMs: 100 });
    const rejects = [];
    rt.on('reject', (r) => rejects.push(r));
    await until(() => rejects.some((r) => r.code === PB.PB_ERR_CHAIN_REPLAY), 'the old state catch-up refused');
    assert.match(rejects.find((r) => r.code === PB.PB_ERR_CHAIN_REPLAY).error,
                 /ends at seq 1, but this runtime verified seq 3 of it before/);
    assert.equal(rt.headSeq, 0, 'nothing of the old history is applied');
    assert.equal(rt.varFn('ggg'), 0);
    mitm.toClient = honest;
    await until(() => rt.committedSeq === 3, 'the honest catch-up, after the runtime asked again');
    assert.equal(rt.call('ggg', 10), 59);
  } finally {
    rt.close();
    mitm.toClient = honest;
  }
});

test('Chromium runtime page: reloaded, it remembers its head (localStorage) and refuses the old history', async () => {
  const old = await recordedRoom('page');
  const { page, errors, wait } = await runtimePage(mitm.link(relay.link('page', 'page')));
  await wait(() => window.patchbay.stats.committedSeq === 3, null, 'caught up to seq 3');
  mitm.toClient = replay(old);
  await page.reload();
  await wait((c) => window.patchbay.rejects.some((r) => r.code === c), PB.PB_ERR_CHAIN_REPLAY,
             'the old state catch-up refused');
  await wait(() => window.patchbay.stats.frames > 0, null, 'the page draws');
  assert.equal(await page.evaluate(() => window.patchbay.stats.headSeq), 0);
  mitm.toClient = honest;
  await wait(() => window.patchbay.stats.committedSeq === 3, null, 'the honest catch-up');
  assert.deepEqual(errors, []);
});

// The floor binds every path, not only a state catch-up's end: a restarted
// runtime (its floor: seq 3) whose state catch-up is dropped is fed the
// room's old, authentic live patch of seq 1 right after the signed head.
test('node runtime restarted at its floor: a replayed old live patch is refused, nothing below the floor runs', async () => {
  const rec = new Recorder(relay, 'floorlive');
  await rec.ready;
  for (const k of [48, 49, 50]) await relay.eval('floorlive', `${H}double ggg(double v) { return v + ${k}; }\n`);
  const old1 = await rec.patch(1);
  rec.close();
  const stateDir = mkdtempSync(join(tmpdir(), 'pb-floor-'));
  let rt = await joinRoom(mitm.link(relay.link('floorlive', 'node')), { name: 'node', backoffMs: 100, stateDir });
  try {
    await until(() => rt.committedSeq === 3, 'seq 3');
    rt.close();
    const files = readdirSync(stateDir).filter((f) => f.startsWith('head-'));
    assert.equal(JSON.parse(readFileSync(join(stateDir, files[0]), 'utf8')).seq, 3, 'the persisted floor is seq 3');
    let replayed = false;
    mitm.toClient = (b) => {
      const t = typeOf(b);
      if (t === 'history' || t === 'patch') return [];
      if (t === 'head' && !replayed) { replayed = true; return [b, old1]; }
      return [b];
    };
    rt = await joinRoom(mitm.link(relay.link('floorlive', 'node')), { name: 'node', backoffMs: 100, stateDir });
    await until(() => replayed, 'the replay', 10000);
    await sleep(2000); // the old patch was due long ago: it would have committed at once
    const state = { headSeq: rt.headSeq, committedSeq: rt.committedSeq, ggg: rt.varFn('ggg') ? rt.call('ggg', 10) : null };
    assert.deepEqual(state, { headSeq: 0, committedSeq: 0, ggg: null }, 'nothing below the floor is taken or runs');
    mitm.toClient = honest;
    await until(() => rt.committedSeq === 3, 'honest again: the state catch-up takes it to seq 3', 20000);
    assert.equal(rt.call('ggg', 10), 60);
  } finally {
    rt.close();
    mitm.toClient = honest;
  }
});
