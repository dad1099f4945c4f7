// farm.test.mjs — a room of real devices as a test farm, as the issue
// describes it: 4 headless node runtimes of different canvas sizes
// (`patchbay runtime --width --height --label`), 2 runtime pages in
// Debian's Chromium (one phone-sized) and 1 in Firefox ESR (over WebDriver
// BiDi), against a real relay and compiler, driven by the real commands.
//
//  - `patchbay test --expect-devices 7` with 6 devices: exit 4, naming the
//    wait; with 7: a patch with three tests, one failing only where the
//    canvas is narrower than 500 px, gives exactly that matrix, exit 1,
//    and JUnit XML (python3's xml) with one failure per narrow device;
//  - an endless-loop test: a timeout on every device, and the next run
//    works (every device answers, nothing times out);
//  - `patchbay logs`: two devices' output, tagged and in order;
//  - `patchbay snapshot`: one PNG per canvas device; --compare against
//    the phone's own picture: zero for it, non-zero for the wide ones;
//  - the editor page's "Run tests" shows the same matrix (screenshot for
//    the README).
// It prints how long a full matrix of 7 devices and all pictures took.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Relay, launch, CLI } from '../web/harness.mjs';
import { Firefox } from '../firefox.mjs';

const ROOM = 'farm';
const SHOTS = process.env.PB_SHOTS;
const NODES = [[320, 240], [640, 360], [1024, 576], [1920, 1080]];
const NARROW = ['node-320', 'chromium-phone'];
let relay, browser, firefox, editor;
const procs = [];
const pages = [];

// Runs a patchbay command as the room's editor; {code, stdout, stderr, ms}.
function cli(args) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(CLI, [...args, '--url', `ws://127.0.0.1:${relay.port}`, '--token', relay.token(ROOM, 'editor', 'ci')],
             (e, stdout, stderr) => resolve({ code: e ? e.code : 0, stdout: String(stdout), stderr: String(stderr),
                                              ms: Date.now() - t0 }));
  });
}

// The matrix `patchbay test` prints, as {test: {label: cell}}.
function matrix(stdout) {
  const lines = stdout.split('\n');
  const h = lines.findIndex((l) => l.startsWith('test '));
  const header = lines[h];
  const cols = [...header.matchAll(/\S+/g)].slice(1).map((m) => ({ label: m[0], at: m.index }));
  const out = {};
  for (const line of lines.slice(h + 1)) {
    if (!line.trim()) break;
    const name = line.slice(0, cols[0].at).trim();
    out[name] = {};
    cols.forEach((c, i) => { out[name][c.label] = line.slice(c.at, cols[i + 1]?.at).trim(); });
  }
  return out;
}

async function nodeRuntime(w, h) {
  const p = spawn(CLI, ['runtime', relay.link('runtime.html', ROOM, 'runtime', `node-${w}`), '--label', `node-${w}`,
                        '--width', String(w), '--height', String(h), '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
  p.text = '';
  p.stdout.on('data', (d) => { p.text += d; });
  p.stderr.on('data', (d) => { p.text += d; });
  procs.push(p);
  return p;
}

async function chromiumPage(label, viewport, width, mobile = false) {
  const ctx = await browser.newContext({ viewport, isMobile: mobile, hasTouch: mobile,
                                        deviceScaleFactor: mobile ? 3 : 1 });
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(`${relay.link('runtime.html', ROOM, 'runtime', label)}&label=${label}&width=${width}`);
  await page.waitForFunction(() => window.patchbay.conn === 'live', null, { timeout: 30000 });
  pages.push(page);
  return page;
}

// What the node runtimes printed (for failure messages).
const nodeOutput = () => procs.map((p) => p.text.split('\n').slice(-15).join('\n')).join('\n');

const devicesHere = async () => (await cli(['devices', '--json'])).stdout.trim().split('\n').filter(Boolean)
  .map((l) => JSON.parse(l));

async function untilDevices(n) {
  for (let i = 0; i < 300; i++) {
    if ((await devicesHere()).length >= n) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${n} devices did not join: ${JSON.stringify(await devicesHere())}\n` +
              procs.map((p) => p.text).join('\n'));
}

before(async () => {
  relay = await new Relay().start();
  for (const [w, h] of NODES) await nodeRuntime(w, h);
  browser = await launch();
  await chromiumPage('chromium-wide', { width: 960, height: 540 }, 960);
  await chromiumPage('chromium-phone', { width: 390, height: 844 }, 390, true);
  await untilDevices(6);
});

after(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => (p.exitCode === null && p.signalCode === null
    ? new Promise((r) => p.once('exit', r)) : null)));
  await firefox?.close();
  await browser?.close();
  await relay?.stop();
});

test('--expect-devices 7 with 6 present: exit 4, naming the wait', async () => {
  const r = await cli(['test', '--expect-devices', '7', '--wait', '2s']);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stderr, /waited 2\.0 s for 7 devices in room farm; 6 are here: /);
  for (const l of ['node-320', 'node-1920', 'chromium-wide', 'chromium-phone']) assert.match(r.stderr, new RegExp(l));
  // the seventh: Firefox
  firefox = await Firefox.launch();
  const ff = await firefox.open(`${relay.link('runtime.html', ROOM, 'runtime', 'firefox')}&label=firefox&width=800`,
                                { width: 800, height: 450 });
  await ff.waitFor(() => window.patchbay.conn === 'live', null, { what: 'the Firefox runtime page is live' });
  pages.push(ff);
  await untilDevices(7);
  const d = await devicesHere();
  const by = Object.fromEntries(d.map((x) => [x.label, x]));
  assert.equal(by['chromium-phone'].canvas_w, 390);
  assert.equal(by['node-1920'].canvas_w, 1920);
  assert.match(by.firefox.platform, /Firefox\/\d+/);
  assert.match(by['chromium-wide'].platform, /Chrome\/\d+/);
  assert.match(by['node-640'].platform, /^node /);
  assert.ok(by['chromium-phone'].dpr > 1, 'the phone-sized page says its pixel ratio');
});

const THREE = '#include <patchbay.h>\n' +
  'double area(double w, double h) { return w * h; }\n' +
  'void pb_frame(double t, pb_canvas *c) {\n' +
  '    (void)t;\n' +
  '    pb_clear(c, pb_rgb(20, 90, 220));\n' +
  '    pb_rect(c, 10, 10, 40, 40, pb_rgb(255, 255, 255));\n' +
  '}\n' +
  'PB_TEST(area_multiplies) { PB_CHECK(area(3, 4) == 12); }\n' +
  'PB_TEST(has_a_canvas) { PB_CHECK(pb_screen() != NULL); }\n' +
  'PB_TEST(fits_500_wide) { pb_canvas *c = pb_screen(); PB_CHECK(c && c->width >= 500); }\n';

test('three tests on 7 devices: fails exactly where the canvas is narrower than 500 px; exit 1; JUnit', async () => {
  relay.eval(ROOM, 'ada', 'three.c', THREE);
  const xml = join(relay.dir, 'junit.xml');
  const r = await cli(['test', '--expect-devices', '7', '--junit', xml]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const m = matrix(r.stdout);
  assert.deepEqual(Object.keys(m).sort(), ['area_multiplies', 'fits_500_wide', 'has_a_canvas']);
  for (const [t, row] of Object.entries(m)) {
    assert.equal(Object.keys(row).length, 7, `7 devices in ${JSON.stringify(row)}`);
    for (const [label, cell] of Object.entries(row)) {
      const fails = t === 'fits_500_wide' && NARROW.includes(label);
      assert.match(cell, fails ? /^FAIL / : /^pass /, `${t} on ${label}: ${cell}`);
    }
  }
  assert.match(r.stdout, /fits_500_wide on node-320: .*three\.c:10: c && c->width >= 500/);
  assert.match(r.stdout, /3 tests on 7 devices in ([\d.]+) s: 19 passed, 2 failed/);
  console.log(r.stdout.trim().replace(/^/gm, '# '));
  console.log(`# patchbay test to a full matrix of 7 devices: ${/in ([\d.]+) s:/.exec(r.stdout)[1]} s from the ` +
              `request to the last answer, ${r.ms} ms for the whole command`);
  const junit = execFileSync('/usr/bin/python3', ['-c', `
import sys, xml.etree.ElementTree as ET
for s in ET.parse(sys.argv[1]).getroot().iter('testsuite'):
    print(s.get('name'), s.get('tests'), len(s.findall('testcase/failure')), s.get('failures'))
`, xml]).toString().trim().split('\n').sort();
  assert.equal(junit.length, 7);
  for (const line of junit) {
    const [name, tests, failures, attr] = line.split(' ');
    const want = NARROW.includes(name) ? 1 : 0;
    assert.equal(Number(tests), 3, line);
    assert.equal(Number(failures), want, line);
    assert.equal(Number(attr), want, line);
  }
});

test('the editor page runs the tests and shows the same matrix', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  editor = await ctx.newPage();
  editor.errors = [];
  editor.on('pageerror', (e) => editor.errors.push(String(e)));
  await editor.goto(relay.link('editor.html', ROOM, 'editor', 'ada'));
  await editor.waitForFunction(() => window.patchbay.conn === 'live' &&
                               [...window.patchbay.peers.values()].filter((p) => p.role === 'runtime').length === 7,
                               null, { timeout: 30000 });
  await editor.click('#run-tests');
  await editor.waitForFunction(() => window.patchbay.testRun?.isComplete && window.patchbay.testRun.tests.length === 3,
                               null, { timeout: 30000 });
  const cells = await editor.$$eval('#tests td.cell', (tds) => tds.map((t) => [t.dataset.test, t.dataset.device,
                                                                                  t.className.split(' ')[1]]));
  assert.equal(cells.length, 21);
  for (const [t, label, status] of cells)
    assert.equal(status, t === 'fits_500_wide' && NARROW.includes(label) ? 'fail' : 'pass', `${t} on ${label}`);
  // a cell opens that device's answer
  await editor.click('#tests td.cell.fail[data-device="chromium-phone"]');
  assert.match(await editor.textContent('#source-text'), /three\.c:10: c && c->width >= 500/);
  await editor.click('#source-close');
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await editor.screenshot({ path: join(SHOTS, 'test-matrix.png') });
  }
});

test('an endless-loop test: a timeout on every device, and the next run works', async () => {
  relay.eval(ROOM, 'ada', 'spins.c', '#include <patchbay.h>\nPB_TEST(spins) { for (volatile int i = 0;; i++) { } }\n');
  const r = await cli(['test', '--expect-devices', '7', '--timeout', '30s']);
  assert.equal(r.code, 1, `${r.stdout}${r.stderr}\n${nodeOutput()}`);
  const m = matrix(r.stdout);
  assert.equal(Object.keys(m.spins).length, 7);
  for (const [label, cell] of Object.entries(m.spins))
    assert.equal(cell, 'TIMEOUT', `spins on ${label}:\n${r.stdout}\n${nodeOutput()}`);
  assert.doesNotMatch(r.stdout, /gone|no answer|\?/, 'every device answered');
  // the next run: every device answers at once, nothing times out
  const next = await cli(['test', '--expect-devices', '7', '--wait', '30s']);
  assert.equal(next.code, 1, next.stdout + next.stderr); // the narrow ones still fail
  const n = matrix(next.stdout);
  assert.equal(n.spins, undefined, 'the hanging test was taken back with its patch');
  assert.match(next.stdout, /3 tests on 7 devices in [\d.]+ s: 19 passed, 2 failed\n/);
});

test('logs: two devices\' output, tagged and in order', async () => {
  relay.eval(ROOM, 'ada', 'prints.c',
             '#include <patchbay.h>\nPB_TEST(prints) { for (int i = 0; i < 4; i++) printf("line %d\\n", i); }\n');
  const r = await cli(['test', '--filter', 'prints', '--expect-devices', '7']);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${nodeOutput()}`);
  const logs = await cli(['logs']);
  assert.equal(logs.code, 0, logs.stderr);
  for (const label of ['node-640', 'chromium-phone']) {
    const mine = logs.stdout.split('\n').filter((l) => l.includes(`[${label}]`) && l.includes('pb_test__prints'));
    assert.deepEqual(mine.map((l) => l.replace(/^.*pb_test__prints: /, '')), ['line 0', 'line 1', 'line 2', 'line 3'],
                     logs.stdout);
  }
  const one = await cli(['logs', '--device', 'node-640']);
  assert.ok(one.stdout.trim().split('\n').every((l) => l.includes('[node-640]')), one.stdout);
});

test('snapshot: one PNG per canvas device; the phone\'s own picture differs by zero pixels, the wide ones do not', async () => {
  const dir = join(relay.dir, 'shots');
  const r = await cli(['snapshot', '-o', dir]);
  assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${nodeOutput()}`);
  console.log(r.stdout.trim().replace(/^/gm, '# '));
  assert.deepEqual(readdirSync(dir).sort(), ['chromium-phone.png', 'chromium-wide.png', 'firefox.png', 'node-1024.png',
                                             'node-1920.png', 'node-320.png', 'node-640.png']);
  const secs = /7 pictures of 7 devices in ([\d.]+) s/.exec(r.stdout);
  assert.ok(secs, r.stdout);
  console.log(`# patchbay snapshot to all 7 pictures: ${secs[1]} s after the frame's room time was asked for ` +
              `(+300 ms), ${r.ms} ms for the whole command`);
  const ref = join(relay.dir, 'phone.png');
  writeFileSync(ref, execFileSync('cat', [join(dir, 'chromium-phone.png')]));
  const cmp = await cli(['snapshot', '-o', join(relay.dir, 'again'), '--compare', ref, '--threshold', '0.01']);
  assert.equal(cmp.code, 1, cmp.stdout + cmp.stderr);
  assert.match(cmp.stdout, /chromium-phone .*\n +0 of 329160 pixels differ \(0\.000%\)\n/);
  for (const wide of ['chromium-wide', 'firefox', 'node-1920'])
    assert.match(cmp.stdout, new RegExp(`${wide} .*\\n +[1-9]\\d* of \\d+ pixels differ .*over the threshold`), cmp.stdout);
});

test('no script errors on any page', () => {
  for (const p of [...pages, editor].filter(Boolean)) assert.deepEqual(p.errors, []);
});
