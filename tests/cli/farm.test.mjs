// farm.test.mjs — `patchbay devices`, `test`, `logs` and `snapshot` against
// a real relay, with runtimes played by the test (tests/peer.mjs) so that
// each answers exactly as a case needs: a failed check, a trap, a device
// that leaves mid-run, one that answers from older code, one restarted by
// its watchdog that answers under a new client id, pictures of different
// sizes. The real runtimes (node, Chromium, Firefox) are in
// tests/devices/farm.test.mjs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ServedRelay } from '../serve.mjs';
import { Peer } from '../peer.mjs';
import { encodePNG } from '../../runtime/png.js';

const CLI = process.env.PB_CLI;
if (!CLI) throw new Error('set PB_CLI (ctest does)');
let relay, out;
let roomN = 0;

before(async () => {
  relay = new ServedRelay(CLI, 'pb-farm-cli-');
  await relay.serve([]);
  out = mkdtempSync(join(tmpdir(), 'pb-farm-out-'));
});

after(async () => {
  await relay?.stop();
  if (out) rmSync(out, { recursive: true, force: true });
});

// Runs a patchbay command as an editor of room; resolves {code, stdout, stderr}.
function cli(room, args, role = 'editor') {
  return new Promise((resolve) => {
    execFile(CLI, [...args, '--url', `ws://127.0.0.1:${relay.port}`, '--token', relay.token(room, role, 'ci')],
             (e, stdout, stderr) => resolve({ code: e ? e.code : 0, stdout: String(stdout), stderr: String(stderr) }));
  });
}

// A runtime played by the test: answers test_req with results(q) (null:
// no answer) and snapshot_req with picture(q) ({width, height, png} or
// null); deviceId: its hello's device_id.
async function runtime(room, name, label, { canvas, results, picture, deviceId } = {}) {
  const rt = await Peer.join(relay, room, 'runtime', name, {
    label, platform: `fake ${label}`, canvas_w: canvas?.[0] || 0, canvas_h: canvas?.[1] || 0,
    ...(deviceId ? { device_id: deviceId } : {}),
  });
  rt.on(async (f) => {
    if (f.t === 'test_req' && results) {
      const r = await results(f, rt);
      if (r) rt.send({ t: 'test_result', req: f.req, seq: r.seq ?? f.seq, results: r.results ?? r });
    }
    if (f.t === 'snapshot_req' && picture) {
      const p = await picture(f);
      if (p) rt.send({ t: 'snapshot', req: f.req, editor_id: f.editor_id, seq: 1, at_us: f.at_us, ...p });
    }
  });
  return rt;
}

const pass = (name, us = 20) => ({ name, ok: true, status: 'pass', us });
const room = () => `r${++roomN}`;

test('devices lists the runtimes with what they said they run on', async () => {
  const R = room();
  const a = await runtime(R, 'rt', 'phone', { canvas: [390, 844] });
  const b = await runtime(R, 'rt', 'desk', { canvas: [1024, 600] });
  const r = await cli(R, ['devices']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`room ${R}: 2 runtimes`));
  assert.match(r.stdout, /phone +390x844 .*fake phone/);
  assert.match(r.stdout, /desk +1024x600 .*fake desk/);
  const j = await cli(R, ['devices', '--json']);
  const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((x) => x.label).sort(), ['desk', 'phone']);
  assert.equal(rows.find((x) => x.label === 'phone').canvas_w, 390);
  // a runtime token cannot look
  const rt = await cli(R, ['devices'], 'runtime');
  assert.equal(rt.code, 3);
  assert.match(rt.stderr, /runtime token/);
  a.close();
  b.close();
});

test('test: the matrix, exit 1 for a failure, and JUnit XML that parses', async () => {
  const R = room();
  const rts = [
    await runtime(R, 'rt', 'wide', { results: () => [pass('adds'), pass('fits')] }),
    await runtime(R, 'rt', 'narrow', { results: () => [pass('adds'), { name: 'fits', ok: false, status: 'fail',
      file: 'fit.c', line: 9, message: 'pb_screen()->width >= 500', us: 11 }] }),
    await runtime(R, 'rt', 'crashy', { results: () => [pass('adds'), { name: 'fits', ok: false, status: 'trap',
      var: 'helper', var_seq: 3, message: 'RuntimeError: unreachable' }] }),
  ];
  const xml = join(out, 'junit.xml');
  const r = await cli(R, ['test', '--junit', xml]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^fits +pass \d+us +FAIL 11us +TRAP \d+us$/m);
  assert.match(r.stdout, /fits on narrow: fit\.c:9: pb_screen\(\)->width >= 500/);
  assert.match(r.stdout, /fits on crashy: trap in helper \(patch seq 3\): RuntimeError: unreachable/);
  assert.match(r.stdout, /2 tests on 3 devices in [\d.]+ s: 4 passed, 1 failed, 1 trapped/);
  const parsed = execFileSync('/usr/bin/python3', ['-c', `
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for s in root.iter('testsuite'):
    print(s.get('name'), s.get('tests'), len(s.findall('testcase/failure')), len(s.findall('testcase/error')))
`, xml]).toString().trim().split('\n').sort();
  assert.deepEqual(parsed, ['crashy 2 0 1', 'narrow 2 1 0', 'wide 2 0 0']);
  // all passing: exit 0; a filter is passed on
  const ok = await cli(R, ['test', '--filter', 'add']);
  const reqs = rts[0].frames.filter((f) => f.t === 'test_req');
  assert.equal(reqs.at(-1).filter, 'add');
  // (the fakes ignore the filter, so "fits" still fails: exit 1)
  assert.equal(ok.code, 1);
  for (const x of rts) x.close();
});

test('test: a device that leaves is gone, one on older code is stale, one that says nothing has no answer: exit 4', async () => {
  const R = room();
  // a patch, so the room's head is seq 1 and an answer from seq 0 is stale
  const src = join(out, 'one.c');
  writeFileSync(src, '#include <patchbay.h>\ndouble one(void) { return 1; }\n');
  execFileSync(CLI, ['eval', '--url', `ws://127.0.0.1:${relay.port}`, '--token', relay.token(R, 'editor', 'ci'), src]);
  const rts = [
    await runtime(R, 'rt', 'good', { results: () => [pass('t')] }),
    await runtime(R, 'rt', 'leaver', { results: (q, rt) => { rt.close(); return null; } }),
    await runtime(R, 'rt', 'old', { results: () => ({ seq: 0, results: [pass('t')] }) }),
    await runtime(R, 'rt', 'mute', { results: () => null }),
  ];
  const t0 = Date.now();
  const r = await cli(R, ['test', '--timeout', '8s']);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout, /^t +pass \d+us +gone +stale +\?$/m);
  assert.match(r.stdout, /leaver: left the room before answering/);
  assert.match(r.stdout, /old: answered from seq 0; the run is at seq 1/);
  assert.match(r.stdout, /mute: did not answer in time/);
  assert.ok(Date.now() - t0 >= 8000, 'it waited for the silent device until the timeout');
  for (const x of rts) x.close();
});

test('test: a device restarted by its watchdog answers under a new id and is not gone', async () => {
  const R = room();
  const good = await runtime(R, 'rt', 'good', { results: () => [pass('loop'), pass('t')] });
  let second = null;
  const first = await runtime(R, 'rt', 'phone', {
    results: async (q, rt) => {
      // hangs in "loop": its watchdog kills it; a new instance rejoins and
      // answers the run it was in
      rt.close();
      await new Promise((res) => setTimeout(res, 300));
      second = await runtime(R, 'rt', 'phone', {});
      second.send({ t: 'test_result', req: q.req, seq: q.seq, results: [
        { name: 'loop', ok: false, status: 'timeout', message: 'did not return within 2000 ms' }, pass('t')] });
      return null;
    },
  });
  const r = await cli(R, ['test']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^loop +pass \d+us +TIMEOUT$/m);
  assert.match(r.stdout, /loop on phone: timeout: did not return within 2000 ms/);
  assert.doesNotMatch(r.stdout, /gone/);
  for (const x of [good, first, second]) x?.close();
});

test('test: a device back on a new connection while its old one is still open is one column', async () => {
  const R = room();
  const good = await runtime(R, 'rt', 'good', { results: () => [pass('t')] });
  // a phone restarted (or moved to another network): its old socket is
  // still open and will never answer; the same runtime (device_id) says
  // hello on a new one
  const old = await runtime(R, 'rt', 'phone', { deviceId: 'a'.repeat(32) });
  const back = await runtime(R, 'rt', 'phone', { deviceId: 'a'.repeat(32), results: () => [pass('t')] });
  const r = await cli(R, ['test', '--timeout', '5s']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^test +good +phone$/m);
  assert.match(r.stdout, /1 test on 2 devices/);
  for (const x of [good, old, back]) x.close();
});

test('test: without a device_id, an old connection that leaves beside its successor is gone, not waited for', async () => {
  const R = room();
  // a runtime that sends no device_id: the relay cannot tell that the new
  // connection is the same device, so both are columns of the run; the old
  // one then closes
  const old = await runtime(R, 'rt', 'phone', { results: (q, rt) => { setTimeout(() => rt.close(), 300); return null; } });
  const back = await runtime(R, 'rt', 'phone', { results: () => [pass('t')] });
  const r = await cli(R, ['test', '--timeout', '30s']);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`phone#${old.welcome.client_id}: left the room before answering`));
  assert.doesNotMatch(r.stdout, /did not answer in time/);
  back.close();
});

test('test --expect-devices waits, and says which are here when too few come: exit 4', async () => {
  const R = room();
  const a = await runtime(R, 'rt', 'a', { results: () => [pass('t')] });
  const b = await runtime(R, 'rt', 'b', { results: () => [pass('t')] });
  const r = await cli(R, ['test', '--expect-devices', '3', '--wait', '1s']);
  assert.equal(r.code, 4);
  assert.match(r.stderr, new RegExp(`waited 1.0 s for 3 devices in room ${R}; 2 are here: (a, b|b, a)`));
  // one more comes while it waits
  const p = cli(R, ['test', '--expect-devices', '3', '--wait', '20s']);
  await new Promise((res) => setTimeout(res, 500));
  const c = await runtime(R, 'rt', 'c', { results: () => [pass('t')] });
  const ok = await p;
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /1 test on 3 devices/);
  for (const x of [a, b, c]) x.close();
});

test('snapshot: one PNG per canvas device, named by label; --compare counts the pixels that differ', async () => {
  const R = room();
  const solid = async (w, h) => {
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < px.length; i += 4) px.set([200, 30, 60, 255], i);
    return { width: w, height: h, png: await encodePNG(px, w, h) };
  };
  const rts = [
    await runtime(R, 'rt', 'phone', { canvas: [39, 84], picture: () => solid(39, 84) }),
    await runtime(R, 'rt', 'wide', { canvas: [96, 54], picture: () => solid(96, 54) }),
    await runtime(R, 'rt', 'headless', {}), // no canvas: not asked
  ];
  const dir = join(out, 'shots');
  const r = await cli(R, ['snapshot', '-o', dir, '--at-time', '+100ms']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(readdirSync(dir).sort(), ['phone.png', 'wide.png']);
  assert.match(r.stdout, /2 pictures of 2 devices in [\d.]+ s/);
  const req = rts[0].frames.find((f) => f.t === 'snapshot_req');
  assert.ok(req.at_us > 1e15, 'a room time');
  assert.equal(rts[2].frames.filter((f) => f.t === 'snapshot_req').length, 1, 'the relay asks all; it stays silent');
  const cmp = await cli(R, ['snapshot', '-o', dir, '--compare', join(dir, 'phone.png'), '--threshold', '0.01']);
  assert.equal(cmp.code, 1, cmp.stdout + cmp.stderr);
  assert.match(cmp.stdout, /phone .*\n +0 of 3276 pixels differ \(0\.000%\)\n/);
  assert.match(cmp.stdout, /wide .*\n +5184 of 5184 pixels differ \(100\.000%\): the sizes differ, over the threshold/);
  const missing = await cli(R, ['snapshot', '-o', dir, '--compare', join(dir, 'nope.png')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.png/);
  for (const x of rts) x.close();
});

test('logs: every device\'s output, tagged, in order per device; --device and --follow', async () => {
  const R = room();
  const a = await runtime(R, 'rt', 'phone');
  const b = await runtime(R, 'rt', 'desk');
  for (let i = 0; i < 5; i++) a.send({ t: 'log', level: 'info', text: `phone line ${i}\n`, seq: 2, var: 'pb_frame', time_us: Date.now() * 1000 });
  b.send({ t: 'log', level: 'trap', text: 'RuntimeError: unreachable', seq: 2, var: 'ggg', time_us: Date.now() * 1000 });
  a.send({ t: 'ack', seq: 2, state: 'prepared', verify_us: 300, prepare_us: 1100 });
  await new Promise((res) => setTimeout(res, 300));
  const r = await cli(R, ['logs']);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const phone = lines.filter((l) => l.includes('[phone]'));
  assert.deepEqual(phone.map((l) => l.replace(/^[\d:. ]+/, '')),
                   ['[phone] seq 2 pb_frame: phone line 0', '[phone] seq 2 pb_frame: phone line 1',
                    '[phone] seq 2 pb_frame: phone line 2', '[phone] seq 2 pb_frame: phone line 3',
                    '[phone] seq 2 pb_frame: phone line 4', '[phone] seq 2 prepared (verify 0.30 ms, load 1.10 ms)']);
  assert.ok(lines.some((l) => /\[desk\] TRAP in ggg \(seq 2\): RuntimeError: unreachable/.test(l)));
  const only = await cli(R, ['logs', '--device', 'desk']);
  assert.ok(only.stdout.trim().split('\n').every((l) => l.includes('[desk]')), only.stdout);
  const none = await cli(R, ['logs', '--device', 'nope']);
  assert.equal(none.code, 4);
  // --follow: what is kept, then what comes
  const f = spawn(CLI, ['logs', '--follow', '--url', `ws://127.0.0.1:${relay.port}`, '--token', relay.token(R, 'viewer', 'v')]);
  let text = '';
  f.stdout.on('data', (d) => { text += d; });
  try {
    for (let i = 0; i < 100 && !text.includes('phone line 4'); i++) await new Promise((res) => setTimeout(res, 50));
    b.send({ t: 'log', level: 'warn', text: 'live now', seq: 3, var: 'pb_init' });
    for (let i = 0; i < 100 && !text.includes('live now'); i++) await new Promise((res) => setTimeout(res, 50));
    assert.match(text, /\[desk\] warn seq 3 pb_init: live now/);
  } finally {
    f.kill('SIGTERM');
  }
  a.close();
  b.close();
});

test('every command that joins a room refuses a token for another room than --room: exit 3, naming both', async () => {
  const R = room();
  const src = join(out, 'g.c');
  writeFileSync(src, '#include <patchbay.h>\ndouble g(double v) { return v; }\n');
  for (const args of [['eval', src], ['room'], ['devices'], ['test'], ['logs'], ['snapshot', '-o', join(out, 'no')]]) {
    const r = await cli(R, [...args, '--room', 'elsewhere']);
    assert.equal(r.code, 3, `${args[0]}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^patchbay ${args[0]}: the token is for room "${R}", not "elsewhere"$`, 'm'));
  }
});
