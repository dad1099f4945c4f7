// bench/browser.mjs — the runtime in Chromium against the same runtime in
// node, in one room, in the same run: a real relay on loopback, B runtime
// pages (Debian's Chromium, headless) and one node runtime; N patches
// evaluated one after another. Prints, per patch:
//   prepare  verify + load + stage in the browser's Web Worker, p50/p95,
//            against the node runtime's (ratio browser/node);
//   skew     max − min of the room times at which the runtimes swapped the
//            patch in (pages and node runtime), p50/p99;
// and the gzipped size of what each page downloads.
// Not a test: prints numbers, asserts nothing.
//
// usage: node bench/browser.mjs [--patchbay PATH] [--web DIR] [--runtime DIR]
//        [--pages 2] [--patches 40]
//   defaults: build/release/cli/patchbay, build/release/www,
//   build/release/runtime (the layout scripts/demo.sh builds)
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/browser.mjs [--patchbay PATH] [--web DIR] [--runtime DIR] [--pages 2] [--patches 40]');
  process.exit(0);
}
const build = resolve(here, '../build/release');
process.env.PB_CLI ||= resolve(arg('patchbay', join(build, 'cli/patchbay')));
process.env.PB_WEB ||= resolve(arg('web', join(build, 'www')));
const runtimeDir = resolve(arg('runtime', join(build, 'runtime')));
const PAGES = Number(arg('pages', 2));
const PATCHES = Number(arg('patches', 40));

const { Relay, launch } = await import('../tests/web/harness.mjs');
const { joinRoom } = await import(pathToFileURL(join(runtimeDir, 'node/runtime.mjs')).href);

const ms = (us) => (us / 1000).toFixed(2);
const sleep = (t) => new Promise((r) => setTimeout(r, t));

const relay = await new Relay().start();
const browser = await launch();
try {
  const room = 'bench';
  const pages = [];
  for (let i = 0; i < PAGES; i++) {
    const ctx = await browser.newContext({ viewport: { width: 640, height: 360 } });
    const page = await ctx.newPage();
    await page.goto(relay.link('runtime.html', room, 'runtime', `page-${i}`) + '&width=320');
    await page.waitForFunction(() => window.patchbay.conn === 'live', null, { timeout: 30000 });
    pages.push(page);
  }
  const node = await joinRoom(relay.link('runtime.html', room, 'runtime', 'node'), { name: 'node' });
  const nodePrepared = new Map();
  const nodeCommits = new Map();
  node.on('patch', (ev) => { if (ev.ok) nodePrepared.set(ev.seq, ev.prepare_us); });
  node.on('commit', (c) => nodeCommits.set(c.seq, c.commit_at_us));
  await node.waitFor('welcome', () => true, 10000);

  process.stderr.write(`evaluating ${PATCHES} patches in a room with ${PAGES} Chromium pages and 1 node runtime…\n`);
  const seqs = [];
  for (let i = 0; i < PATCHES; i++) {
    const src = `#include <patchbay.h>\ndouble k${i % 5}(double v) { return v * ${i + 2}; }\n` +
                `void pb_frame(double t, pb_canvas *c) {\n    pb_clear(c, pb_rgb(${(i * 37) % 256}, 40, (int)(t * 10) & 255));\n` +
                `    pb_circle(c, c->width / 2, c->height / 2, ${10 + i}, pb_rgb(250, 200, 40));\n}\n`;
    const out = await relay.evalAsync(room, 'bench', `p${i}.c`, src);
    const m = /seq (\d+)/.exec(out);
    if (!m) throw new Error(`eval ${i}: ${out}`);
    seqs.push(Number(m[1]));
    if (i % 10 === 9) process.stderr.write(`  ${i + 1}/${PATCHES}\n`);
  }
  // wait (bounded) until every runtime committed the last one
  const last = seqs.at(-1);
  for (let i = 0; i < 200 && !nodeCommits.has(last); i++) await sleep(50);
  for (const p of pages)
    await p.waitForFunction((s) => window.patchbay.commits.some((c) => c.seq === s), last, { timeout: 30000 });

  const browserPrep = [];
  const commitsBy = [];
  for (const p of pages) {
    const { prepared, commits } = await p.evaluate(() => ({ prepared: window.patchbay.prepared,
                                                            commits: window.patchbay.commits }));
    browserPrep.push(...prepared.filter((x) => seqs.includes(x.seq)).map((x) => x.prepare_us));
    commitsBy.push(new Map(commits.map((c) => [c.seq, c.commit_at_us])));
  }
  commitsBy.push(nodeCommits);
  const nodePrep = seqs.map((s) => nodePrepared.get(s)).filter((x) => x !== undefined);
  const skews = [];
  for (const s of seqs) {
    const at = commitsBy.map((m) => m.get(s)).filter((x) => x !== undefined);
    if (at.length === commitsBy.length) skews.push(Math.max(...at) - Math.min(...at));
  }
  const b50 = pct(browserPrep, 50), n50 = pct(nodePrep, 50);
  console.log(`prepare per patch (verify + load + stage), ${browserPrep.length} in Chromium, ${nodePrep.length} in node:`);
  console.log(`  Chromium worker  p50 ${ms(b50)} ms  p95 ${ms(pct(browserPrep, 95))} ms`);
  console.log(`  node             p50 ${ms(n50)} ms  p95 ${ms(pct(nodePrep, 95))} ms`);
  console.log(`  ratio Chromium/node p50: ${(b50 / n50).toFixed(2)}`);
  console.log(`commit skew across ${commitsBy.length} runtimes (${skews.length} patches): ` +
              `p50 ${ms(pct(skews, 50))} ms  p99 ${ms(pct(skews, 99))} ms  max ${ms(Math.max(...skews))} ms`);

  const web = process.env.PB_WEB;
  const gz = (files) => files.reduce((n, f) => n + gzipSync(readFileSync(join(web, f)), { level: 9 }).length, 0);
  const common = ['style.css', 'runtime-worker.js', 'runtime/pb_runtime.js', 'runtime/pb_runtime.wasm'];
  console.log(`downloads, gzipped: editor page ${(gz(['editor.html', 'editor.js', ...common]) / 1024).toFixed(0)} KiB, ` +
              `runtime page ${(gz(['runtime.html', 'runtime-page.js', ...common]) / 1024).toFixed(0)} KiB`);
  node.close();
} finally {
  await browser.close();
  await relay.stop();
}
