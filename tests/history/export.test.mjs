// export.test.mjs — `patchbay export` to one HTML file, opened in Debian's
// Chromium from file:// with no relay running: it verifies every patch,
// then draws the session's last frame — the pixels a node runtime given
// the same patches draws for the same room time; its timeline seeks back.
// A copy with one byte of one patch flipped says which patch does not
// verify and plays only the patches before it. Screenshot: PB_SHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Relay, Recorder, bareRuntime, closeBareRuntimes, CLI, decode } from '../runtime/harness.mjs';
import { launch } from '../web/harness.mjs';
import { decodeSequence, encode } from '../../web/src/msgpack.js';

const SHOTS = process.env.PB_SHOTS;
const H = '#include <patchbay.h>\n';
const W = 640, HT = 360; // the player's canvas (web/player.html)
const N = 12;

let relay, browser, key, html, head;
const frames = [];

function source(i) {
  if (i === 1)
    return H + 'PB_STATE(double, phase, 0);\nvoid pb_init(void) { phase += 0.5; }\n';
  if (i % 2 === 0)
    return H + 'PB_STATE(double, phase, 0);\nvoid pb_frame(double t, pb_canvas *c) {\n' +
      `  pb_clear(c, pb_rgb(${10 * i}, 40, 90));\n` +
      `  pb_circle(c, c->width / 2, c->height / 2, ${20 + 5 * i} + (int)(phase * 10), pb_rgb(250, 200, ${i * 20}));\n` +
      `  for (int k = 0; k < 40; k++) pb_pixel(c, rand() % c->width, rand() % c->height, pb_rgb(255, 255, 255));\n}\n`;
  return H + `PB_STATE(double, phase, 0);\nvoid pb_init(void) { phase += ${i}; }\n`;
}

before(async () => {
  relay = await new Relay().start();
  key = relay.key();
  const rec = new Recorder(relay, 'show');
  await rec.ready;
  for (let i = 1; i <= N; i++) {
    const { seq } = await relay.eval('show', source(i));
    frames.push(await rec.patch(seq));
  }
  head = rec.heads[0]; // it names the room's epoch
  rec.close();
  html = join(relay.dir, 'show.html');
  const out = execFileSync(CLI, ['export', '--room', 'show', '--data', relay.data, '-o', html]).toString();
  assert.match(out, new RegExp(`room show: ${N} patches exported to .*show\\.html \\(html,`));
  browser = await launch();
});
after(async () => {
  closeBareRuntimes();
  await browser?.close();
  await relay?.stop();
});

async function openPlayer(file) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // file://: nothing may be fetched from anywhere
  const fetched = [];
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) fetched.push(r.url()); });
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction(() => ['ready', 'failed'].includes(window.patchbayPlayer?.state), null,
                             { timeout: 60000, polling: 100 });
  page.errors = errors;
  page.fetched = fetched;
  return page;
}

const status = (page) => page.evaluate(() => ({ ...window.patchbayPlayer }));
const pixels = (page) => page.evaluate(() => {
  const c = document.getElementById('screen');
  return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
});

// What a node runtime given patches 1..n draws for room time tUs.
async function expected(n, tUs) {
  const rt = await bareRuntime('show', key, { now: 4e15, head });
  for (let s = 1; s <= n; s++) assert.ok(rt.receive(frames[s - 1]).ok);
  rt.attachCanvas(W, HT);
  assert.ok(rt.drawAt(tUs / 1e6).ok);
  return Array.from(rt.canvas.pixels());
}

test('the exported file verifies every patch and draws the last frame, from file://', async () => {
  const page = await openPlayer(html);
  const s = await status(page);
  assert.equal(s.state, 'ready', s.problem);
  assert.equal(s.problem, '');
  assert.equal(s.verified, N);
  assert.equal(s.seq, N);
  assert.equal(s.key, key);
  const applyUs = decode(decode(frames[N - 1]).stmt)[10];
  assert.equal(s.tUs, applyUs);
  const got = await pixels(page);
  assert.deepEqual(got, await expected(N, applyUs), 'the last frame, pixel for pixel');
  assert.match(await page.textContent('#verdict'), new RegExp(`${N} patches verified`));
  assert.deepEqual(page.fetched, [], 'nothing fetched');
  assert.deepEqual(page.errors, []);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, 'player.png') });
  }
  // the timeline seeks back: the handle at the far left is before patch 1,
  // a little right of it is patch 1 (the file's timeline is a time axis)
  const box = await page.locator('.timeline-track').boundingBox();
  await page.keyboard.press('Tab');
  await page.locator('.timeline-track').focus();
  await page.keyboard.press('Home');
  await page.waitForFunction(() => window.patchbayPlayer.seq === 0);
  for (let k = 1; k <= 4; k++) await page.keyboard.press('ArrowRight');
  await page.waitForFunction(() => window.patchbayPlayer.seq === 4);
  const at4 = await status(page);
  assert.deepEqual(await pixels(page), await expected(4, at4.tUs), 'patch 4, pixel for pixel');
  assert.match(await page.textContent('#patch-source'), /pb_frame/);
  assert.ok(box.width > 100);
  await page.close();
});

test('a copy with one flipped byte stops at that patch and says so', async () => {
  const text = readFileSync(html, 'utf8');
  const tag = '<script type="application/x-patchbay-bundle">';
  const a = text.indexOf(tag) + tag.length;
  const b = text.indexOf('</script>', a);
  const bundle = Buffer.from(text.slice(a, b).replace(/\s+/g, ''), 'base64');
  const values = decodeSequence(new Uint8Array(bundle));
  // one byte of patch 7's statement (its author name, "ed")
  const p7 = values[7].value;
  const at = values[7].at + Buffer.from(encode(p7)).indexOf(Buffer.from(p7.stmt)) +
             Buffer.from(p7.stmt).indexOf(Buffer.from('ed'));
  bundle[at] ^= 0x20;
  const bad = join(relay.dir, 'show-edited.html');
  writeFileSync(bad, text.slice(0, a) + '\n' + bundle.toString('base64').replace(/.{76}/g, '$&\n') + '\n' +
                text.slice(b));
  // the CLI agrees
  let cli = '';
  try {
    execFileSync(CLI, ['verify', bad, '--key', key], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    cli = String(e.stdout);
    assert.equal(e.status, 1);
  }
  assert.match(cli, /BROKEN: seq 7: its signature does not verify: the statement was changed/);
  const page = await openPlayer(bad);
  const s = await status(page);
  assert.equal(s.verified, 6);
  assert.match(s.problem, /^Patch 7 of this file does not verify: .*\(code 20\)\. The session stops before it, at patch 6\./);
  assert.equal(s.seq, 6);
  assert.match(await page.textContent('#problem'), /Patch 7 of this file does not verify/);
  const applyUs = decode(decode(frames[5]).stmt)[10];
  assert.deepEqual(await pixels(page), await expected(6, applyUs), 'patch 6 drawn, not 7');
  await page.close();
});
