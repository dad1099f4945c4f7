// bench/runtime.mjs — the node runtime on loopback, in one run: a real
// relay, R node runtimes (default 10) in one room, N patches (default 40)
// evaluated one after another through `patchbay eval`.
//
//   prepare  per patch and runtime: verify (signature, chain, hash) and
//            load + stage (write to the FS, dlopen, bind), p50/p95, against
//            the baseline of a plain synchronous compile
//            (`new WebAssembly.Module`) of the same module in the same
//            process (ratio prepare / compile);
//   commit   skew: for each patch, max − min of the room times at which the
//            runtimes swapped it in, p50/p95; and how late after the apply
//            time the commits were;
//   memory   then one runtime alone takes M more patches (--memory M,
//            default 200; generation reload after --reload-after K loaded
//            modules, default 500, 0 never): growth of the process RSS, the
//            wasm memory and the function table per patch (dlclose frees
//            nothing). Run node with --expose-gc to measure after a GC.
//
// usage: node bench/runtime.mjs [--patchbay PATH] [--runtime DIR]
//                               [--runtimes 10] [--patches 40] [--memory 200]
//                               [--reload-after 500]
//   PATH defaults to build/release/cli/patchbay, DIR to
//   build/release/runtime (the installed node runtime).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg, pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/runtime.mjs [--patchbay PATH] [--runtime DIR] ' +
              '[--runtimes 10] [--patches 40] [--memory 200] [--reload-after 500]');
  process.exit(0);
}
const build = join(here, '..', 'build', 'release');
process.env.PB_CLI = resolve(arg('patchbay', join(build, 'cli', 'patchbay')));
process.env.PB_RUNTIME_DIR = resolve(arg('runtime', join(build, 'runtime')));
const RUNTIMES = Number(arg('runtimes', 10));
const PATCHES = Number(arg('patches', 40));
const MEMORY = Number(arg('memory', 200));
const RELOAD_AFTER = Number(arg('reload-after', 500));

const { Relay, Recorder, joinRoom, until, decode } = await import('../tests/runtime/harness.mjs');

const ms = (us) => `${(us / 1000).toFixed(2)} ms`;

const relay = await new Relay().start();
const room = 'bench';
try {
  const rec = new Recorder(relay, room);
  await rec.ready;
  const rts = [];
  for (let i = 0; i < RUNTIMES; i++) {
    const rt = await joinRoom(relay.link(room, `rt${i}`), { name: `rt${i}` });
    rt.prepared = new Map();
    rt.committed = new Map();
    rt.on('patch', (p) => { if (p.ok) rt.prepared.set(p.seq, p); });
    rt.on('commit', (c) => rt.committed.set(c.seq, c));
    rts.push(rt);
  }
  await until(() => rts.every((r) => r.state === 'live' && r.clock.samples.length >= 3),
              'runtimes joined and synced');
  process.stderr.write(`evaluating ${PATCHES} patches in a room of ${RUNTIMES} node runtimes…\n`);
  for (let k = 0; k < PATCHES; k++) {
    const { seq } = await relay.eval(room, '#include <patchbay.h>\n' +
                                     `double ggg(double v) { return v + ${k}; }\n`,
                                     { runtimes: RUNTIMES });
    await until(() => rts.every((r) => r.committed.has(seq)), `seq ${seq} everywhere`);
  }
  // the baseline: compiling the same module in this process. V8 caches
  // compiled modules by their bytes, so each copy gets a 4-byte custom
  // section of its own (no code: the compile work is the same).
  const compileUs = [];
  for (let seq = 1; seq <= PATCHES; seq++) {
    const m = decode(await rec.patch(seq)).module;
    const bytes = new Uint8Array(m.length + 7);
    bytes.set(m);
    bytes.set([0, 5, 1, 0x62, seq & 255, (seq >> 8) & 255, 7], m.length);
    const t0 = performance.now();
    new WebAssembly.Module(bytes); // eslint-disable-line no-new
    compileUs.push((performance.now() - t0) * 1000);
  }
  const verify = [], prepare = [], skew = [], late = [];
  for (let seq = 1; seq <= PATCHES; seq++) {
    const at = [];
    for (const r of rts) {
      const p = r.prepared.get(seq), c = r.committed.get(seq);
      verify.push(p.verify_us);
      prepare.push(p.verify_us + p.prepare_us);
      at.push(c.commit_at_us);
      late.push(c.commit_at_us - c.apply_us);
    }
    skew.push(Math.max(...at) - Math.min(...at));
  }
  const unc = rts.map((r) => r.clock.uncertaintyUs);
  const row = (what, a, b, ratio) => console.log(`| ${what} | ${a} | ${b} | ${ratio} |`);
  console.log(`\nnode runtime, ${RUNTIMES} runtimes in one process, ${PATCHES} patches\n`);
  console.log('| what | runtime | baseline | ratio |\n|---|---|---|---|');
  row('prepare per patch (verify + load + stage), p50 / p95',
      `${ms(pct(prepare, 50))} / ${ms(pct(prepare, 95))}`,
      `WebAssembly.Module ${ms(pct(compileUs, 50))} / ${ms(pct(compileUs, 95))}`,
      (pct(prepare, 50) / pct(compileUs, 50)).toFixed(2));
  row('of which verify (ed25519, BLAKE2b, chain), p50 / p95',
      `${ms(pct(verify, 50))} / ${ms(pct(verify, 95))}`, '', '');
  row(`commit skew across ${RUNTIMES} runtimes, p50 / p95`,
      `${ms(pct(skew, 50))} / ${ms(pct(skew, 95))}`, '', '');
  row('commit after the apply time, p50 / p95',
      `${ms(pct(late, 50))} / ${ms(pct(late, 95))}`, '', '');
  row('clock uncertainty (half the best round trip), max', ms(Math.max(...unc)), '', '');
  for (const r of rts) r.close();
  rec.close();

  if (MEMORY > 0) {
    const one = await joinRoom(relay.link(room, 'mem'),
                               { name: 'mem', reloadAfterModules: RELOAD_AFTER });
    let last = null;
    one.on('commit', () => { last = one; });
    await until(() => one.committedSeq === PATCHES, 'the memory runtime caught up');
    const figures = () => {
      globalThis.gc?.(); // with node --expose-gc: what is still reachable
      const M = one.M;
      return { rss: process.memoryUsage().rss, heap: M.HEAPU8.length, table: M.wasmTable.length };
    };
    const start = figures();
    process.stderr.write(`one runtime takes ${MEMORY} more patches…\n`);
    for (let k = 0; k < MEMORY; k++) {
      const { seq } = await relay.eval(room, '#include <patchbay.h>\n' +
                                       `double ggg(double v) { return v * ${k + 2}; }\n`);
      await until(() => one.committedSeq >= seq, `seq ${seq} on the memory runtime`);
    }
    if (one.call('ggg', 1) !== MEMORY + 1 || !last) throw new Error('wrong result after the memory run');
    const end = figures();
    const per = (a, b) => `${((b - a) / MEMORY / 1024).toFixed(1)} KiB`;
    console.log(`\none runtime, ${MEMORY} more patches (each a new module version)\n`);
    console.log('| what | start | end | per patch |\n|---|---|---|---|');
    console.log(`| process RSS | ${(start.rss / 2 ** 20).toFixed(1)} MiB | ${(end.rss / 2 ** 20).toFixed(1)} MiB | ${per(start.rss, end.rss)} |`);
    console.log(`| wasm memory | ${(start.heap / 2 ** 20).toFixed(1)} MiB | ${(end.heap / 2 ** 20).toFixed(1)} MiB | ${per(start.heap, end.heap)} |`);
    console.log(`| function table | ${start.table} | ${end.table} | ${((end.table - start.table) / MEMORY).toFixed(1)} slots |`);
    console.log(`| modules loaded in the current instance | | ${one.modules} | (${one.generations} generation reloads) |`);
    one.close();
  }
} finally {
  await relay.stop();
}
