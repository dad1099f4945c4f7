// freeze.test.mjs — freeze and withholding (issue 15, hole 3). A man in
// the middle keeps a runtime's socket open but lets nothing through (nor
// pongs, nor the relay's signed heads), or drops just the live patches.
// Nothing unsigned can tell a quiet room from a starved runtime, so the
// relay signs its room's head every PB_HEAD_EVERY_US: a runtime whose
// freshest signed head is older than PB_HEAD_STALE_US says "stale since …"
// (event, page, every ack), one that hears nothing at all for PB_SILENT_US
// reconnects, and a signed head ahead of the runtime makes it catch up —
// a dropped live patch is noticed at the next heartbeat, not at the next
// patch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRoom, until, encode, decode, PB } from '../runtime/harness.mjs';
import { typeOf } from './attacker.mjs';
import { H, mitm, relay, relayBehindMitm, runtimePage } from './scene.mjs';

const HEARTBEAT_MS = PB.PB_HEAD_EVERY_US / 1000;
const STALE_MS = PB.PB_HEAD_STALE_US / 1000;
const SILENT_MS = PB.PB_SILENT_US / 1000;

relayBehindMitm();

const honest = (b) => [b];
const withhold = () => [];

test('node runtime: withheld, it is stale within a heartbeat of the bound, says so in acks, and reconnects', async () => {
  await relay.eval('frozen', `${H}double ggg(double v) { return v + 48; }\n`);
  const rt = await joinRoom(mitm.link(relay.link('frozen', 'node')), { name: 'node', backoffMs: 100 });
  try {
    const stale = [], heads = [], states = [];
    rt.on('stale', (s) => stale.push({ ...s, at: Date.now() }));
    rt.on('head', (h) => heads.push({ ...h, at: Date.now() }));
    rt.on('state', (s) => states.push(s));
    await until(() => rt.committedSeq === 1 && heads.length, 'joined, seq 1, a signed head');
    assert.deepEqual(stale, [], 'fresh while the relay is heard');
    mitm.toClient = withhold;
    mitm.toRelay = withhold; // and it stops reading
    await until(() => stale.some((s) => s.since_us), 'stale', STALE_MS + HEARTBEAT_MS + 5000);
    const s = stale.find((x) => x.since_us);
    const lastHead = heads.at(-1);
    assert.equal(s.since_us, lastHead.time_us, 'stale since the signed time of the freshest head');
    assert.ok(s.at - lastHead.at >= STALE_MS - 1000, `not stale before the bound (${s.at - lastHead.at} ms)`);
    // every ack says so: a refused (forged) head is acked as failed
    const from = mitm.seen.length;
    const f = decode(mitm.seen.find((x) => x.t === 'head').bytes);
    f.sig = new Uint8Array(64);
    mitm.inject(encode(f));
    await until(() => mitm.seen.slice(from).some((x) => x.dir === 'relay' && x.t === 'ack'), 'the failed ack');
    const ack = decode(mitm.seen.slice(from).find((x) => x.dir === 'relay' && x.t === 'ack').bytes);
    assert.equal(ack.state, 'failed');
    assert.equal(ack.code, PB.PB_ERR_BAD_SIGNATURE);
    assert.equal(ack.stale_since_us, s.since_us);
    // a socket that brings nothing is given up, not kept for minutes (the
    // forged head just injected was the last thing it brought)
    await until(() => states.some((x) => x.state === 'waiting' && /sent nothing for \d+ s/.test(x.detail)),
                'the silent socket given up', SILENT_MS + 5000);
    // honest again: fresh, and the next patch commits
    mitm.toClient = honest;
    mitm.toRelay = honest;
    await until(() => stale.at(-1).since_us === 0, 'fresh again');
    const { seq } = await relay.eval('frozen', `${H}double ggg(double v) { return v + 49; }\n`);
    await until(() => rt.committedSeq === seq, `seq ${seq} committed`);
    assert.equal(rt.call('ggg', 10), 59);
  } finally {
    rt.close();
    mitm.toClient = honest;
    mitm.toRelay = honest;
  }
});

test('node runtime: a dropped live patch is noticed at the next signed head, not at the next patch', async () => {
  await relay.eval('dropped', `${H}double ggg(double v) { return v + 48; }\n`);
  const rt = await joinRoom(mitm.link(relay.link('dropped', 'node')), { name: 'node', backoffMs: 100 });
  try {
    await until(() => rt.committedSeq === 1, 'seq 1');
    const heads = [], commits = [];
    rt.on('head', (h) => heads.push(h));
    rt.on('commit', (c) => commits.push(c));
    mitm.toClient = (b) => (typeOf(b) === 'patch' ? [] : [b]);
    const { seq } = await relay.eval('dropped', `${H}double ggg(double v) { return v + 49; }\n`);
    assert.equal(seq, 2);
    await until(() => rt.committedSeq === 2, 'seq 2, caught up after a signed head said so',
                HEARTBEAT_MS + 10000);
    assert.ok(heads.some((h) => h.seq === 2 && h.resync), 'a signed head ahead of the runtime made it ask');
    assert.equal(commits.find((c) => c.seq === 2).catchup, true, 'it came by catch-up, the live patch never did');
    assert.equal(rt.call('ggg', 10), 59);
  } finally {
    rt.close();
    mitm.toClient = honest;
  }
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('node runtime: a signed head ahead is not fresh, and a dropped catch-up is asked again and leaves it stale', async () => {
  await relay.eval('behind', `${H}double ggg(double v) { return v + 48; }\n`);
  const rt = await joinRoom(mitm.link(relay.link('behind', 'node')), { name: 'node', backoffMs: 100 });
  try {
    const stale = [], heads = [], reconnects = [];
    rt.on('stale', (s) => stale.push(s));
    rt.on('head', (h) => heads.push(h));
    rt.on('state', (s) => { if (s.state === 'reconnecting') reconnects.push(s); });
    await until(() => rt.committedSeq === 1, 'seq 1');
    // live patches and every catch-up dropped; the signed heads let through
    mitm.toClient = (b) => (['patch', 'history'].includes(typeOf(b)) ? [] : [b]);
    const { seq } = await relay.eval('behind', `${H}double ggg(double v) { return v + 49; }\n`);
    assert.equal(seq, 2);
    await sleep(3 * STALE_MS);
    assert.equal(rt.headSeq, 1, 'still at seq 1 while the room is at seq 2');
    assert.ok(stale.at(-1)?.since_us > 0, `behind for ${3 * STALE_MS / 1000} s: stale (${JSON.stringify(stale)})`);
    assert.ok(reconnects.length >= 3, `asked again while behind (${reconnects.length} reconnects)`);
    assert.ok(heads.some((h) => h.seq === 2 && h.behind && !h.fresh), 'a head of seq 2 says it is behind, not fresh');
    mitm.toClient = honest;
    await until(() => rt.committedSeq === 2, 'honest again: caught up', 15000);
    await until(() => stale.at(-1).since_us === 0, 'fresh again', HEARTBEAT_MS + 5000);
  } finally {
    rt.close();
    mitm.toClient = honest;
  }
});

test('node runtime: an unsigned welcome does not make a starved runtime fresh', async () => {
  await relay.eval('starved', `${H}double ggg(double v) { return v + 48; }\n`);
  const rt = await joinRoom(mitm.link(relay.link('starved', 'node')), { name: 'node', backoffMs: 100 });
  let timer = null;
  try {
    const stale = [];
    rt.on('stale', (s) => stale.push(s));
    await until(() => rt.committedSeq === 1, 'seq 1');
    const welcome = [...mitm.seen].reverse().find((x) => x.dir === 'client' && x.t === 'welcome').bytes;
    mitm.toClient = (b) => (['head', 'patch', 'history'].includes(typeOf(b)) ? [] : [b]);
    await until(() => stale.some((s) => s.since_us > 0), 'stale', STALE_MS + 8000);
    // a copy of its own welcome, every 5 s
    mitm.inject(welcome);
    timer = setInterval(() => mitm.inject(welcome), 5000);
    await sleep(2 * STALE_MS);
    assert.ok(stale.at(-1).since_us > 0, `no signed head for ${2 * STALE_MS / 1000} s, yet not stale: ${JSON.stringify(stale)}`);
  } finally {
    clearInterval(timer);
    rt.close();
    mitm.toClient = honest;
  }
});

test('Chromium runtime page: withheld, the page shows "stale since …"; honest again, it clears', async () => {
  await relay.eval('page', `${H}double ggg(double v) { return v + 48; }\n`);
  try {
    const { page, errors, wait } = await runtimePage(mitm.link(relay.link('page', 'page')), { polling: 100 });
    await wait(() => window.patchbay.stats.committedSeq === 1, null, 'seq 1');
    mitm.toClient = withhold;
    mitm.toRelay = withhold;
    await wait(() => !document.getElementById('stale').hidden, null, 'the page shows it is stale',
               STALE_MS + HEARTBEAT_MS + 5000);
    assert.match(await page.textContent('#stale'), /^stale since \d/);
    mitm.toClient = honest;
    mitm.toRelay = honest;
    await wait(() => document.getElementById('stale').hidden, null, 'fresh again', SILENT_MS + 15000);
    assert.deepEqual(errors, []);
  } finally {
    mitm.toClient = honest;
    mitm.toRelay = honest;
  }
});
