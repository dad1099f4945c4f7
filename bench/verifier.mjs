// bench/verifier.mjs — what the verifier instance costs (runtime/verifier.c,
// docs/SECURITY.md § Patch code), in one run: N real signed patches
// (default 40, recorded from a relay on loopback) are fed, patch by patch
// and in turn (which goes first alternates), to
//
//   with     a verifier instance (verify, chain), then a patch instance
//            behind it (check all but the signature, load, stage) — the
//            host's path since the verifier;
//   without  one instance alone (verify, chain, load, stage) — the path
//            before it, the baseline.
//
// Per patch: the time of rt_session_receive (+ tick) in each, p50/p95 and
// the ratio with/without; and the memory the verifier instance adds.
//
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/verifier.mjs [--patchbay PATH] [--runtime DIR] [--patches 40]');
  process.exit(0);
}
const build = join(here, '..', 'build', 'release');
process.env.PB_CLI = resolve(arg('patchbay', join(build, 'cli', 'patchbay')));
process.env.PB_RUNTIME_DIR = resolve(arg('runtime', join(build, 'runtime')));
const PATCHES = Number(arg('patches', 40));

const { Relay, Recorder, bareRuntime, closeBareRuntimes } = await import('../tests/runtime/harness.mjs');

const ms = (us) => `${(us / 1000).toFixed(2)} ms`;
const room = 'bench';
const relay = await new Relay().start();
try {
  const rec = new Recorder(relay, room);
  await rec.ready;
  process.stderr.write(`recording ${PATCHES} signed patches…\n`);
  const frames = [];
  for (let k = 0; k < PATCHES; k++) {
    const { seq } = await relay.eval(room, '#include <patchbay.h>\n' +
                                     `double ggg(double v) { return v + ${k}; }\n`);
    frames.push(await rec.patch(seq));
  }
  const head = rec.heads[0];
  const { createRuntime, moduleArgs } = (await bareRuntime(room, relay.key(), { store: null })).o;
  const rss0 = process.memoryUsage().rss;
  const open = async (how) => {
    const M = await createRuntime({ ...moduleArgs, print: () => {}, printErr: () => {} });
    const r = JSON.parse(M.ccall('rt_session_open', 'string', ['string', 'string', 'number'],
                                 [room, relay.key(), 0]));
    if (!r.ok || (how && M[how]())) throw new Error(`cannot open a session: ${r.error || how}`);
    return M;
  };
  const V = await open('_rt_session_verify_only');
  const rss1 = process.memoryUsage().rss;
  const M = await open('_rt_session_behind_verifier');
  const alone = await open(null);
  const now = Date.now() * 1000;
  const feed = (I, bytes) => {
    const p = I._malloc(bytes.length);
    I.HEAPU8.set(bytes, p);
    const r = JSON.parse(I.UTF8ToString(I._rt_session_receive(p, bytes.length, now)));
    I._free(p);
    I._rt_session_tick(now);
    while (I._rt_session_out_len()) I._rt_session_out_pop();
    return r;
  };
  for (const I of [V, M, alone]) feed(I, head); // the room's epoch
  const us = { with: [], without: [] };
  const run = {
    with: (f) => feed(V, f).ok && V._rt_session_pass() === 1 && feed(M, f),
    without: (f) => feed(alone, f),
  };
  frames.forEach((f, i) => {
    for (const how of i % 2 ? ['with', 'without'] : ['without', 'with']) {
      const t0 = performance.now();
      const r = run[how](f);
      us[how].push((performance.now() - t0) * 1000);
      if (!r || !r.ok) throw new Error(`a patch was refused (${how}): ${JSON.stringify(r)}`);
    }
  });
  if (M._rt_session_head_seq() !== PATCHES || alone._rt_session_head_seq() !== PATCHES)
    throw new Error('the runtimes did not take every patch');
  const row = (what, a, b, ratio) => console.log(`| ${what} | ${a} | ${b} | ${ratio} |`);
  console.log(`\nthe verifier instance, ${PATCHES} patches, node ${process.version}\n`);
  console.log('| what | with the verifier | without (baseline) | ratio |\n|---|---|---|---|');
  row('receive a patch (verify, load, stage), p50 / p95',
      `${ms(pct(us.with, 50))} / ${ms(pct(us.with, 95))}`,
      `${ms(pct(us.without, 50))} / ${ms(pct(us.without, 95))}`,
      (pct(us.with, 50) / pct(us.without, 50)).toFixed(2));
  row('wasm memory of the verifier instance', `${(V.HEAPU8.length / 2 ** 20).toFixed(1)} MiB`,
      `patch instance ${(M.HEAPU8.length / 2 ** 20).toFixed(1)} MiB`, '');
  row('process RSS to start the verifier instance', `${((rss1 - rss0) / 2 ** 20).toFixed(1)} MiB`, '', '');
  closeBareRuntimes();
  rec.close();
} finally {
  await relay.stop();
}
