// room.test.mjs — the end-to-end test of issues 5, 6 and 8: one real relay,
// ten node runtimes on real sockets, evals through the real CLI
// (`patchbay eval`). The seed demo in C and in Lisp on every runtime, a
// late joiner, a relay restart with patches evaluated while the runtimes
// are cut off (they must catch up, nothing missed or repeated), and the
// runtime CLI itself.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import WebSocket from 'ws';
import { Relay, joinRoom, until, spawnRuntimeCli, encode, decode, frame, PB, gatedWebSocket } from './harness.mjs';

const H = '#include <patchbay.h>\n';
const N = 10;
const ROOM = 'stage';
let relay;
const runtimes = [];
const gate = { open: true }; // closed: runtimes cannot reach the relay
const GatedWebSocket = gatedWebSocket(gate);

async function join(name) {
  const rt = await joinRoom(relay.link(ROOM, name), {
    name, WebSocket: GatedWebSocket, backoffMs: 100, maxBackoffMs: 400,
  });
  rt.commits = [];
  rt.rejects = [];
  rt.welcomes = 0;
  rt.on('commit', (c) => rt.commits.push(c));
  rt.on('reject', (r) => rt.rejects.push(r));
  rt.on('welcome', () => { rt.welcomes++; });
  return rt;
}

const allLive = (rts, welcomes = 1) => () =>
  rts.every((r) => r.state === 'live' && r.welcomes >= welcomes);
const allAt = (rts, seq) => () => rts.every((r) => r.committedSeq >= seq);

before(async () => {
  relay = await new Relay().start();
  for (let i = 0; i < N; i++) runtimes.push(await join(`rt${i}`));
  await until(allLive(runtimes), `${N} runtimes joined`);
});

after(async () => {
  for (const r of runtimes) r.close();
  await relay?.stop();
});

async function evalEverywhere(source, lang, want) {
  const { stdout, seq } = await relay.eval(ROOM, source, { lang, runtimes: runtimes.length });
  assert.match(stdout, new RegExp(`seq ${seq} committed by ${runtimes.length} runtimes`), stdout);
  await until(allAt(runtimes, seq), `seq ${seq} on every runtime`);
  for (const r of runtimes) {
    assert.equal(r.call('ggg', 10), want, `${r.o.name} after seq ${seq}`);
    const c = r.commits.find((x) => x.seq === seq);
    assert.ok(c, `${r.o.name} committed seq ${seq}`);
    assert.ok(c.commit_at_us >= c.apply_us, 'never before the apply time');
  }
  return seq;
}

test('an eval reaches 10 runtimes: ggg(10) is 58, then 59 on every one, all committed', async () => {
  await evalEverywhere(H + 'double ggg(double v) { return v + 48; }\n', 'c', 58);
  await evalEverywhere(H + 'double ggg(double v) { return v + 49; }\n', 'c', 59);
  for (const r of runtimes) {
    assert.ok(r.clock.isSynced, `${r.o.name} synced its clock`);
    assert.ok(Number.isFinite(r.clock.uncertaintyUs));
  }
});

test('the same demo in Lisp: (defn ggg [v] (+ v 48)), then 49', async () => {
  await evalEverywhere('(defn ggg [v] (+ v 48))\n', 'lisp', 58);
  await evalEverywhere('(defn ggg [v] (+ v 49))\n', 'lisp', 59);
  for (const r of runtimes) assert.deepEqual(r.rejects, []);
});

test('a late joiner catches up to the same state', async () => {
  const head = runtimes[0].committedSeq;
  const late = await join('late');
  runtimes.push(late);
  await until(() => late.committedSeq === head, 'the late joiner at the head');
  assert.equal(late.call('ggg', 10), 59);
  assert.deepEqual(late.commits.map((c) => c.seq), Array.from({ length: head }, (_, i) => i + 1));
  assert.ok(late.commits.every((c) => c.catchup));
  assert.deepEqual(late.rejects, []);
});

test('after a relay restart the runtimes reconnect and catch up, nothing missed or repeated', async () => {
  await relay.kill();
  gate.open = false;
  await relay.start(); // same port, same data: same key and chain head
  // evaluated while every runtime is cut off
  const { seq } = await relay.eval(ROOM, H + 'double ggg(double v) { return v + 50; }\n');
  gate.open = true;
  await until(allLive(runtimes, 2), 'every runtime back');
  await until(allAt(runtimes, seq), `seq ${seq} caught up everywhere`);
  for (const r of runtimes) {
    assert.equal(r.call('ggg', 10), 60, r.o.name);
    assert.equal(r.commits.find((c) => c.seq === seq).catchup, true);
  }
  // and live patches flow again
  await evalEverywhere(H + 'double ggg(double v) { return v + 51; }\n', 'c', 61);
  for (const r of runtimes) {
    const seqs = r.commits.map((c) => c.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1),
                     `${r.o.name} committed every seq once, in order`);
    assert.deepEqual(r.rejects, [], `${r.o.name} refused nothing`);
  }
});

test('the runtime CLI: one line per patch, --help, and a clear error for a bad link', async () => {
  const p = spawnRuntimeCli([relay.link(ROOM, 'cli'), '--name', 'cli']);
  try {
    await until(() => p.lines.some((l) => /^\[cli\] live: runtime cli in stage/.test(l)),
                `the CLI live (${p.stderrText})`);
    await until(() => p.lines.some((l) => / committed ggg \(catch-up\)$/.test(l)), 'catch-up line');
    const { seq } = await relay.eval(ROOM, H + 'double ggg(double v) { return v + 52; }\n');
    await until(() => p.lines.some((l) => l.startsWith(`[cli] seq ${seq} committed ggg`)),
                `the CLI's line for seq ${seq}:\n${p.lines.join('\n')}`);
    assert.ok(p.lines.some((l) => new RegExp(`^\\[cli\\] seq ${seq} prepared \\(verify`).test(l)));
  } finally {
    p.kill('SIGTERM');
    await p.exited;
  }
  const help = spawnRuntimeCli(['--help']);
  assert.equal(await help.exited, 0);
  assert.match(help.lines.join('\n'), /^usage: patchbay-runtime <link>/);
  const bad = spawnRuntimeCli(['http://127.0.0.1:1/runtime.html#room=x&token=y']);
  assert.equal(await bad.exited, 2);
  assert.match(bad.stderrText, /join link lacks key \(64 hex digits\)/);
  const none = spawnRuntimeCli([]);
  assert.equal(await none.exited, 2);
  assert.match(none.stderrText, /a join link is required/);
  // a token the relay refuses: said once, no retrying, exit status 1
  const forged = relay.link(ROOM, 'cli2').replace(/token=([^&]*)/, (m, t) =>
    `token=${t.slice(0, -2)}${t.endsWith('AA') ? 'BB' : 'AA'}`);
  const refused = spawnRuntimeCli([forged]);
  assert.equal(await refused.exited, 1);
  assert.match(refused.stderrText, /patchbay-runtime: .*MAC/i);
});

test('a relay that presents another key than the link is warned about, and its patches refused', async () => {
  const link = relay.link(ROOM, 'pinned').replace(/key=[0-9a-f]{64}/, `key=${'cd'.repeat(32)}`);
  const rt = await joinRoom(link, { name: 'pinned' });
  try {
    const warned = rt.waitFor('relay_error', (e) => /another key/.test(e.message));
    const refused = rt.waitFor('reject', (r) => r.code === PB.PB_ERR_BAD_SIGNATURE);
    await warned;
    await refused; // the catch-up's first patch: signed by a key it does not pin
    assert.equal(rt.committedSeq, 0);
    assert.equal(rt.varFn('ggg'), 0);
  } finally {
    rt.close();
  }
});

test('test_req from an editor reaches every runtime, and each answers test_result', async () => {
  const { seq } = await relay.eval(ROOM, H + 'PB_TEST(ggg_is_62) { PB_CHECK(ggg(10) == 62); }\n' +
                                   'PB_TEST(ggg_is_0) { PB_CHECK(ggg(10) == 0); }\n',
                                   { runtimes: runtimes.length });
  await until(allAt(runtimes, seq), `seq ${seq} everywhere`);
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${ROOM}`, 'patchbay');
  ws.binaryType = 'arraybuffer';
  const token = relay.token(ROOM, 'editor', 'tester');
  const results = new Map(); // runtime_id -> results
  try {
    ws.onopen = () => ws.send(frame('hello', { token }));
    ws.onmessage = (ev) => {
      const f = decode(new Uint8Array(ev.data));
      if (f.t === 'welcome') ws.send(frame('test_req', { req: 77, filter: 'ggg_is' }));
      if (f.t === 'test_result' && f.req === 77) results.set(f.runtime_id, f);
    };
    await until(() => results.size === runtimes.length, `${runtimes.length} test results`);
  } finally {
    ws.close();
  }
  const ids = new Set(runtimes.map((r) => r.clientId));
  for (const [id, r] of results) {
    assert.ok(ids.has(id), `result from runtime ${id}`);
    assert.equal(r.seq, seq);
    const by = Object.fromEntries(r.results.map((x) => [x.name, x]));
    assert.equal(by.ggg_is_62.ok, true);
    assert.equal(by.ggg_is_0.ok, false);
    assert.match(by.ggg_is_0.message, /ggg\(10\) == 0/);
  }
});

test('a relay that lost its history: the runtime starts afresh and follows the new one', async () => {
  const lost = await new Relay().start();
  let rt = null;
  try {
    rt = await joinRoom(lost.link('fresh', 'rt'), { name: 'rt', backoffMs: 100, maxBackoffMs: 400 });
    const resets = [];
    rt.on('reset', (e) => resets.push(e));
    const epochs = [];
    rt.on('head', (h) => epochs.push(h.epoch));
    await until(() => rt.state === 'live' && epochs.length, 'the runtime joined');
    await lost.eval('fresh', H + 'double ggg(double v) { return v + 48; }\n', { runtimes: 1 });
    await lost.eval('fresh', H + 'double ggg(double v) { return v + 49; }\n', { runtimes: 1 });
    await until(() => rt.committedSeq === 2, 'seq 2 committed');
    await lost.kill();
    for (const f of ['history.db', 'history.db-wal', 'history.db-shm'])
      rmSync(joinPath(lost.data, f), { force: true });
    await lost.start(); // same key, same port, no history
    await until(() => resets.length === 1, 'the runtime reset');
    // the relay began the room again at a later epoch, and signed it: the
    // only thing that lets a runtime start afresh (welcome is not signed)
    assert.equal(resets[0].from_seq, 2);
    assert.equal(resets[0].relay_head_seq, 0);
    assert.ok(resets[0].epoch > epochs[0], `epoch ${resets[0].epoch} after ${epochs[0]}`);
    assert.equal(rt.headSeq, 0);
    assert.equal(rt.varFn('ggg'), 0, 'the old history\'s vars are gone');
    const { seq } = await lost.eval('fresh', H + 'double ggg(double v) { return v + 70; }\n',
                                    { runtimes: 1 });
    assert.equal(seq, 1);
    await until(() => rt.committedSeq === 1, 'the new seq 1 committed');
    assert.equal(rt.call('ggg', 10), 80);
    assert.deepEqual(rt.rejects ?? [], []);
  } finally {
    rt?.close();
    await lost.stop();
  }
});
