// shared.test.mjs — shared buffers in real Chromium with real keyboard input
// (docs/PROTOCOL.md § Shared buffers): two editors typing into one buffer at
// once converge and see each other's named cursors; a third joins after
// 1,000 edits and converges; a viewer sees the text and cannot change it
// (the relay refuses its crafted update); a relay killed with -9 while
// people type keeps every acknowledged edit; an editor offline for 10 s
// merges its edits on return; an evaluation flashes in the other editor.
// A screenshot of two editors with each other's cursors goes to PB_SHOTS.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as Y from 'yjs';
import { Relay, launch, setCode } from './harness.mjs';
import { Peer } from '../peer.mjs';

const ROOM = 'mob';
const SHOTS = process.env.PB_SHOTS;
let relay, browser, a, b;
const pages = new Set();

async function until(page, fn, arg, what, ms = 20000) {
  try {
    await page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
  } catch (e) {
    const s = await page.evaluate(() => ({ conn: window.patchbay.conn, status: document.getElementById('status').textContent,
                                          text: window.patchbay.view.state.doc.toString().slice(0, 300) }));
    throw new Error(`${what}: not reached (${JSON.stringify(s)})\n${relay.log.slice(-1500)}`);
  }
}

async function open(name, role = 'editor') {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  pages.add(page);
  await page.goto(relay.link('editor.html', ROOM, role, name));
  await until(page, () => window.patchbay.conn === 'live' && window.patchbay.shared.active?.synced, null, `${name} in the shared buffer`);
  return page;
}

const textOf = (page) => page.evaluate(() => window.patchbay.view.state.doc.toString());
const bufferText = (page) => page.evaluate(() => window.patchbay.shared.active.text.toString());

// Both pages show the same text, and the relay has acknowledged all of it.
async function converged(pages, what) {
  const settled = () => window.patchbay.shared.active.pending.length === 0 && !window.patchbay.shared.active.inflight;
  for (const p of pages) await until(p, settled, null, `${what}: everything sent`);
  const want = await bufferText(pages[0]);
  for (const p of pages) await until(p, (t) => window.patchbay.view.state.doc.toString() === t, want, `${what}: same text`);
  return want;
}

before(async () => {
  relay = await new Relay().start();
  browser = await launch();
  a = await open('ada');
  b = await open('bob');
});

afterEach(() => {
  for (const p of pages) assert.deepEqual(p.errors.splice(0), [], 'script errors on a page');
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

test('two editors type into the same buffer at once, converge, and see each other\'s named cursors', async () => {
  await setCode(a, 'int ada = 0;\n\nint bob = 0;\n');
  await converged([a, b], 'the start');
  // each types at the end of their own line, keystroke by keystroke, at once
  await a.evaluate(() => { const v = window.patchbay.view; v.dispatch({ selection: { anchor: v.state.doc.line(1).to } }); v.focus(); });
  await b.evaluate(() => { const v = window.patchbay.view; v.dispatch({ selection: { anchor: v.state.doc.line(3).to } }); v.focus(); });
  for (let i = 0; i < 8; i++)
    await Promise.all([a.keyboard.type(` /* a${i} */`), b.keyboard.type(` /* b${i} */`)]);
  const text = await converged([a, b], 'after typing');
  for (let i = 0; i < 8; i++) {
    assert.ok(text.split('\n')[0].includes(`/* a${i} */`), `ada's ${i} on her line:\n${text}`);
    assert.ok(text.split('\n')[2].includes(`/* b${i} */`), `bob's ${i} on his line:\n${text}`);
  }
  // each sees the other's caret with the other's name
  await b.waitForSelector('.cm-ySelectionInfo >> text=ada', { timeout: 10000 });
  await a.waitForSelector('.cm-ySelectionInfo >> text=bob', { timeout: 10000 });
  assert.deepEqual(await b.$$eval('.cm-ySelectionInfo', (els) => els.map((e) => e.textContent)), ['ada']);
  assert.deepEqual(await a.$$eval('.cm-ySelectionInfo', (els) => els.map((e) => e.textContent)), ['bob']);
  // a page cannot pose as someone else: the name shown is the sender's token's
  await b.evaluate(() => {
    const aw = window.patchbay.shared.active.awareness;
    aw.setLocalStateField('user', { name: 'ada', color: '#ff0000' });
  });
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(await a.$$eval('.cm-ySelectionInfo', (els) => els.map((e) => e.textContent)), ['bob'],
                   'bob\'s page said it was ada');
  // and the people list says who is in which buffer
  await until(a, () => [...document.querySelectorAll('#peers .peer')].some((li) => /bob/.test(li.textContent) && /in main\.c/.test(li.textContent)),
              null, 'ada\'s list shows bob in main.c');
  if (SHOTS) {
    // a readable picture: some code, ada's caret in one function, bob
    // selecting in the other
    await setCode(a, '#include <patchbay.h>\n\ndouble ggg(double v) { return v + 48; }\n\nvoid pb_frame(double t, pb_canvas *c) {\n' +
                     '    pb_clear(c, pb_rgb(0, 0, 0));\n    pb_circle(c, c->width / 2, c->height / 2,\n' +
                     '              (int)(40 + 20 * sin(t * 2)), pb_rgb(255, 128, 0));\n}\n', 'v + 48');
    await converged([a, b], 'the picture\'s code');
    await b.evaluate(() => {
      const v = window.patchbay.view, at = v.state.doc.toString().indexOf('pb_rgb(255');
      v.dispatch({ selection: { anchor: at, head: at + 19 } });
      v.focus();
    });
    await a.waitForSelector('.cm-ySelection', { timeout: 10000 });
    await b.waitForSelector('.cm-ySelectionInfo >> text=ada', { timeout: 10000 });
    await new Promise((r) => setTimeout(r, 300));
    mkdirSync(SHOTS, { recursive: true });
    const shots = [await a.screenshot(), await b.screenshot()].map((png) => `data:image/png;base64,${png.toString('base64')}`);
    const page = await browser.newPage({ viewport: { width: 2200, height: 640 } });
    await page.setContent(`<body style="margin:0;display:flex;gap:0;background:#000">${shots.map((s) => `<img src="${s}" width="1100">`).join('')}</body>`);
    await page.screenshot({ path: join(SHOTS, 'shared-buffers.png') });
    await page.close();
  }
});

test('a third editor joins after 1,000 edits and converges; a viewer sees the text and the relay refuses its crafted update', async () => {
  await setCode(a, '// long\n');
  await converged([a, b], 'cleared');
  await a.evaluate(() => { const v = window.patchbay.view; v.dispatch({ selection: { anchor: v.state.doc.length } }); v.focus(); });
  const chars = 'x = x + 1;\n'.repeat(91).slice(0, 1000);
  const before = await a.evaluate(() => ({ ...window.patchbay.shared.hub.stats }));
  await a.keyboard.type(chars);
  const want = await converged([a, b], 'after 1,000 keystrokes');
  assert.ok(want.length >= 1008);
  const st = await a.evaluate(() => window.patchbay.shared.hub.stats);
  console.log(`1,000 keystrokes went out as ${st.sent - before.sent} updates, ` +
              `${((st.sentBytes - before.sentBytes) / 1000).toFixed(1)} bytes of Yjs update per keystroke`);
  const t0 = Date.now();
  const c = await open('cy');
  await until(c, (t) => window.patchbay.view.state.doc.toString() === t, want, 'the late editor has the text');
  console.log(`a late editor had the buffer of 1,000 edits ${Date.now() - t0} ms after opening the page`);
  const v = await open('vi', 'viewer');
  await until(v, (t) => window.patchbay.view.state.doc.toString() === t, want, 'the viewer has the text');
  // the page is read-only...
  await v.click('.cm-content');
  await v.keyboard.type('viewer typed this');
  assert.equal(await textOf(v), want);
  // ...and the relay refuses an update the viewer's page crafts itself
  const code = await v.evaluate(() => new Promise((resolve) => {
    const s = window.patchbay.shared;
    const doc = new s.active.doc.constructor();
    doc.getText('text').insert(0, 'forged');
    const before = window.patchbay.errors.length;
    s.hub.send('buffer_update', { buffer: s.active.id, req: 4242, data: s.encode(doc) });
    const t = setInterval(() => {
      const e = window.patchbay.errors.slice(before).find((x) => x.req === 4242);
      if (e) { clearInterval(t); resolve(e.code); }
    }, 50);
  }));
  assert.equal(code, 46, 'PB_ERR_FORBIDDEN');
  await new Promise((r) => setTimeout(r, 300));
  for (const p of [a, b, c]) assert.equal(await textOf(p), want, 'nobody got the viewer\'s text');
  for (const p of [c, v]) { pages.delete(p); await p.context().close(); }
});

test('kill -9 while two editors type keeps every acknowledged edit; an editor offline for 10 s merges its edits on return', async () => {
  await setCode(a, 'A:\nB:\n');
  await converged([a, b], 'the start');
  await a.evaluate(() => { const v = window.patchbay.view; v.dispatch({ selection: { anchor: v.state.doc.line(1).to } }); v.focus(); });
  await b.evaluate(() => { const v = window.patchbay.view; v.dispatch({ selection: { anchor: v.state.doc.line(2).to } }); v.focus(); });
  let typing = true;
  const typer = (page, tag) => (async () => {
    try {
      for (let i = 0; typing; i++) await page.keyboard.type(` ${tag}${i}`, { delay: 5 });
    } catch (e) {
      if (typing) throw e; // the page went away while the test was failing
    }
  })();
  const typers = [typer(a, 'a'), typer(b, 'b')];
  await new Promise((r) => setTimeout(r, 1500));
  await relay.kill();
  // what each page's relay had acknowledged when it died
  const acked = await Promise.all([a, b].map((p) => p.evaluate(() => Array.from(window.patchbay.shared.encode(window.patchbay.shared.active.mirror)))));
  // bob stays offline from here for 10 s (a browser that is offline cannot
  // open a socket; it keeps the one it has, which the relay's death closed)
  await b.context().setOffline(true);
  const offlineAt = Date.now();
  await relay.start();
  // a client that joins the restarted relay holds all of it
  const peer = await Peer.join(relay, ROOM, 'viewer', 'check', { buffers: true });
  const sync = await peer.waitFor((f) => f.t === 'buffer_sync' && !f.more, 'sync after the restart');
  const stored = new Y.Doc();
  for (const f of peer.frames.filter((x) => x.t === 'buffer_sync')) for (const u of f.updates || []) Y.applyUpdate(stored, u.data);
  const storedText = stored.getText('text').toString();
  for (const m of acked) {
    Y.applyUpdate(stored, Uint8Array.from(m));
    assert.equal(stored.getText('text').toString(), storedText, 'an acknowledged edit was missing after the restart');
  }
  peer.close();
  assert.ok(sync.useq > 2, `useq ${sync.useq}`);
  // ada is back and types; bob, offline, types too
  await until(a, () => window.patchbay.conn === 'live', null, 'ada back', 30000);
  await new Promise((r) => setTimeout(r, Math.max(0, offlineAt + 10000 - Date.now())));
  assert.notEqual(await b.evaluate(() => window.patchbay.conn), 'live', 'bob was offline');
  typing = false;
  await Promise.all(typers);
  const bobOffline = await bufferText(b);
  await b.context().setOffline(false);
  await until(b, () => window.patchbay.conn === 'live', null, 'bob back', 30000);
  const text = await converged([a, b], 'after bob is back');
  // everything bob typed offline is in the merged text
  const mine = bobOffline.split('\n')[1].split(' ').filter((w) => /^b\d+$/.test(w));
  assert.ok(mine.length > 5, `bob typed ${mine.length} words`);
  for (const w of mine) assert.ok(text.split('\n')[1].split(' ').includes(w), `bob's ${w} merged`);
});

test('an evaluation from one editor flashes its range in the other, in the author\'s colour, and marks the gutter', async () => {
  await setCode(a, '#include <patchbay.h>\n\ndouble ggg(double v) { return v + 48; }\n', 'return v + 48');
  await converged([a, b], 'the source');
  await a.keyboard.press('Control+Enter');
  await until(a, () => window.patchbay.lastResult?.ok === true, null, 'ada\'s eval accepted', 30000);
  const flash = await b.waitForSelector('.cm-remote-eval', { timeout: 10000 });
  assert.match(await flash.textContent(), /double ggg/);
  const mark = await b.waitForSelector('.cm-eval-mark', { timeout: 10000 });
  assert.match(await mark.getAttribute('title'), /patch #\d+ by ada/);
  // diagnostics stay with the author
  await setCode(a, 'double broken(double v) { return v + ; }\n', 'return');
  await converged([a, b], 'the broken source');
  await a.keyboard.press('Control+Enter');
  await until(a, () => window.patchbay.lastResult?.ok === false, null, 'ada sees her error', 30000);
  assert.equal(await b.$$eval('.cm-lintRange-error', (els) => els.length), 0, 'bob has no diagnostics');
});
