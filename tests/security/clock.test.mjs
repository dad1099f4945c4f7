// clock.test.mjs — clock shifting (issue 15, hole 5). Pongs are not
// signed: a man in the middle rewrites them to move a runtime's room clock
// an hour back, which would hold every patch back (its apply time an hour
// in the future). The runtime drops pongs that cannot be true (a negative
// round trip), drops, once synced, a pong whose offset jumps further than
// its measured uncertainty and clock drift allow, and never lets its room
// clock be behind a time the relay signed (a statement's created_us): so a
// forged clock cannot hold a patch back longer than its own signed lead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, joinRoom, until, encode, decode } from '../runtime/harness.mjs';
import { launch } from '../web/harness.mjs';
import { Mitm } from './attacker.mjs';

const H = '#include <patchbay.h>\n';
const HOUR = 3600e6;
let relay, mitm, browser;

// Rewrites every pong: the relay's times moved by shift µs, and spread
// apart by 2 × widen µs (widen > the round trip makes it negative).
const forgePongs = (shift, widen = 0) => (bytes) => {
  const f = decode(bytes);
  if (f.t !== 'pong') return [bytes];
  f.t1_us = f.t1_us + shift - widen;
  f.t2_us = f.t2_us + shift + widen;
  return [encode(f)];
};

before(async () => {
  relay = await new Relay().start();
  mitm = await new Mitm(relay.port).start();
});

after(async () => {
  await browser?.close();
  await mitm?.close();
  await relay?.stop();
});

// Evaluates a patch and waits for rt to commit it; returns how late it was
// (µs after its apply time) on rt's room clock, and how long it took.
async function commitOf(rt, room, n) {
  const commits = [];
  const off = rt.on('commit', (c) => commits.push({ ...c, at: Date.now() }));
  try {
    const t = Date.now();
    const { seq } = await relay.eval(room, `${H}double ggg(double v) { return v + ${n}; }\n`);
    await until(() => commits.some((c) => c.seq === seq), `seq ${seq} committed`, 10000);
    const c = commits.find((x) => x.seq === seq);
    return { late: c.commit_at_us - c.apply_us, ms: c.at - t };
  } finally {
    off();
  }
}

test('node runtime: once synced, pongs an hour off are dropped, whatever their round trip', async () => {
  const rt = await joinRoom(mitm.link(relay.link('synced', 'node')), { name: 'node' });
  try {
    await until(() => rt.clock.isSynced && rt.clock.samples.length >= 5, 'the clock synced');
    const offset = rt.clock.offsetUs;
    const dropped = rt.clock.dropped;
    mitm.toClient = forgePongs(-HOUR, 1e6); // an hour back, negative round trip
    await until(() => rt.clock.dropped >= dropped + 3, 'forged pongs dropped');
    assert.match(rt.clock.lastDropped, /negative round trip/);
    mitm.toClient = forgePongs(-HOUR); // an hour back, plausible round trip
    await until(() => rt.clock.dropped >= dropped + 6, 'forged pongs dropped');
    assert.match(rt.clock.lastDropped, /beyond the ±[\d.]+ ms its uncertainty allows/);
    assert.ok(Math.abs(rt.clock.offsetUs - offset) < 10000, 'the clock stayed');
    const { late, ms } = await commitOf(rt, 'synced', 50);
    assert.ok(late < 1e6 && ms < 5000, `committed on time (${late} µs late, after ${ms} ms)`);
  } finally {
    rt.close();
    mitm.toClient = (b) => [b];
  }
});

test('node runtime: pongs forged from the first are overruled by the signed time of the first patch', async () => {
  mitm.toClient = forgePongs(-HOUR);
  const rt = await joinRoom(mitm.link(relay.link('forged', 'node')), { name: 'node' });
  try {
    await until(() => rt.clock.isSynced, 'the clock synced (to the forged pongs)');
    assert.ok(rt.clock.offsetUs < -HOUR / 2, 'an hour behind');
    const { late, ms } = await commitOf(rt, 'forged', 51);
    assert.ok(ms < 5000, `the patch was not held back (committed after ${ms} ms)`);
    assert.ok(rt.clock.offsetUs > -60e6, 'the clock moved to the signed time');
    assert.ok(rt.clock.floored >= 1);
    // and the forged pongs that follow are dropped, not believed again
    const dropped = rt.clock.dropped;
    await until(() => rt.clock.dropped > dropped + 2, 'later forged pongs dropped');
    const second = await commitOf(rt, 'forged', 52);
    assert.ok(second.late < 1e6 && second.ms < 5000, `the next one too (${second.late} µs late)`);
    assert.ok(late >= 0);
  } finally {
    rt.close();
    mitm.toClient = (b) => [b];
  }
});

test('Chromium runtime page: an hour-off clock from forged pongs does not hold a patch back', async () => {
  mitm.toClient = forgePongs(-HOUR);
  browser = await launch();
  const page = await (await browser.newContext({ viewport: { width: 480, height: 320 } })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(mitm.link(relay.link('page', 'page')));
    const wait = (fn, arg, what, timeout = 30000) => page.waitForFunction(fn, arg, { timeout, polling: 50 })
      .catch(() => { throw new Error(`${what}: not reached`); });
    await wait(() => window.patchbay.stats.synced && window.patchbay.stats.offsetUs < -1800e6, null,
               'the page synced to the forged pongs');
    const t = Date.now();
    const { seq } = await relay.eval('page', `${H}double ggg(double v) { return v + 53; }\n`);
    await wait((s) => window.patchbay.commits.some((c) => c.seq === s), seq, 'committed', 5000);
    assert.ok(Date.now() - t < 5000);
    assert.deepEqual(errors, []);
  } finally {
    mitm.toClient = (b) => [b];
  }
});
