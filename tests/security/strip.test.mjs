// strip.test.mjs — stripped modules in catch-up (issue 15, hole 1). A man
// in the middle removes `module` (and `source`) from the items of a
// catch-up. The statements still verify, so a runtime that accepted
// module-less items would move its head on without loading anything and
// keep running old code, or none. A runtime must refuse: in a catch-up of
// whole patches (since_seq N) every item must carry its module; in a state
// catch-up (since_seq 0) the runtime works out from the signed statements
// which patches still define a current var, and requires their modules —
// if one is missing, nothing of that catch-up is applied. It says so, asks
// again, and catches up honestly once the attacker stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRoom, until, encode, decode, PB } from '../runtime/harness.mjs';
import { H, mitm, relay, relayBehindMitm, runtimePage } from './scene.mjs';


// Removes the module and source of every item of a history frame.
function stripHistory(bytes) {
  const f = decode(bytes);
  if (f.t !== 'history') return [bytes];
  for (const it of f.items || []) { delete it.module; delete it.source; }
  return [encode(f)];
}

relayBehindMitm();

// A room with ggg defined twice and hhh once: a state catch-up carries
// the modules of seq 2 and 3 (seq 1's ggg was redefined).
async function room(name) {
  await relay.eval(name, `${H}double ggg(double v) { return v + 48; }\n`);
  await relay.eval(name, `${H}double ggg(double v) { return v + 49; }\n`);
  await relay.eval(name, `${H}double hhh(double v) { return v * 2; }\n`);
}

test('node runtime: a state catch-up with its modules stripped is refused whole; honest, it is taken', async () => {
  await room('state');
  mitm.toClient = stripHistory;
  const rt = await joinRoom(mitm.link(relay.link('state', 'node')), { name: 'node', backoffMs: 100 });
  try {
    const rejects = [];
    rt.on('reject', (r) => rejects.push(r));
    await until(() => rejects.some((r) => r.code === PB.PB_ERR_MISSING_FIELD), 'the catch-up refused');
    const r = rejects.find((x) => x.code === PB.PB_ERR_MISSING_FIELD);
    assert.match(r.error, /without its module/);
    assert.equal(rt.headSeq, 0, 'the head did not move');
    assert.equal(rt.committedSeq, 0);
    assert.equal(rt.varFn('ggg'), 0, 'nothing of it runs');
    mitm.toClient = (b) => [b];
    await until(() => rt.committedSeq === 3, 'the honest catch-up, after the runtime asked again');
    assert.equal(rt.call('ggg', 10), 59);
    assert.equal(rt.call('hhh', 10), 20);
  } finally {
    rt.close();
    mitm.toClient = (b) => [b];
  }
});

test('node runtime: a catch-up of whole patches with a module stripped is refused; the head stays', async () => {
  await room('since');
  const rt = await joinRoom(mitm.link(relay.link('since', 'node')), { name: 'node', backoffMs: 100 });
  try {
    await until(() => rt.committedSeq === 3, 'caught up');
    // seq 4 is evaluated while the runtime is cut off; its reconnect asks
    // for everything after seq 3, which the attacker strips
    mitm.toClient = (b) => (decode(b).t === 'patch' ? [] : [b]);
    const { seq } = await relay.eval('since', `${H}double ggg(double v) { return v + 50; }\n`);
    mitm.toClient = stripHistory;
    const rejects = [];
    rt.on('reject', (r) => rejects.push(r));
    mitm.cut();
    await until(() => rejects.some((r) => r.code === PB.PB_ERR_MISSING_FIELD && r.seq === seq),
                `seq ${seq} refused without its module`);
    assert.equal(rt.headSeq, 3, 'the head did not move');
    assert.equal(rt.call('ggg', 10), 59, 'the old code runs, and is known to be behind');
    mitm.toClient = (b) => [b];
    await until(() => rt.committedSeq === seq, `seq ${seq}, honest, after the runtime asked again`);
    assert.equal(rt.call('ggg', 10), 60);
  } finally {
    rt.close();
    mitm.toClient = (b) => [b];
  }
});

test('Chromium runtime page: a stripped state catch-up is refused, the honest one taken', async () => {
  await room('page');
  mitm.toClient = stripHistory;
  const { page, errors, wait } = await runtimePage(mitm.link(relay.link('page', 'page')));
  await wait((c) => window.patchbay.rejects.some((r) => r.code === c), PB.PB_ERR_MISSING_FIELD,
             'the stripped catch-up refused');
  await wait(() => window.patchbay.stats.frames > 0, null, 'the page draws');
  assert.equal(await page.evaluate(() => window.patchbay.stats.headSeq), 0);
  mitm.toClient = (b) => [b];
  await wait(() => window.patchbay.stats.committedSeq === 3, null, 'the honest catch-up');
  assert.deepEqual(errors, []);
});
