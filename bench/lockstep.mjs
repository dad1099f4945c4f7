// bench/lockstep.mjs — how closely R node runtimes (default 10, in P child
// processes, default 2: runtimes of one process swap a patch in the same
// pass; with one process per runtime, ten processes wake at the same
// instant on this machine's two cores and the scheduler decides the
// skew) swap each patch in, in one run, twice:
//   loopback  the runtimes connect straight to the relay;
//   jitter    every runtime connects through a TCP proxy started here that
//             delays each direction by 50 ms ± 20 ms of uniform jitter per
//             chunk, keeping each connection's byte order (as TCP would);
//             the kernel here has no netem, so the delay lives in user
//             space.
// Also: eval -> prepared by every runtime (the editor's send until the last
// runtime has verified and loaded the patch: eval -> committed without the
// lead, which is a chosen delay), against the seed's 180 ms per patch.
// For N patches (default 200) evaluated one after another by an editor
// connected straight to the relay — each once every runtime has committed
// the one before, so that compiling the next patch (clang wants both of
// this machine's cores) does not starve the runtimes at the moment they
// commit — it prints the skew (max − min of the
// room times at which the runtimes committed the patch, on each runtime's
// own estimate of the room clock) p50/p99, how late after the apply time
// commits were, and the clock offset error: every process runs on this one
// machine, so the true offset between a runtime's clock and the relay's is
// zero and the estimate's absolute value is its error.
// Not a test: prints numbers, asserts nothing.
//
// usage: node bench/lockstep.mjs [--patchbay PATH] [--runtime DIR]
//        [--runtimes 10] [--procs 2] [--patches 200] [--warmup 3]
//        [--only loopback|jitter]
// The first --warmup patches are evaluated but not counted: a fresh runtime
// compiles its loader path on its first patch, which on this 2-core
// machine, with every runtime doing it at once, takes longer than the lead
// (the lead then adapts). Their worst lateness is printed separately.
//   defaults: build/release/cli/patchbay, build/release/runtime
import { fork } from 'node:child_process';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arg, pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/lockstep.mjs [--patchbay PATH] [--runtime DIR] [--runtimes 10] ' +
              '[--procs 2] [--patches 200] [--warmup 3] [--only loopback|jitter]');
  process.exit(0);
}
const build = join(here, '..', 'build', 'release');
process.env.PB_CLI = resolve(arg('patchbay', process.env.PB_CLI || join(build, 'cli', 'patchbay')));
process.env.PB_RUNTIME_DIR = resolve(arg('runtime', process.env.PB_RUNTIME_DIR || join(build, 'runtime')));

// ---- a child: some runtimes, reporting their commits ----------------------------
if (process.argv.includes('--child')) {
  const { joinRoom } = await import(pathToFileURL(join(process.env.PB_RUNTIME_DIR, 'node', 'runtime.mjs')).href);
  const links = JSON.parse(arg('links'));
  const rts = [];
  for (const [i, link] of links.entries()) {
    const rt = await joinRoom(link, { name: `bench-${process.pid}-${i}` });
    const arrived = new Map();
    rt.on('patch', (ev) => { if (ev.ok) arrived.set(ev.seq, rt.clock.roomNowUs() - ev.apply_us); });
    rt.on('commit', (c) => {
      if (!c.catchup) process.send({ t: 'commit', rt: `${process.pid}-${i}`, seq: c.seq,
                                     at: c.commit_at_us, apply: c.apply_us, arrived: arrived.get(c.seq) });
    });
    rt.on('state', (s) => { if (s.state === 'live') process.send({ t: 'live' }); });
    rts.push(rt);
  }
  process.on('message', (m) => {
    if (m.t === 'clock')
      process.send({ t: 'clock', clocks: rts.map((r) => ({ offset: r.clock.offsetUs, unc: r.clock.uncertaintyUs })) });
    if (m.t === 'stop') { for (const r of rts) r.close(); process.exit(0); }
  });
  process.send({ t: 'ready' });
} else {
  await main();
}

// ---- the proxy --------------------------------------------------------------------
// Forwards every connection to target, delaying each chunk by 50 ± 20 ms,
// never reordering within a direction.
function jitterProxy(targetPort, { base = 50, jitter = 20 } = {}) {
  const pipe = (from, to) => {
    let last = 0;
    from.on('data', (chunk) => {
      const due = Math.max(Date.now() + base + (Math.random() * 2 - 1) * jitter, last);
      last = due;
      setTimeout(() => { if (!to.destroyed) to.write(chunk); }, due - Date.now());
    });
    from.on('end', () => setTimeout(() => to.end(), Math.max(0, last - Date.now()) + 1));
    from.on('error', () => to.destroy());
  };
  const server = net.createServer((client) => {
    const up = net.connect(targetPort, '127.0.0.1');
    pipe(client, up);
    pipe(up, client);
    up.on('close', () => client.destroy());
    client.on('close', () => up.destroy());
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

async function main() {
  const RUNTIMES = Number(arg('runtimes', 10));
  const PROCS = Number(arg('procs', 2));
  const PATCHES = Number(arg('patches', 200));
  const WARMUP = Number(arg('warmup', 3));
  const ONLY = arg('only', '');
  const { Relay, until, encode, decode } = await import('../tests/runtime/harness.mjs');
  const WebSocket = (await import('ws')).default;
  const ms = (us) => (us / 1000).toFixed(2);

  async function round(mode) {
    const relay = await new Relay({ backend: 'warm' }).start();
    const room = `bench-${mode}`;
    let proxy = null;
    let port = relay.port;
    if (mode === 'jitter') {
      proxy = await jitterProxy(relay.port);
      port = proxy.address().port;
    }
    const links = [];
    for (let i = 0; i < RUNTIMES; i++)
      links.push(relay.link(room, `r${i}`).replace(`:${relay.port}/`, `:${port}/`));
    const commits = new Map(); // seq -> [{rt, at, apply}]
    const kids = [];
    let liveCount = 0;
    for (let p = 0; p < PROCS; p++) {
      const mine = links.filter((_, i) => i % PROCS === p);
      const kid = fork(fileURLToPath(import.meta.url), ['--child', '--links', JSON.stringify(mine)],
                       { env: process.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      kid.on('message', (m) => {
        if (m.t === 'live') liveCount++;
        if (m.t === 'commit') {
          if (!commits.has(m.seq)) commits.set(m.seq, []);
          commits.get(m.seq).push(m);
        }
        if (m.t === 'clock') kid.clocks = m.clocks;
      });
      kids.push(kid);
    }
    await until(() => liveCount >= RUNTIMES, 'every runtime live', 60000);
    await new Promise((r) => setTimeout(r, mode === 'jitter' ? 3000 : 1000)); // first clock samples

    // the editor, straight to the relay
    const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${room}`, 'patchbay');
    ws.binaryType = 'arraybuffer';
    const waiting = new Map();
    await new Promise((resolve, reject) => {
      ws.onopen = () => ws.send(encode({ v: 1, t: 'hello', token: relay.token(room, 'editor', 'bench') }));
      ws.onerror = (e) => reject(e.error || new Error('editor socket'));
      ws.onmessage = (ev) => {
        const f = decode(new Uint8Array(ev.data));
        if (f.t === 'welcome') resolve();
        if ((f.t === 'diag' || f.t === 'error') && waiting.has(f.req)) { waiting.get(f.req)(f); waiting.delete(f.req); }
      };
    });
    const seqs = [];
    const sent = new Map(); // seq -> when the editor sent its eval (µs)
    let sentAt = 0;
    process.stderr.write(`${mode}: ${PATCHES} patches to ${RUNTIMES} runtimes in ${PROCS} processes…\n`);
    for (let i = 0; i < WARMUP + PATCHES; i++) {
      let f;
      do {
        const req = i * 100 + Math.floor(Math.random() * 100);
        const answer = new Promise((r) => waiting.set(req, r));
        sentAt = Date.now() * 1000; // the wall clock, as the relay's room clock
        ws.send(encode({ v: 1, t: 'eval', req, lang: 'c', name: 'b.c',
                         source: `double k${i % 9}(double v) { return v * ${i + 2}; }\n` }));
        f = await answer;
        if (f.t === 'error') await new Promise((r) => setTimeout(r, 150)); // rate limit: again
      } while (f.t === 'error');
      if (!f.ok) throw new Error(`eval ${i}: ${JSON.stringify(f)}`);
      seqs.push(f.seq);
      sent.set(f.seq, sentAt);
      await until(() => (commits.get(f.seq) || []).length >= RUNTIMES, `seq ${f.seq} everywhere`, 30000);
      await new Promise((r) => setTimeout(r, 20));
      if ((i + 1 - WARMUP) % 50 === 0) process.stderr.write(`  ${i + 1 - WARMUP}/${PATCHES}\n`);
    }
    await until(() => (commits.get(seqs.at(-1)) || []).length >= RUNTIMES, 'the last patch everywhere', 60000);
    for (const k of kids) k.send({ t: 'clock' });
    await until(() => kids.every((k) => k.clocks), 'clock reports', 10000);
    const skews = [], late = [], arrivals = [], ready = [];
    const warm = seqs.slice(0, WARMUP).flatMap((s) => (commits.get(s) || []).map((x) => x.at - x.apply));
    for (const s of seqs.slice(WARMUP)) {
      const c = commits.get(s) || [];
      if (c.length < RUNTIMES) continue;
      const at = c.map((x) => x.at);
      skews.push(Math.max(...at) - Math.min(...at));
      for (const x of c) late.push(x.at - x.apply);
      for (const x of c) if (x.arrived !== undefined) arrivals.push(x.arrived);
      // eval -> prepared everywhere: what eval -> committed would be with a
      // lead of zero (the lead is a chosen delay, not work)
      if (c.every((x) => x.arrived !== undefined))
        ready.push(Math.max(...c.map((x) => x.apply + x.arrived)) - sent.get(s));
    }
    const offs = kids.flatMap((k) => k.clocks.map((c) => Math.abs(c.offset)));
    const uncs = kids.flatMap((k) => k.clocks.map((c) => c.unc));
    console.log(`${mode}: ${skews.length} of ${seqs.length - WARMUP} patches committed by all ${RUNTIMES} runtimes ` +
                `(after ${WARMUP} warm-up patches, committed up to ${ms(Math.max(0, ...warm))} ms late)`);
    console.log(`  skew (max - min commit time)    p50 ${ms(pct(skews, 50))} ms  p99 ${ms(pct(skews, 99))} ms  max ${ms(Math.max(...skews))} ms`);
    console.log(`  commit after apply time         p50 ${ms(pct(late, 50))} ms  p99 ${ms(pct(late, 99))} ms  min ${ms(Math.min(...late))} ms`);
    console.log(`  eval -> prepared by all (lead excluded) p50 ${ms(pct(ready, 50))} ms  p95 ${ms(pct(ready, 95))} ms  ` +
                `p99 ${ms(pct(ready, 99))} ms  (the seed: 180 ms; ratio ${(180000 / pct(ready, 50)).toFixed(1)}x at p50)`);
    console.log(`  patch ready before apply time   p50 ${ms(-pct(arrivals, 50))} ms  min ${ms(-Math.max(...arrivals))} ms`);
    console.log(`  clock offset error |estimate|   p50 ${ms(pct(offs, 50))} ms  max ${ms(Math.max(...offs))} ms ` +
                `(reported uncertainty max ${ms(Math.max(...uncs))} ms)`);
    ws.close();
    for (const k of kids) k.send({ t: 'stop' });
    await Promise.all(kids.map((k) => new Promise((r) => k.on('exit', r))));
    proxy?.close();
    await relay.stop();
    return { skews, late, offs };
  }

  const out = {};
  for (const mode of ['loopback', 'jitter'])
    if (!ONLY || ONLY === mode) out[mode] = await round(mode);
  if (out.loopback && out.jitter)
    console.log(`ratio of p99 skew, jitter / loopback: ${(pct(out.jitter.skews, 99) / pct(out.loopback.skews, 99)).toFixed(2)}`);
  process.exit(0);
}
