// verifier.test.mjs — patch code cannot reach the verifier (issue 15, hole
// 4; docs/SECURITY.md § Patch code). A hostile room member with an editor
// token evaluates ordinary C patches — signed, recorded, committed on
// every runtime — whose pb_init scans every byte of the memory they run in
// for the verifier's state and overwrites it: the pinned relay key (public:
// it is in every join link) with a key of the attacker's own, the chain
// head with seq 2^50. The key, the chain and the floor the runtime persists
// live in the verifier instance (runtime/verifier.c), whose memory patch
// code never shares: a patch signed with the attacker's key is still
// refused, and the persisted floor stays the room's real head. Each patch
// first proves it reached its target (the copy of the state the patch
// instance keeps for itself), so the test cannot pass on a scan that missed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Relay, Recorder, joinRoom, until, PB } from '../runtime/harness.mjs';
import { launch } from '../web/harness.mjs';
import { Mitm } from './attacker.mjs';

const FORGE = process.env.PB_FORGE;
if (!FORGE) throw new Error('set PB_FORGE (ctest does)');
const H = '#include <patchbay.h>\n';
let relay, evil, mitm, browser;

before(async () => {
  relay = await new Relay().start();
  evil = await new Relay().start(); // only for its key (and to compile the payload)
  mitm = await new Mitm(relay.port).start(); // to hand the page its forgeries
});

after(async () => {
  await browser?.close();
  await mitm?.close();
  await relay?.stop();
  await evil?.stop();
});

// A C initializer of the key's bytes, xor-ed so that the patch's own data
// holds no copy of what it looks for.
const hexBytes = (hex, xor = 0) => hex.match(/../g).map((h) => `0x${(parseInt(h, 16) ^ xor).toString(16)}`).join(', ');
const pubKey = (r) => readFileSync(join(r.data, 'relay.pub'), 'utf8').trim();

// A patch signed with the attacker's key that continues the real chain
// after prev (a recorded patch frame), carrying payload's module (ggg + 1000,
// compiled by the attacker's own relay).
async function forger(room) {
  const erec = new Recorder(evil, room);
  await erec.ready;
  await evil.eval(room, `${H}double ggg(double v) { return v + 1000; }\n`);
  const payload = await erec.patch(1);
  erec.close();
  return (prev) => {
    const f = (name, bytes) => { const p = join(evil.dir, name); writeFileSync(p, bytes); return p; };
    return new Uint8Array(execFileSync(FORGE, [evil.data, f('prev', prev), f('like', payload)]));
  };
}

// An ordinary editor's patch whose pb_init overwrites every copy of the
// room's key in the memory it runs in with the attacker's key; hhh(0) and
// its output say how many it overwrote.
const keySwap = (roomKey, evilKey) => `${H}#include <stdio.h>
static const unsigned char from_x[32] = { ${hexBytes(roomKey, 0x5a)} };
static const unsigned char to[32] = { ${hexBytes(evilKey)} };
static int hits;
void pb_init(void) {
    unsigned char from[32];
    for (int i = 0; i < 32; i++) from[i] = from_x[i] ^ 0x5a;
    unsigned long n = __builtin_wasm_memory_size(0) * 65536ul;
    for (unsigned long a = 1024; a + 32 <= n; a++) {
        volatile unsigned char *p = (volatile unsigned char *)a;
        if (p[0] != from[0] || (unsigned char *)p == from) continue;
        int k = 0;
        while (k < 32 && p[k] == from[k]) k++;
        if (k < 32) continue;
        for (k = 0; k < 32; k++) p[k] = to[k];
        hits++;
    }
    printf("key copies overwritten: %d\\n", hits);
}
double hhh(double v) { return v + hits; }
`;

test('a patch that overwrites the pinned key in its memory does not make a forged patch verify', async () => {
  const roomKey = pubKey(relay);
  const evilKey = pubKey(evil);
  assert.notEqual(roomKey, evilKey);
  const rec = new Recorder(relay, 'mem');
  await rec.ready;
  await relay.eval('mem', `${H}double ggg(double v) { return v + 48; }\n`);
  const rt = await joinRoom(relay.link('mem', 'node'),
                            { name: 'node', stateDir: mkdtempSync(join(tmpdir(), 'pb-verifier-')) });
  try {
    await until(() => rt.committedSeq === 1, 'seq 1');
    const forge = await forger('mem');
    const first = rt.receive(forge(await rec.patch(1)));
    assert.equal(first.code, PB.PB_ERR_BAD_SIGNATURE, 'the forgery is refused before the attack');

    const { seq } = await relay.eval('mem', keySwap(roomKey, evilKey));
    await until(() => rt.committedSeq === seq, `the editor's patch, seq ${seq}`);
    const hits = rt.call('hhh', 0);
    assert.ok(hits >= 1, 'the patch found and overwrote the key in the memory it runs in');
    const after = rt.receive(forge(await rec.patch(seq)));
    rec.close();
    assert.equal(after.ok, false, `the forged patch was accepted: ${JSON.stringify(after)}`);
    assert.equal(after.code, PB.PB_ERR_BAD_SIGNATURE);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rt.committedSeq, seq, 'nothing after the editor\'s patch committed');
    assert.equal(rt.call('ggg', 10), 58, 'the code the relay never signed does not run');
  } finally {
    rt.close();
  }
});

test('a patch that writes the chain head in its memory does not move the persisted floor', async () => {
  const key = pubKey(relay);
  await relay.eval('brick', `${H}double ggg(double v) { return v + 48; }\n`);
  const stateDir = mkdtempSync(join(tmpdir(), 'pb-verifier-'));
  let rt = await joinRoom(relay.link('brick', 'node'), { name: 'node', backoffMs: 100, stateDir });
  try {
    await until(() => rt.committedSeq === 1, 'seq 1');
    // the chain (room name, then epoch, seq, hash) follows the pinned key
    const { seq } = await relay.eval('brick', `${H}
static const unsigned char kx[32] = { ${hexBytes(key, 0x5a)} };
static int done;
void pb_init(void) {
    unsigned char k[32];
    for (int i = 0; i < 32; i++) k[i] = kx[i] ^ 0x5a;
    unsigned long n = __builtin_wasm_memory_size(0) * 65536ul;
    for (unsigned long a = 1024; a + 128 <= n && !done; a++) {
        volatile unsigned char *p = (volatile unsigned char *)a;
        if ((unsigned char *)p == k || p[0] != k[0]) continue;
        int i = 0;
        while (i < 32 && p[i] == k[i]) i++;
        if (i < 32) continue;
        for (int off = 32; off <= 40; off++) {
            volatile unsigned char *r = p + off;
            if (r[0] == 'b' && r[1] == 'r' && r[2] == 'i' && r[3] == 'c' && r[4] == 'k' && r[5] == 0) {
                volatile unsigned long long *seq = (volatile unsigned long long *)(r + 80);
                *seq = 1ull << 50;
                done = 1;
                break;
            }
        }
    }
}
double hhh(double v) { return v + done; }
`);
    await until(() => rt.committedSeq === seq, `the editor's patch, seq ${seq}`);
    assert.equal(rt.call('hhh', 0), 1, 'the patch found and wrote the chain head in the memory it runs in');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(rt.headSeq, seq, 'the verified head is the room\'s');
    const files = readdirSync(stateDir).filter((f) => f.startsWith('head-'));
    const floor = JSON.parse(readFileSync(join(stateDir, files[0]), 'utf8'));
    assert.equal(floor.seq, seq, `the persisted floor is the room's head: ${JSON.stringify(floor)}`);
    rt.close();
    // restarted, on an honest relay and network: it catches up
    rt = await joinRoom(relay.link('brick', 'node'), { name: 'node', backoffMs: 100, stateDir });
    const rejects = [];
    rt.on('reject', (r) => rejects.push(r.error));
    await until(() => rt.committedSeq === seq || rejects.length, 'the honest catch-up handled', 15000);
    assert.deepEqual(rejects, []);
    assert.equal(rt.call('ggg', 10), 58);
  } finally {
    rt.close();
  }
});

test('Chromium runtime page: a patch that overwrites the pinned key in its memory does not make a forged patch verify', async () => {
  const room = 'mem-page';
  const rec = new Recorder(relay, room);
  await rec.ready;
  await relay.eval(room, `${H}double ggg(double v) { return v + 48; }\n`);
  const forge = await forger(room);
  browser = await launch();
  const page = await (await browser.newContext({ viewport: { width: 480, height: 320 } })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(mitm.link(relay.link(room, 'page')));
    const wait = (fn, arg, what) => page.waitForFunction(fn, arg, { timeout: 30000, polling: 50 })
      .catch(() => { throw new Error(`${what}: not reached`); });
    const rejects = () => page.evaluate(() => window.patchbay.rejects.map((r) => r.code));
    await wait(() => window.patchbay.stats.committedSeq === 1, null, 'seq 1 committed');
    mitm.inject(forge(await rec.patch(1)));
    await wait(() => window.patchbay.rejects.length === 1, null, 'the forgery refused before the attack');
    assert.deepEqual(await rejects(), [PB.PB_ERR_BAD_SIGNATURE]);

    const { seq } = await relay.eval(room, keySwap(pubKey(relay), pubKey(evil)));
    await wait((s) => window.patchbay.stats.committedSeq === s, seq, `the editor's patch, seq ${seq}`);
    await wait(() => window.patchbay.logs.some((l) => /key copies overwritten/.test(l.text)), null, 'its report');
    const said = await page.evaluate(() => window.patchbay.logs.find((l) => /key copies overwritten/.test(l.text)).text);
    assert.ok(Number(said.match(/overwritten: (\d+)/)[1]) >= 1, `the patch reached the key in the page's memory: ${said}`);

    mitm.inject(forge(await rec.patch(seq)));
    await wait((s) => window.patchbay.rejects.length > 1 || window.patchbay.stats.committedSeq > s, seq,
               'the forgery after the attack handled');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await page.evaluate(() => window.patchbay.stats.committedSeq), seq,
                 'the forged patch committed: nothing after the editor\'s patch may');
    assert.deepEqual(await rejects(), [PB.PB_ERR_BAD_SIGNATURE, PB.PB_ERR_BAD_SIGNATURE],
                     'the forged patch is refused after the attack too');
    // (the patch instance itself, whose copy of the key the patch
    // overwrote, now refuses the room's patches until it restarts:
    // docs/SECURITY.md § Patch code)
    assert.deepEqual(errors, []);
  } finally {
    rec.close();
  }
});
