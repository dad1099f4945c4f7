// timeline.test.mjs — the editor page's timeline in Debian's Chromium
// against a real relay: dragging the handle (here: the keyboard on the
// track) shows the room as it was at that patch in the page's own runtime
// — the pixels a fresh node runtime given only patches 1..N draws for that
// patch's apply time — with that patch's source, while the room and its
// devices carry on untouched; "live" goes back to the room as it runs;
// "restore this version" evaluates that patch's source again as a new
// patch of the room. Screenshot of the timeline: PB_SHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, joinRoom, decode, until } from '../runtime/harness.mjs';
import { launch, WEB } from '../web/harness.mjs';
import { Peer } from '../peer.mjs';

const SHOTS = process.env.PB_SHOTS;
const H = '#include <patchbay.h>\n';
const N = 10;

// Each patch paints the screen its own colour, with stars from rand()
// (seeded per patch: the same stars for the same patch) and a disc whose
// size pb_init state decides.
function source(i) {
  if (i % 3 === 1)
    return H + `PB_STATE(int, size, 4);\nvoid pb_init(void) { size += ${i}; }\n`;
  return H + 'PB_STATE(int, size, 4);\nvoid pb_frame(double t, pb_canvas *c) {\n' +
    `  (void)t;\n  pb_clear(c, pb_rgb(${20 * i}, ${250 - 20 * i}, 90));\n` +
    `  pb_circle(c, c->width / 2, c->height / 2, size * 3, pb_rgb(250, 220, ${i * 20}));\n` +
    '  for (int k = 0; k < 80; k++) pb_pixel(c, rand() % c->width, rand() % c->height, pb_rgb(255, 255, 255));\n}\n';
}

let relay, browser, page, key, rec, watcher, head, livePicture;
const frames = [];

before(async () => {
  relay = await new Relay({ args: ['--web', WEB] }).start();
  key = relay.key();
  rec = new Recorder(relay, 'jam');
  await rec.ready;
  // two authors, so the marks have two colours
  const bo = await Peer.join(relay, 'jam', 'editor', 'bo');
  for (let i = 1; i <= N; i++) {
    let seq;
    if (i % 2) {
      ({ seq } = await relay.eval('jam', source(i)));
    } else {
      bo.send({ t: 'eval', req: i, lang: 'c', source: source(i) });
      const d = await bo.waitFor((f) => (f.t === 'diag' || f.t === 'error') && f.req === i, `eval ${i}`);
      assert.ok(d.ok, JSON.stringify(d));
      seq = d.seq;
    }
    frames.push(await rec.patch(seq));
  }
  bo.close();
  head = rec.heads[0]; // it names the room's epoch
  // a device of the room, to show the scrub does not reach it
  watcher = await joinRoom(relay.link('jam', 'projector'), { name: 'projector' });
  await until(() => watcher.committedSeq === N, 'the projector has the room');
  browser = await launch();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${relay.port}/editor.html#room=jam&token=${relay.token('jam', 'editor', 'ana')}` +
                  `&key=${key}`);
  await page.waitForFunction((n) => window.patchbay.conn === 'live' && window.patchbay.headSeq === n &&
                                    window.patchbay.preview.stats.committedSeq === n, N,
                             { timeout: 60000, polling: 100 });
  await page.waitForTimeout(150);
  livePicture = await shown(); // what this page's runtime draws of the room before any scrub
});
after(async () => {
  watcher?.close();
  rec?.close();
  closeBareRuntimes();
  await browser?.close();
  await relay?.stop();
});

// The preview canvas's pixels at a grid of points, packed as pb_rgba does.
const GRID = [];
for (let y = 3; y < 360; y += 23) for (let x = 5; x < 640; x += 29) GRID.push([x, y]);
async function shown() {
  const size = await page.evaluate(() => ({ w: document.getElementById('screen').width,
                                            h: document.getElementById('screen').height }));
  const points = GRID.filter(([x, y]) => x < size.w && y < size.h);
  const rgba = await page.evaluate((p) => window.patchbay.previewRuntime.probe(p), points);
  return { size, points, rgba };
}

// What a fresh node runtime given only patches 1..n draws at patch n's
// apply time, at the same points.
async function expected(n, size, points) {
  const rt = await bareRuntime('jam', key, { now: 4e15, head });
  for (let s = 1; s <= n; s++) assert.ok(rt.receive(frames[s - 1]).ok, `seq ${s}`);
  rt.attachCanvas(size.w, size.h);
  assert.ok(rt.drawAt(decode(decode(frames[n - 1]).stmt)[10] / 1e6).ok);
  const px = new Uint32Array(rt.canvas.pixels().slice().buffer);
  return points.map(([x, y]) => px[y * size.w + x]);
}

async function scrubTo(n) {
  await page.locator('.timeline-track').focus();
  await page.keyboard.press('End');
  await page.keyboard.press('Home');
  for (let k = 0; k < n; k++) await page.keyboard.press('ArrowRight');
  await page.waitForFunction((s) => window.patchbay.scrub.at === s && window.patchbay.scrub.ms !== null, n,
                             { timeout: 60000, polling: 50 });
  // the worker draws the frame it posts "scrubbed" for; give the canvas one
  // more frame to land
  await page.waitForTimeout(100);
}

test('scrubbing shows the room as it was at that patch, in this browser only', async () => {
  assert.equal(await page.locator('.timeline-track').getAttribute('aria-valuemax'), String(N));
  for (const n of [6, 2, 9, 5]) {
    await scrubTo(n);
    const got = await shown();
    assert.deepEqual(got.rgba, await expected(n, got.size, got.points), `patch ${n}, pixel for pixel`);
    assert.equal(await page.textContent('#timeline-source'), source(n));
    assert.match(await page.textContent('#timeline-at'), new RegExp(`^#${n} · ${n % 2 ? 'ed' : 'bo'} · `));
  }
  // the room and its devices went on as they were
  const s = await page.evaluate(() => ({ head: window.patchbay.headSeq, live: window.patchbay.preview.stats.committedSeq }));
  assert.deepEqual(s, { head: N, live: N });
  assert.equal(watcher.committedSeq, N);
  assert.equal(rec.patches.length, N, 'nothing was sent to the room');
  const ms = await page.evaluate(() => window.patchbay.scrub.ms);
  console.log(`# scrub in Chromium: the last seek drawn ${ms} ms after the request`);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.locator('.timeline-box').screenshot({ path: join(SHOTS, 'timeline.png') });
    await page.screenshot({ path: join(SHOTS, 'editor-scrub.png') });
  }
});

test('"live" goes back to the room as it runs', async () => {
  await scrubTo(2);
  await page.click('#live');
  await page.waitForFunction(() => window.patchbay.scrub.at === null);
  await page.waitForTimeout(150);
  const got = await shown();
  // the live runtime's picture, as before the scrub (its stars come from
  // rand(), seeded with the room time of each frame, so they move; it
  // joined with a state catch-up, so its state need not be what a runtime
  // given every patch has: docs/ARCHITECTURE.md § Determinism)
  const same = got.rgba.filter((v, i) => v === livePicture.rgba[i]).length;
  assert.ok(same >= got.points.length * 0.9, `${same} of ${got.points.length} points as the room draws it now`);
  assert.equal(await page.isHidden('#live'), true);
});

test('"restore this version" evaluates that patch\'s source again as a new patch', async () => {
  await scrubTo(5);
  await page.click('#restore');
  await page.waitForFunction(() => /^restored: #5 evaluated again as seq \d+/.test(document.getElementById('status').textContent),
                             null, { timeout: 30000 });
  const p = decode(await rec.patch(N + 1));
  assert.equal(p.source, source(5));
  assert.equal(decode(p.stmt)[6], 'ana');
  // back to live, with the restored version running in the room
  await page.waitForFunction((n) => window.patchbay.scrub.at === null && window.patchbay.preview.stats.committedSeq === n,
                             N + 1, { timeout: 30000 });
  await until(() => watcher.committedSeq === N + 1, 'the projector has the restored version');
  assert.deepEqual(page.errors, []);
});
