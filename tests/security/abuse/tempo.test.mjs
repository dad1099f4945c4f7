// tempo.test.mjs — issue 22, tempo freeze: an owner set `room --tempo
// 0.000000001` and the next patch was due millennia away, holding back
// every later patch on every runtime. The relay refuses such settings, and
// a runtime refuses a patch due further ahead of its room clock than
// PB_MAX_APPLY_AHEAD_US (reporting it) and takes the next one.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, decode, statementApplyUs, CLI, PB }
  from '../../runtime/harness.mjs';

const run = promisify(execFile);
const FORGE = process.env.PB_FORGE;
if (!FORGE) throw new Error('set PB_FORGE (ctest does)');
const H = '#include <patchbay.h>\n';
let relay;

before(async () => { relay = await new Relay().start(); });
afterEach(closeBareRuntimes);
after(async () => { await relay?.stop(); });

async function room(args) {
  const token = relay.token('slow', 'owner', 'own');
  return run(CLI, ['room', '--url', `ws://127.0.0.1:${relay.port}`, '--token', token, ...args])
    .then((r) => ({ code: 0, ...r }), (e) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }));
}

test('the relay refuses a tempo under 1 BPM and a quantum over 60 s, and keeps the settings it had', async () => {
  let r = await room(['--tempo', '120', '--quantum', '4']);
  assert.equal(r.code, 0, r.stderr);
  r = await room(['--tempo', '0.000000001']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /tempo 1e-09 BPM is out of range: 0 \(no tempo\) or 1 to 999 BPM/);
  r = await room(['--tempo', '2', '--quantum', '4']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /a quantum of 4 beats at 2 BPM lasts 120 s, more than 60 s/);
  r = await room([]);
  assert.match(r.stdout, /tempo 120 BPM, patches apply every 4 beats/);
  // and patches still apply within a quantum of their creation
  const { stdout } = await relay.eval('slow', `${H}double f(double v) { return v; }\n`);
  assert.match(stdout, /accepted as seq 1/);
});

test('a runtime refuses a patch due too far ahead of its room clock, reports it, and takes the next', async () => {
  const rec = new Recorder(relay, 'ahead');
  await rec.ready;
  try {
    const { seq: s1 } = await relay.eval('ahead', `${H}double ggg(double v) { return v + 48; }\n`);
    const { seq: s2 } = await relay.eval('ahead', `${H}double ggg(double v) { return v + 49; }\n`);
    const r1 = await rec.patch(s1), r2 = await rec.patch(s2);
    // A relay that signs a patch due in an hour (this relay refuses to; a
    // hostile one, or one with a stolen key, need not: pb_forge signs with
    // the relay's key). The runtime's room clock cannot be behind the
    // statement's signed creation, so it is the apply time that is ahead.
    const forge = (...args) => {
      const f = (name, bytes) => { const p = join(relay.dir, name); writeFileSync(p, bytes); return p; };
      return new Uint8Array(execFileSync(FORGE, args.map((a, i) => (a instanceof Uint8Array ? f(`f${i}`, a) : a))));
    };
    const p1 = forge('--apply-in-us', String(3600e6), relay.data, '-', r1);
    const p2 = forge(relay.data, p1, r2);
    const rt = await bareRuntime('ahead', relay.key(), { now: statementApplyUs(decode(p1).stmt) - 3600e6 });
    const ev = rt.receive(p1);
    assert.equal(ev.ok ?? false, false, 'refused');
    assert.equal(ev.code, PB.PB_ERR_FIELD_RANGE);
    assert.match(ev.error, /apply time is 3600 s ahead of the room clock, more than 70 s/);
    const failed = rt.acks('failed').at(-1);
    assert.equal(failed?.seq, 1, 'a failed ack names the patch');
    assert.equal(rt.pendingCount, 0, 'nothing waits for it');
    // authentic and chained: the next patch follows it
    rt.setNow(statementApplyUs(decode(p2).stmt) + 1);
    assert.ok(rt.receive(p2).ok);
    rt.step();
    assert.equal(rt.call('ggg', 10), 59);
  } finally {
    rec.close();
  }
});
