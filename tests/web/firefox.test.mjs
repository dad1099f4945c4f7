// firefox.test.mjs — the runtime page in a second browser engine: Debian's
// Firefox ESR, driven over WebDriver BiDi (tests/firefox.mjs), joins a room
// of a real relay, commits two patches from `patchbay eval` and draws each
// (its framebuffer's centre pixel read back from the worker), with no
// script error. The README says "Chromium or Firefox"; this keeps it true.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Relay } from './harness.mjs';
import { Firefox } from '../firefox.mjs';

const ROOM = 'fox';
const SHOTS = process.env.PB_SHOTS;
let relay, ff, page;

const rgb = (r, g, b) => (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
const solid = (r, g, b) => '#include <patchbay.h>\nvoid pb_frame(double t, pb_canvas *c) {\n' +
                           `    (void)t;\n    pb_clear(c, pb_rgb(${r}, ${g}, ${b}));\n}\n`;

const centre = () => page.evaluate(async () => {
  const p = window.patchbay;
  const [v] = await p.runtime.probe([[p.width >> 1, p.height >> 1]]);
  return v >>> 0;
});

async function untilColour(want, what) {
  for (let i = 0; i < 300; i++) { // bounded: 300 × 50 ms
    if ((await centre()) === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const st = await page.evaluate(() => ({ conn: window.patchbay.conn, stats: window.patchbay.stats,
                                          rejects: window.patchbay.rejects, logs: window.patchbay.logs.slice(-5) }));
  assert.fail(`${what}: the centre pixel is ${(await centre()).toString(16)}, not ${want.toString(16)} ` +
              `(${JSON.stringify(st)})\n${relay.log.slice(-1500)}`);
}

before(async () => {
  relay = await new Relay().start();
  ff = await Firefox.launch();
  page = await ff.open(relay.link('runtime.html', ROOM, 'runtime', 'firefox'), { width: 800, height: 450 });
  await page.waitFor(() => window.patchbay.conn === 'live', null, { what: 'the runtime page is live' });
});

after(async () => {
  await ff?.close();
  await relay?.stop();
});

test('a Firefox runtime page commits patches and draws them', async () => {
  const seqOf = (out) => Number(/seq (\d+)/.exec(out)[1]);
  const s1 = seqOf(relay.eval(ROOM, 'ada', 'red.c', solid(200, 30, 60)));
  await page.waitFor((s) => window.patchbay.commits.some((c) => c.seq === s), s1, { what: `seq ${s1} committed` });
  await untilColour(rgb(200, 30, 60), 'red');
  const s2 = seqOf(relay.eval(ROOM, 'ada', 'blue.c', solid(20, 90, 220)));
  await page.waitFor((s) => window.patchbay.commits.some((c) => c.seq === s), s2, { what: `seq ${s2} committed` });
  await untilColour(rgb(20, 90, 220), 'blue');
  assert.match(await page.evaluate(() => navigator.userAgent), /Firefox\//);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    writeFileSync(join(SHOTS, 'runtime-firefox.png'), await page.screenshot());
  }
});

test('no script errors in Firefox', () => {
  assert.deepEqual(page.errors, []);
});
