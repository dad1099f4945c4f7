// bench/history.mjs — a room's history at scale, in one run (issue 16):
//
//   verify   `patchbay verify` of a generated room of V patches (default
//            100,000; tests/history/pb_gen_history signs and chains them
//            as a relay would), against the baseline of checking only the
//            same V ed25519 signatures with node's crypto (OpenSSL) in this
//            process, one after another (ratio verify / baseline);
//   scrub    a room of S patches (default 10,000: real modules with state,
//            pb_init, pictures and expressions, recorded from a relay and
//            repeated by pb_gen_history) in the history player the editor
//            page and the exported file use (web/src/player.js, node
//            runtime): indexing once, then seeks to random patches, p50 /
//            p95 / max; and against the baseline of a fresh runtime given
//            patches 1..n (what a player without checkpoints does) for
//            n = S/40, S/20, S/10, seeks to the same n (ratio baseline /
//            seek);
//   export   the size of the HTML file `patchbay export` writes for a
//            100-patch session (and gzipped).
//
// The verify figure and its baseline are taken in turn, three rounds,
// medians (the machine is shared: load moves between runs); the baseline
// checks the first 20,000 signatures, per patch.
//
// usage: node bench/history.mjs [--patchbay PATH] [--runtime DIR]
//                               [--verify 100000] [--scrub 10000] [--seeks 40]
//                               [--every 8] [--only verify|export|scrub]
//   PATH defaults to build/release/cli/patchbay, DIR to build/release/runtime;
//   pb_gen_history is taken from the same build.
import { execFileSync } from 'node:child_process';
import { createPublicKey, verify as edVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { arg, pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/history.mjs [--patchbay PATH] [--runtime DIR] ' +
              '[--verify 100000] [--scrub 10000] [--seeks 40] [--every 8] [--only verify|export|scrub]');
  process.exit(0);
}
const build = join(here, '..', 'build', 'release');
const CLI = resolve(arg('patchbay', join(build, 'cli', 'patchbay')));
process.env.PB_CLI = CLI;
process.env.PB_RUNTIME_DIR = resolve(arg('runtime', join(build, 'runtime')));
const GEN = join(dirname(CLI), '..', 'tests', 'history', 'pb_gen_history');
const V = Number(arg('verify', 100000));
const S = Number(arg('scrub', 10000));
const SEEKS = Number(arg('seeks', 40));
const EVERY = Number(arg('every', 8));
const ONLY = arg('only', '');
const runs = (part) => !ONLY || ONLY === part;

const { Relay, decode, RUNTIME_DIR } = await import('../tests/runtime/harness.mjs');
const { decodeSequence } = await import('../web/src/msgpack.js');
const { HistoryPlayer } = await import('../web/src/player.js');
const { loadRuntime } = await import(pathToFileURL(resolve(RUNTIME_DIR, 'node', 'runtime.mjs')).href);

const now = () => performance.now();
const f1 = (x) => x.toFixed(1);
const dir = mkdtempSync(join(tmpdir(), 'pb-bench-history-'));
const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 }).toString();

// A room's patch frames, through `patchbay export --format bundle`, with
// the room's epoch (frames.epoch).
function framesOf(data, room) {
  const f = join(dir, `${room}.pbb`);
  run(CLI, ['export', '--room', room, '--data', data, '-o', f]);
  const bytes = new Uint8Array(readFileSync(f));
  const values = decodeSequence(bytes);
  return Object.assign(values.slice(1).map((v) => bytes.subarray(v.at, v.end)),
                       { epoch: Number(values[0].value.epoch || 0) });
}

try {
  sections: {
  // ---- verify ------------------------------------------------------------------
  if (runs('verify')) {
    const vdata = join(dir, 'verify');
    process.stderr.write(`generating ${V} patches…\n`);
    run(GEN, [vdata, 'big', String(V), '--gap-ms', '10']);
    const frames = framesOf(vdata, 'big');
    const pub = readFileSync(join(vdata, 'relay.pub'), 'utf8').trim();
    const key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'),
                                                      Buffer.from(pub, 'hex')]), format: 'der', type: 'spki' });
    const sigs = frames.slice(0, 20000).map((f) => decode(f));
    const cmd = [], base = [];
    for (let round = 0; round < 3; round++) {
      let t = now();
      const out = run(CLI, ['verify', '--data', vdata, '--room', 'big']);
      cmd.push(now() - t);
      if (!new RegExp(`room big: ${V} patches verify`).test(out)) throw new Error(`verify said: ${out}`);
      t = now();
      for (const p of sigs) if (!edVerify(null, p.stmt, key, p.sig)) throw new Error('a signature does not verify');
      base.push((now() - t) / sigs.length); // ms per signature
    }
    const verifyMs = pct(cmd, 50), basePer = pct(base, 50);
    console.log(`verify ${V} patches: patchbay verify ${f1(verifyMs)} ms, median of 3 ` +
                `(${Math.round(V / verifyMs * 1000)}/s; the whole command: read, hashes, chain, signatures on every core; ` +
                `issue: ≤ 2 s)`);
    console.log(`  baseline: ed25519 signatures alone with node's crypto, one core: ${f1(basePer * 1000)} µs each ` +
                `(${f1(basePer * V)} ms for ${V}); ratio ${(verifyMs / (basePer * V)).toFixed(2)}`);
  }

  // ---- export size -----------------------------------------------------------------
  if (!runs('export') && !runs('scrub')) break sections;
  const relay = await new Relay().start();
  let likes;
  try {
    const H = '#include <patchbay.h>\n';
    const sources = [
      [H + 'PB_STATE(unsigned, acc, 5);\nPB_STATE(int, inits, 0);\n' +
       'void pb_init(void) { acc = acc * 31u + (unsigned)rand(); inits++; }\n'],
      [H + 'PB_STATE(unsigned, acc, 5);\nvoid pb_frame(double t, pb_canvas *c) {\n' +
       '  pb_clear(c, pb_rgb((int)(acc % 256), 30, (int)(t * 3) % 256));\n' +
       '  for (int k = 0; k < 60; k++) pb_pixel(c, rand() % c->width, rand() % c->height, pb_rgb(255, 240, 0));\n}\n'],
      [H + 'double ggg(double v) { return v * 3; }\ndouble hhh(double v) { return ggg(v) + 1; }\n'],
      ['(defonce n (atom 0))\n(defn bump [] (swap! n inc))\n', 'lisp'],
    ];
    for (const [src, lang] of sources) await relay.eval('likes', src, { lang: lang || 'c' });
    likes = framesOf(relay.data, 'likes').map((f, i) => {
      const file = join(dir, `like${i}.frame`);
      writeFileSync(file, f);
      return file;
    });
  } finally {
    await relay.stop();
  }
  const sdata = join(dir, 'scrub');
  if (runs('export')) {
    run(GEN, [sdata, 'show', '100', '--gap-ms', '500', ...likes]);
    const html = join(dir, 'show.html');
    run(CLI, ['export', '--room', 'show', '--data', sdata, '-o', html]);
    const size = statSync(html).size;
    const wasm = statSync(join(dirname(CLI), '..', 'www', 'runtime', 'pb_runtime.wasm')).size;
    console.log(`export: a 100-patch session as one HTML file: ${f1(size / 1024)} KiB ` +
                `(${f1(gzipSync(readFileSync(html)).length / 1024)} KiB gzipped; of it the wasm runtime, ` +
                `${f1(wasm / 1024)} KiB, in base64)`);
  }
  if (!runs('scrub')) break sections;

  // ---- scrub -----------------------------------------------------------------------
  process.stderr.write(`generating ${S} patches with real modules…\n`);
  run(GEN, [sdata, 'jam', String(S), '--gap-ms', '200', ...likes]);
  const session = framesOf(sdata, 'jam');
  const skey = readFileSync(join(sdata, 'relay.pub'), 'utf8').trim();
  const { createRuntime, moduleArgs } = loadRuntime();
  const player = new HistoryPlayer({ createRuntime, moduleArgs, room: 'jam', key: skey, epoch: session.epoch,
                                     canvas: { width: 320, height: 180 }, every: EVERY });
  player.setPatches(session);
  let t = now();
  await player.index();
  const indexMs = now() - t;
  console.log(`scrub: a ${S}-patch room indexed once in ${f1(indexMs / 1000)} s (${player.checkpoints.length} checkpoints, every ${EVERY})`);
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const seeks = [];
  const targets = [];
  for (let i = 0; i < SEEKS; i++) {
    const n = 1 + Math.floor(rnd() * S);
    targets.push(n);
    t = now();
    await player.seek(n);
    player.drawAt(player.info[n].applyUs / 1e6);
    seeks.push(now() - t);
  }
  // what every seek that restores from a checkpoint pays first: a host
  // with its two wasm instances (verifier and patch instance)
  const fresh = [];
  for (let i = 0; i < 10; i++) {
    t = now();
    (await player.freshHost()).close();
    fresh.push(now() - t);
  }
  console.log(`  seek to a random patch and draw it, ${SEEKS} seeks: p50 ${f1(pct(seeks, 50))} ms, ` +
              `p95 ${f1(pct(seeks, 95))} ms, max ${f1(Math.max(...seeks))} ms (issue: ≤ 150 ms); ` +
              `of which a fresh host (two wasm instances), p50 ${f1(pct(fresh, 50))} ms`);
  // the baseline: a fresh runtime given 1..n (every module loaded again;
  // each costs ~320 KB that dlclose never frees, so n stays ≤ S / 10),
  // against a seek to the same n from somewhere else
  const base = [], same = [];
  for (const n of [Math.ceil(S / 40), Math.ceil(S / 20), Math.ceil(S / 10)]) {
    await player.seek(S);
    t = now();
    await player.seek(n);
    player.drawAt(player.info[n].applyUs / 1e6);
    same.push(now() - t);
    t = now();
    const host = await player.freshHost();
    player.feed(host, n);
    host.attachCanvas(320, 180);
    host.drawAt(player.info[n].applyUs / 1e6);
    base.push({ n, ms: now() - t });
    host.close();
  }
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  console.log(`  baseline: a fresh runtime given patches 1..n, for n = ${base.map((b) => b.n).join(', ')}: ` +
              `${base.map((b) => f1(b.ms)).join(' / ')} ms, against seeks to the same n of ` +
              `${same.map(f1).join(' / ')} ms; ratio baseline / seek ${(sum(base.map((b) => b.ms)) / sum(same)).toFixed(1)}`);
  player.close();
  } // sections
} finally {
  rmSync(dir, { recursive: true, force: true });
}
