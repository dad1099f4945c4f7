// oversized.test.mjs — endless data (issue 15, hole 6): a man in the
// middle sends a runtime a 48 MiB frame. The node runtime's socket refuses
// it at its header (maxPayload) and reconnects; a Chromium runtime page's
// host refuses it before a byte of it reaches wasm memory (which never
// shrinks). Either way the memory stays as it was, the runtime keeps
// serving, and it takes the next honest patch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRoom, until, PB } from '../runtime/harness.mjs';
import { H, mitm, relay, relayBehindMitm, runtimePage } from './scene.mjs';

const ROOM = 'flood';
const HUGE = 48 * 1024 * 1024;

relayBehindMitm();

test('node runtime: a 48 MiB frame is refused by its socket; memory stays, the next patch commits', async () => {
  const rt = await joinRoom(mitm.link(relay.link(ROOM, 'node')), { name: 'node', backoffMs: 100 });
  try {
    const states = [];
    rt.on('state', (s) => states.push(s));
    await until(() => rt.state === 'live', 'the runtime live');
    const { seq: s1 } = await relay.eval(ROOM, `${H}double ggg(double v) { return v + 48; }\n`, { runtimes: 1 });
    await until(() => rt.committedSeq >= s1, `seq ${s1} committed`);
    const mem = rt.M.HEAPU8.length;
    mitm.inject(new Uint8Array(HUGE));
    await until(() => states.some((s) => s.state === 'waiting'), 'the runtime drops the connection that sent it');
    assert.match(states.find((s) => s.state === 'waiting').detail,
                 new RegExp(`over the ${PB.PB_MAX_FRAME_BYTES}-byte limit`));
    await until(() => rt.state === 'live', 'the runtime back');
    assert.equal(rt.M.HEAPU8.length, mem, 'wasm memory did not grow');
    const { seq: s2 } = await relay.eval(ROOM, `${H}double ggg(double v) { return v + 49; }\n`, { runtimes: 1 });
    await until(() => rt.committedSeq >= s2, `seq ${s2} committed after the attack`);
    assert.equal(rt.call('ggg', 10), 59);
  } finally {
    rt.close();
  }
});

test('Chromium runtime page: a 48 MiB frame is refused before it reaches wasm; memory stays, the next patch draws', async () => {
  const { page, errors, wait } = await runtimePage(mitm.link(relay.link(ROOM, 'page')));
  await wait(() => window.patchbay.conn === 'live' && window.patchbay.stats.memBytes > 0, null, 'the page live');
  const { seq: s1 } = await relay.eval(ROOM, `${H}double ggg(double v) { return v + 50; }\n`, { runtimes: 1 });
  await wait((s) => window.patchbay.stats.committedSeq >= s, s1, `seq ${s1} committed`);
  const mem = await page.evaluate(() => window.patchbay.stats.memBytes);
  mitm.inject(new Uint8Array(HUGE));
  // Refused by the host. (On a loaded machine, taking in 48 MiB can keep
  // the worker from drawing for longer than its watchdog allows: then the
  // page restarts it, which takes in nothing of the frame either.)
  await wait((c) => window.patchbay.rejects.some((r) => r.code === c) || window.patchbay.restarts.length,
             PB.PB_ERR_TOO_BIG, 'the frame refused');
  const restarted = await page.evaluate(() => window.patchbay.restarts.at(-1));
  if (restarted) assert.equal(restarted.seq, 0, `not blamed on a patch: ${restarted.message}`);
  else assert.match((await page.evaluate(() => window.patchbay.rejects.at(-1))).error,
                    new RegExp(`over the ${PB.PB_MAX_FRAME_BYTES}-byte limit`));
  // a beat after the refusal reports the memory (a new worker counts
  // its frames from 0)
  const frames = restarted ? 0 : await page.evaluate(() => window.patchbay.stats.frames);
  await wait((n) => window.patchbay.stats.frames > n + 20, frames, 'frames drawn after the refusal');
  assert.equal(await page.evaluate(() => window.patchbay.stats.memBytes), mem, 'wasm memory did not grow');
  const { seq: s2 } = await relay.eval(ROOM, `${H}double ggg(double v) { return v + 51; }\n`, { runtimes: 1 });
  await wait((s) => window.patchbay.stats.committedSeq >= s, s2, `seq ${s2} committed after the attack`);
  assert.deepEqual(errors, []);
});
