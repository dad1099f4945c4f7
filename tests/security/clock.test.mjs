// clock.test.mjs — clock shifting (issue 15, hole 5). Pongs are not
// signed: a man in the middle rewrites them to move a runtime's room clock
// an hour back, which would hold every patch back (its apply time an hour
// in the future). The runtime drops pongs that cannot be true (a negative
// round trip), drops, once synced, a pong whose offset jumps further than
// its measured uncertainty and clock drift allow, and never lets its room
// clock be behind a time the relay signed (a statement's created_us, a
// head's time_us), nor more than MAX_AHEAD_US ahead of a signed head's time
// as received: forged pongs move the clock's estimate, and the room time a
// runtime uses stays within those bounds (docs/SECURITY.md § The room clock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRoom, until, encode, decode, RoomClock, MAX_AHEAD_US } from '../runtime/harness.mjs';
import { H, mitm, relay, relayBehindMitm, runtimePage } from './scene.mjs';

const HOUR = 3600e6;

// Rewrites every pong: the relay's times moved by shift µs, and spread
// apart by 2 × widen µs (widen > the round trip makes it negative).
const forgePongs = (shift, widen = 0) => (bytes) => {
  const f = decode(bytes);
  if (f.t !== 'pong') return [bytes];
  f.t1_us = f.t1_us + shift - widen;
  f.t2_us = f.t2_us + shift + widen;
  return [encode(f)];
};

relayBehindMitm();

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

test('node runtime: pongs forged from the first are overruled by the signed times of heads and patches', async () => {
  mitm.toClient = forgePongs(-HOUR);
  const rt = await joinRoom(mitm.link(relay.link('forged', 'node')), { name: 'node' });
  try {
    await until(() => rt.clock.isSynced, 'the clock synced (to the forged pongs)');
    assert.ok(rt.clock.estUs < -HOUR / 2, 'the pongs say an hour behind');
    assert.ok(Math.abs(rt.clock.offsetUs) < 2e6, `the room time is the signed head's (${rt.clock.offsetUs} µs)`);
    const { late, ms } = await commitOf(rt, 'forged', 51);
    assert.ok(ms < 5000, `the patch was not held back (committed after ${ms} ms)`);
    assert.ok(rt.clock.estUs > -60e6, 'the estimate moved to the signed time');
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
  try {
    const { page, errors, wait } = await runtimePage(mitm.link(relay.link('page', 'page')));
    // synced: it took forged pongs (there were no others); the room time
    // it uses stays at the signed head's
    await wait(() => window.patchbay.stats.synced, null, 'the page synced to the forged pongs');
    const offset = await page.evaluate(() => window.patchbay.stats.offsetUs);
    assert.ok(Math.abs(offset) < 2e6, `the page's room time is the signed head's (${offset} µs off)`);
    const t = Date.now();
    const { seq } = await relay.eval('page', `${H}double ggg(double v) { return v + 53; }\n`);
    await wait((s) => window.patchbay.commits.some((c) => c.seq === s), seq, 'committed', 5000);
    assert.ok(Date.now() - t < 5000);
    assert.deepEqual(errors, []);
  } finally {
    mitm.toClient = (b) => [b];
  }
});

// ---- the bound, on a simulated local clock (no relay) -------------------
// The installed clock.js, fed what a man in the middle can produce: it
// holds a pong as long as it likes and writes any t1/t2. Signed head times
// bound what the runtime uses, whatever the pongs did to the estimate.

const S = 1e6;
function sim({ headDelayUs = 2000 } = {}) {
  let local = 1_700_000_000 * S; // the runtime's own clock
  let truth = 5 * S;             // room time = local + 5 s
  const clock = new RoomClock({ now: () => local });
  const honestPong = () => { // 1 ms round trip
    const t0 = clock.ping();
    local += 500;
    const t1 = t0 + 500 + truth;
    local += 500;
    return clock.sample(t0, t1, t1, local);
  };
  // a head the relay signed headDelayUs ago, received now
  const head = (delay = headDelayUs) => clock.atLeast(local + truth - delay);
  const advance = (us) => { local += us; };
  const off = () => clock.roomNowUs() - (local + truth); // > 0: ahead
  const step = (us) => { truth += us; }; // the relay's clock is stepped
  return { clock, honestPong, head, advance, off, step, now: () => local };
}

// Walks the estimate by held pongs whose claimed round trips shrink a hair
// each time, each as far as the clock's own check allows (direction -1:
// back, +1: ahead); a head every 5 s unless frozen. Returns the furthest
// the room time got from the truth, both ways.
function walk(s, direction, { frozen = false, seconds = 200 } = {}) {
  const HOLD = 7 * S;
  let claimed = HOLD;
  const pending = [];
  let worst = { ahead: 0, behind: 0 };
  for (let i = 0; i < seconds * 2; i++) {
    pending.push({ t0: s.clock.ping(), at: s.now() });
    while (pending.length && s.now() - pending[0].at >= HOLD) {
      const { t0 } = pending.shift();
      const t3 = s.now();
      const allowed = s.clock.uncertaintyUs + claimed / 2 + 1000;
      const target = s.clock.estUs + direction * 0.9 * (Number.isFinite(allowed) ? allowed : 0);
      const gap = (t3 - t0) - claimed;
      const t1 = Math.round((2 * target + t0 + t3 - gap) / 2);
      s.clock.sample(t0, t1, t1 + gap, t3);
      claimed -= 1;
    }
    if (!frozen && i % 10 === 0) s.head();
    s.advance(500e3);
    worst = { ahead: Math.max(worst.ahead, s.off()), behind: Math.max(worst.behind, -s.off()) };
  }
  return worst;
}

function synced() {
  const s = sim();
  s.head();
  for (let i = 0; i < 20; i++) { s.honestPong(); s.advance(500e3); }
  assert.ok(Math.abs(s.off()) < 2e3, 'synced honestly');
  return s;
}

test('the clock: walked back or ahead by held pongs for 200 s, it stays within its signed bounds', () => {
  for (const frozen of [false, true]) {
    const back = walk(synced(), -1, { frozen });
    const ahead = walk(synced(), +1, { frozen });
    // the walk itself gets far (the estimate), what the runtime uses does not
    // behind: the head's delay (2 ms) and 200 s of drift at 200 ppm (40 ms);
    // ahead: MAX_AHEAD_US, less the head's delay, and the same drift
    assert.ok(back.behind < 50e3, `walked back ${back.behind} µs (frozen: ${frozen})`);
    assert.ok(ahead.ahead < MAX_AHEAD_US + 50e3, `walked ahead ${ahead.ahead} µs (frozen: ${frozen})`);
  }
  const s = synced();
  walk(s, -1, { frozen: true });
  assert.ok(s.clock.estUs < -100 * S, `the walk moved the estimate (${s.clock.estUs} µs), which is what is bounded`);
});

test('the clock: after 60 s of impossible pongs, one an hour back or ahead moves the estimate, not the room time', () => {
  for (const hour of [-3600 * S, 3600 * S]) {
    const s = synced();
    for (let i = 0; i < 122; i++) { s.clock.ping(); s.clock.sample(1, 2, 2, s.now()); s.advance(500e3); }
    const t0 = s.clock.ping();
    s.advance(1000);
    s.clock.sample(t0, t0 + hour + 5 * S + 500, t0 + hour + 5 * S + 500, s.now());
    assert.ok(Math.abs(s.clock.estUs - 5 * S - hour) < 10 * S, 'the estimate took it');
    assert.ok(s.off() > -20e3 && s.off() < MAX_AHEAD_US + 20e3, `the room time is ${s.off()} µs off`);
  }
});

test('the clock: a head handled late (a busy event loop) does not pull an honest clock back', () => {
  const s = synced();
  for (let i = 0; i < 5; i++) { s.head(); s.honestPong(); s.advance(5 * S); }
  s.head(4 * S); // this one 4 s late
  s.honestPong();
  assert.ok(Math.abs(s.off()) < 5e3, `${s.off()} µs off after a late head`);
  // nor does the head a runtime gets when it joins, which may be the last
  // one an edge kept (up to a heartbeat old)
  const j = sim();
  j.head(4.9 * S);
  for (let i = 0; i < 10; i++) { j.honestPong(); j.advance(500e3); }
  assert.ok(Math.abs(j.off()) < 5e3, `${j.off()} µs off after a kept head at join`);
  j.head();
  for (let i = 0; i < 10; i++) { j.honestPong(); j.advance(500e3); }
  assert.ok(Math.abs(j.off()) < 5e3, `${j.off()} µs off after the next head`);
});

test('the clock: a relay whose clock is stepped back is followed within a minute and a bit', () => {
  const s = synced();
  s.step(-10 * S);
  for (let i = 0; i < 150; i++) { // 75 s
    if (i % 10 === 0) s.head();
    s.honestPong();
    s.advance(500e3);
  }
  assert.ok(Math.abs(s.off()) < 5e3, `${s.off()} µs off, 75 s after the relay's clock went 10 s back`);
});
