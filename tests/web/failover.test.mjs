// failover.test.mjs — the pages with a join link that names a second relay
// (issue 19; docs/PROTOCOL.md § Transport), in Chromium: the relay that
// served them is killed (-9) and the same relay (same data: key and chain)
// comes back on the link's second port, allowing the first one's origin.
// The runtime page and the editor page reconnect there by themselves; the
// runtime page catches up the patch evaluated meanwhile, and an eval from
// the editor page, now sent through the second relay, reaches it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { freePort } from '../serve.mjs';
import { Relay, WEB, launch, setCode } from './harness.mjs';

const ROOM = 'moving';
let relay, browser;

after(async () => {
  await browser?.close();
  await relay?.stop();
});

const waitFor = (page, fn, arg, what) =>
  page.waitForFunction(fn, arg, { timeout: 30000, polling: 50 }).catch(async () => {
    const s = await page.evaluate(() => JSON.stringify({ conn: window.patchbay.conn,
      detail: window.patchbay.detail || window.patchbay.connDetail })).catch((e) => String(e));
    throw new Error(`${what}: not reached (${s})\n${relay.log.slice(-1500)}`);
  });

const solid = (r, g, b) => `#include <patchbay.h>\nvoid pb_frame(double t, pb_canvas *c) {\n` +
  `    (void)t;\n    pb_clear(c, pb_rgb(${r}, ${g}, ${b}));\n}\n`;
const seqOf = (out) => Number(/accepted as seq (\d+)/.exec(out)[1]);

test('the runtime and editor pages move to the link\'s second relay when the first dies, and catch up', async () => {
  relay = await new Relay().start();
  const first = relay.port, second = await freePort();
  browser = await launch();
  const errors = [];
  const open = async (url) => {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url);
    return page;
  };
  const more = `&relays=127.0.0.1:${second}`;
  const ed = await open(relay.link('editor.html', ROOM, 'editor', 'ada') + more);
  const rt = await open(relay.link('runtime.html', ROOM, 'runtime', 'wall') + more);
  for (const p of [ed, rt]) await waitFor(p, () => window.patchbay.conn === 'live', null, 'live');
  const s1 = seqOf(relay.eval(ROOM, 'cli', 'red.c', solid(200, 0, 0)));
  await waitFor(rt, (s) => window.patchbay.commits.some((c) => c.seq === s), s1, `seq ${s1} committed`);

  await relay.kill();
  for (const p of [ed, rt]) await waitFor(p, () => window.patchbay.conn !== 'live', null, 'the loss noticed');
  relay.port = second; // same data: same key and chain; the pages' origin is the first port's
  await relay.serve(['--web', WEB, '--allow-origin', `http://127.0.0.1:${first}`]);
  const s2 = seqOf(relay.eval(ROOM, 'cli', 'green.c', solid(0, 200, 0)));
  for (const p of [ed, rt]) await waitFor(p, () => window.patchbay.conn === 'live', null, 'live on the second relay');
  await waitFor(rt, (s) => window.patchbay.commits.some((c) => c.seq === s), s2, `seq ${s2} caught up`);

  // an eval from the editor page goes through the second relay now
  const before = await ed.evaluate(() => window.patchbay.req);
  await setCode(ed, solid(0, 0, 200));
  await ed.keyboard.press('Shift+Enter');
  await waitFor(ed, (r) => window.patchbay.lastResult && window.patchbay.lastResult.req > r, before, 'eval answered');
  const res = await ed.evaluate(() => window.patchbay.lastResult);
  assert.ok(res.ok, 'the editor page\'s eval was accepted');
  await waitFor(rt, (s) => window.patchbay.commits.some((c) => c.seq === s), res.seq, `seq ${res.seq} live`);
  const seqs = await rt.evaluate(() => window.patchbay.commits.map((c) => c.seq));
  assert.deepEqual(seqs, [s1, s2, res.seq], 'every patch once, in order');
  assert.deepEqual(errors, [], 'no script errors');
});
