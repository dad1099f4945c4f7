// runtime.test.mjs — the room's program in real Chromium: two editor pages
// and two runtime pages (one phone-sized) in one room against a real relay
// and the real compiler. A pb_frame change reaches both runtimes' canvases
// (their pixels are read back from the worker's framebuffer) and both
// report committed; an endless loop gets the worker restarted and named; a
// tampered frame is refused and the picture stays; a reload catches up to
// the same picture. Prints the commit skew between the two runtime pages
// and the browser's prepare time per patch. Screenshots go to PB_SHOTS.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Relay, launch, setCode } from './harness.mjs';
import { encode, decode } from '../../web/src/msgpack.js';
import { frame } from '../../web/src/proto.js';

const ROOM = 'show';
const SHOTS = process.env.PB_SHOTS;
let relay, browser, ed, ed2, rt1, rt2;
const pages = new Set(); // every page opened, checked for script errors after each test

// pb_rgb(r, g, b) as the canvas holds it (little-endian RGBA)
const rgb = (r, g, b) => (0xff000000 | (b << 16) | (g << 8) | r) >>> 0;
const solid = (r, g, b, extra = '') =>
  `#include <patchbay.h>\n${extra}\nvoid pb_frame(double t, pb_canvas *c) {\n    (void)t;\n` +
  `    pb_clear(c, pb_rgb(${r}, ${g}, ${b}));\n}\n`;

async function until(page, fn, arg, what) {
  try {
    await page.waitForFunction(fn, arg, { timeout: 30000, polling: 50 });
  } catch {
    const s = await page.evaluate(() => JSON.stringify({
      conn: window.patchbay.conn, detail: window.patchbay.detail || window.patchbay.connDetail,
      last: window.patchbay.lastResult, rejects: window.patchbay.rejects, restarts: window.patchbay.restarts,
      stats: window.patchbay.stats })).catch((e) => String(e));
    throw new Error(`${what}: not reached (${s})\n${relay.log.slice(-1500)}`);
  }
}

async function open(ctxOpts, url, errors) {
  const ctx = await browser.newContext(ctxOpts);
  const page = await ctx.newPage();
  page.errors = errors || [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') page.errors.push(`console: ${m.text()}`); });
  page.on('close', () => pages.delete(page));
  pages.add(page);
  await page.goto(url);
  return page;
}

// The centre pixel of a runtime page's last frame.
const centre = (page) => page.evaluate(async () => {
  const p = window.patchbay;
  const [v] = await p.runtime.probe([[p.width >> 1, p.height >> 1]]);
  return v >>> 0;
});

async function untilColour(page, want, what) {
  for (let i = 0; i < 300; i++) { // bounded: 300 × 50 ms
    if ((await centre(page)) === want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const st = await page.evaluate(() => JSON.stringify({ stats: window.patchbay.stats,
    commits: window.patchbay.commits.slice(-4), traps: window.patchbay.traps, restarts: window.patchbay.restarts,
    logs: window.patchbay.logs.slice(-5) }));
  assert.fail(`${what}: the centre pixel is ${(await centre(page)).toString(16)}, not ${want.toString(16)} (${st})`);
}

// Evaluates the whole buffer in editor page p; returns the accepted seq.
async function evalBuffer(p, source) {
  const before = await p.evaluate(() => window.patchbay.req);
  await setCode(p, source);
  await p.keyboard.press('Shift+Enter');
  await until(p, (r) => window.patchbay.lastResult && window.patchbay.lastResult.req > r, before, 'eval answered');
  const res = await p.evaluate(() => window.patchbay.lastResult);
  assert.ok(res.ok, `eval refused: ${JSON.stringify(await p.evaluate(() => window.patchbay.diags))}`);
  return res.seq;
}

const committed = (page, seq) => until(page, (s) => window.patchbay.commits.some((c) => c.seq === s), seq,
                                      `patch ${seq} committed`);

before(async () => {
  relay = await new Relay().start();
  browser = await launch();
  ed = await open({ viewport: { width: 1280, height: 800 } }, relay.link('editor.html', ROOM, 'editor', 'ada'));
  ed2 = await open({ viewport: { width: 1280, height: 800 } }, relay.link('editor.html', ROOM, 'editor', 'bob'));
  rt1 = await open({ viewport: { width: 960, height: 540 } }, relay.link('runtime.html', ROOM, 'runtime', 'projector'));
  rt2 = await open({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
                   relay.link('runtime.html', ROOM, 'runtime', 'phone'));
  for (const p of [rt1, rt2]) await until(p, () => window.patchbay.conn === 'live', null, 'runtime live');
  await until(ed, () => window.patchbay.conn === 'live', null, 'editor live');
});

// A script error on any page fails the test during which it happened (or,
// for one that happened while the pages opened, the first test that runs).
afterEach(() => {
  for (const p of pages) assert.deepEqual(p.errors.splice(0), [], `script errors on ${p.url()}`);
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

test('a pb_frame change reaches both runtime canvases, and both report committed', async () => {
  const s1 = await evalBuffer(ed, solid(200, 30, 60));
  for (const p of [rt1, rt2]) { await committed(p, s1); await untilColour(p, rgb(200, 30, 60), 'red'); }
  const s2 = await evalBuffer(ed, solid(20, 90, 220));
  for (const p of [rt1, rt2]) { await committed(p, s2); await untilColour(p, rgb(20, 90, 220), 'blue'); }
  // the author's devices panel: both runtimes committed s2
  await until(ed, (s) => [...window.patchbay.acks.values()].filter((a) => a.state === 'committed' && a.seq === s).length === 2,
              s2, 'two committed acks in the editor');
  // the other editor sees the patch in its history strip
  await until(ed2, (s) => window.patchbay.history.some((h) => h.seq === s && h.author === 'ada'), s2, 'bob sees it');
  // the author's own page draws it too (its preview runtime)
  await until(ed, (s) => window.patchbay.preview.commits.some((c) => c.seq === s), s2, 'the editor preview commits');

  // lockstep: when each page swapped the patch in, on the room clock
  const at = [];
  for (const p of [rt1, rt2])
    at.push(await p.evaluate((s) => window.patchbay.commits.find((c) => c.seq === s).commit_at_us, s2));
  const prep = [];
  for (const p of [rt1, rt2])
    prep.push(...await p.evaluate(() => window.patchbay.prepared.map((x) => x.prepare_us).filter((x) => x > 0)));
  prep.sort((a, b) => a - b);
  const p50 = prep[prep.length >> 1];
  console.log(`# commit skew between the two runtime pages: ${(Math.abs(at[0] - at[1]) / 1000).toFixed(2)} ms; ` +
              `browser prepare p50 ${(p50 / 1000).toFixed(2)} ms over ${prep.length} prepares`);
  assert.ok(prep.length >= 4, `prepare times reported: ${prep}`);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await rt2.screenshot({ path: join(SHOTS, 'runtime-phone.png') });
  }
});

test('a tampered patch frame is refused, reported, and the picture stays', async () => {
  // a real frame of this room, taken as a viewer sees it, re-signed by nobody
  const frames = await viewerFrames();
  const item = frames.filter((f) => f.t === 'history').flatMap((f) => f.items || []).at(-1);
  assert.ok(item && item.stmt, 'a history item to tamper with');
  const stmt = decode(item.stmt);
  const head = await rt1.evaluate(() => window.patchbay.stats.committedSeq);
  stmt[2] = head + 1; // claims to be the next patch: the signature no longer matches
  const forged = frame('patch', { stmt: encode(stmt), sig: item.sig, module: item.module });
  const before = await rt1.evaluate(() => window.patchbay.rejects.length);
  await rt1.evaluate((b) => window.patchbay.runtime.inject(new Uint8Array(b)), [...forged]);
  await until(rt1, (n) => window.patchbay.rejects.length > n, before, 'the forged frame refused');
  const r = await rt1.evaluate(() => window.patchbay.rejects.at(-1));
  assert.match(r.error, /signature|hash|chain|prev/i);
  assert.match(await rt1.textContent('#last'), /refused/);
  // the forgery does not advance the chain and the old code keeps drawing
  const drawn = await rt1.evaluate(() => window.patchbay.stats.frames);
  await until(rt1, (n) => window.patchbay.stats.frames > n + 10, drawn, 'frames drawn after the refusal');
  assert.equal(await rt1.evaluate(() => window.patchbay.stats.committedSeq), head);
  assert.equal(await centre(rt1), rgb(20, 90, 220));
});

test('an endless loop: the worker is restarted, the page stays usable and says which patch', async () => {
  const bad = await evalBuffer(ed, '#include <patchbay.h>\nvoid pb_frame(double t, pb_canvas *c) {\n' +
                                   '    (void)c;\n    for (volatile double x = t;; x += 1) { }\n}\n');
  for (const p of [rt1, rt2])
    await until(p, (s) => window.patchbay.restarts.some((r) => r.seq === s), bad, 'watchdog restart');
  const r = await rt1.evaluate(() => window.patchbay.restarts.at(-1));
  assert.equal(r.var, 'pb_frame');
  assert.match(r.message, new RegExp(`patch #${bad}`));
  // the editor's console names it too (its preview hit the same loop)
  await until(ed, (s) => [...document.querySelectorAll('#console .log')].some((l) => l.textContent.includes(`#${s}`) &&
                                                                              /restarted|did not return/.test(l.textContent)),
              bad, 'the editor console names the patch');
  // and the restarted runtime pages tell the room: a failed ack naming it
  await until(ed, (s) => [...window.patchbay.acks.values()].filter((a) => a.state === 'failed' && a.seq === s &&
                                                                    /watchdog/.test(a.error || '')).length === 2,
              bad, 'both runtime pages report the patch as failed');
  // the restarted runtimes are live again and run the next patch
  for (const p of [rt1, rt2]) await until(p, () => window.patchbay.conn === 'live', null, 'live after restart');
  const good = await evalBuffer(ed, solid(40, 200, 90));
  for (const p of [rt1, rt2]) { await committed(p, good); await untilColour(p, rgb(40, 200, 90), 'green after the loop'); }
});

test('a test that never returns: the worker restarts without that test, and pb_frame keeps drawing', async () => {
  const green = rgb(40, 200, 90);
  const drawing = await rt1.evaluate(() => window.patchbay.commits.filter((c) => c.vars.includes('pb_frame')).at(-1).seq);
  const spin = await evalBuffer(ed, '#include <patchbay.h>\nPB_TEST(spins) { for (volatile int i = 0;; i++) { } }\n');
  for (const p of [rt1, rt2]) await committed(p, spin);
  const restartsBefore = await rt1.evaluate(() => window.patchbay.restarts.length);
  const editor = await editorSocket((ws) => ws.send(frame('test_req', { req: 5, filter: 'spins' })));
  try {
    for (const p of [rt1, rt2])
      await until(p, (n) => window.patchbay.restarts.length > n, restartsBefore, 'watchdog restart');
  } finally {
    editor.close();
  }
  const r = await rt1.evaluate(() => window.patchbay.restarts.at(-1));
  assert.equal(r.var, 'pb_test__spins', r.message);
  assert.equal(r.seq, spin);
  // the restarted runtime takes back the test's patch, not the one drawing
  await until(rt1, (s) => window.patchbay.traps.some((t) => t.seq === s), spin, 'the test\'s patch taken back');
  for (const p of [rt1, rt2]) {
    await until(p, () => window.patchbay.conn === 'live', null, 'live after restart');
    await untilColour(p, green, 'still green');
    assert.deepEqual(await p.evaluate((s) => window.patchbay.traps.filter((t) => t.seq === s), drawing), [],
                     `patch ${drawing} (pb_frame) is not taken back`);
  }
});

test('a reloaded runtime page catches up to the same picture', async () => {
  // its join fragment was cleared from view once read (issue 22, item 9)
  assert.equal(await rt2.evaluate(() => location.hash), '');
  await rt2.reload();
  await until(rt2, () => window.patchbay.conn === 'live', null, 'live after reload');
  await untilColour(rt2, rgb(40, 200, 90), 'green after reload');
  // PB_STATE keeps its value when the code that uses it is redefined
  await evalBuffer(ed, '#include <patchbay.h>\nPB_STATE(int, mark, 0);\n' +
                       'void pb_frame(double t, pb_canvas *c) {\n    (void)t;\n    mark = 77;\n' +
                       '    pb_clear(c, pb_rgb(mark, 0, 0));\n}\n');
  await untilColour(rt1, rgb(77, 0, 0), 'the state patch draws');
  const s = await evalBuffer(ed, '#include <patchbay.h>\nPB_STATE(int, mark, 0);\n' +
                                 'void pb_frame(double t, pb_canvas *c) {\n    (void)t;\n' +
                                 '    pb_clear(c, pb_rgb(mark, 1, 0));\n}\n');
  await committed(rt1, s);
  await untilColour(rt1, rgb(77, 1, 0), 'redefined, the state kept');
  if (SHOTS) {
    await evalBuffer(ed, readFileSync(new URL('../../examples/demo.c', import.meta.url), 'utf8'));
    await new Promise((res) => setTimeout(res, 1500));
    await rt1.screenshot({ path: join(SHOTS, 'runtime.png') });
    await ed.screenshot({ path: join(SHOTS, 'editor-runtime.png') });
  }
});

test('a runtime link without its key says what is missing and does not join', async () => {
  const p = await open({ viewport: { width: 400, height: 300 } },
                       `http://127.0.0.1:${relay.port}/runtime.html#room=${ROOM}&token=t`);
  await until(p, () => window.patchbay.conn === 'failed', null, 'the page refuses the link');
  assert.match(await p.evaluate(() => window.patchbay.detail), /join link lacks key \(64 hex digits\)/);
  assert.equal(await p.evaluate(() => window.patchbay.runtime), undefined, 'no runtime started');
  assert.deepEqual(p.errors, [], 'no script errors');
  await p.context().close();
});

// Joins as an editor with the ws package; once welcomed, calls then(ws).
async function editorSocket(then) {
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${ROOM}`, 'patchbay');
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => {
    ws.on('open', () => ws.send(frame('hello', { token: relay.token(ROOM, 'editor', 'tester'), client: 'runtime.test' })));
    ws.on('message', (d) => {
      if (decode(new Uint8Array(d)).t !== 'welcome') return;
      then(ws);
      resolve();
    });
    ws.on('error', reject);
  });
  return ws;
}

// Joins as a viewer with the ws package and returns the frames received
// until the end of the catch-up.
async function viewerFrames() {
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${ROOM}`, 'patchbay');
  const frames = [];
  await new Promise((resolve, reject) => {
    ws.on('open', () => ws.send(frame('hello', { token: relay.token(ROOM, 'viewer', 'probe'),
                                          client: 'runtime.test' })));
    ws.on('message', (d) => {
      const f = decode(new Uint8Array(d));
      frames.push(f);
      if (f.t === 'history' && !f.more) resolve();
    });
    ws.on('error', reject);
  });
  ws.close();
  return frames;
}
