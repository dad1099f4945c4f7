// bench/nrepl.mjs — the REPL round trip of issue 17, in one run: a real
// relay, R node runtimes (default 10) in one room, `patchbay nrepl` as the
// room's editor, and an nREPL client (tests/nrepl/client.mjs) that
// evaluates (ggg i) N times (default 40; a new i each time, so every eval
// is compiled, not served from the compile cache) and takes the time from
// sending the eval until its reply says done — with the value of all R
// runtimes gathered. Each expression runs at its apply time, the relay's
// lead after it was accepted (adaptive, 50 ms unless a runtime needs more),
// which is most of the round trip and the price of every screen changing
// at the same moment.
//
// Printed: p50/p95 against the seed's 180 ms (the proof of concept's
// (defn ggg …) → side module alone, issue 17), and against the same
// expression sent by a plain WebSocket editor in the same run (the
// protocol's own round trip: what nREPL adds).
//
// usage: node bench/nrepl.mjs [--patchbay PATH] [--runtime DIR]
//                             [--runtimes 10] [--evals 40]
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { arg, pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/nrepl.mjs [--patchbay PATH] [--runtime DIR] [--runtimes 10] [--evals 40]');
  process.exit(0);
}
const build = join(here, '..', 'build', 'release');
process.env.PB_CLI = resolve(arg('patchbay', join(build, 'cli', 'patchbay')));
process.env.PB_RUNTIME_DIR = resolve(arg('runtime', join(build, 'runtime')));
const RUNTIMES = Number(arg('runtimes', 10));
const EVALS = Number(arg('evals', 40));
const SEED_MS = 180; // the proof of concept's compile of (defn ggg …)

const { Relay, joinRoom, until, decode, frame, CLI } = await import('../tests/runtime/harness.mjs');
const { NreplClient, combine } = await import('../tests/nrepl/client.mjs');

const relay = await new Relay().start();
const room = 'bench';
let server;
const rts = [];
try {
  for (let i = 0; i < RUNTIMES; i++) {
    const rt = await joinRoom(relay.link(room, `rt${i}`), { name: `rt${i}` });
    rts.push(rt);
  }
  await until(() => rts.every((r) => r.state === 'live' && r.clock.samples.length >= 3), 'runtimes live');
  server = spawn(CLI, ['nrepl', '--url', `ws://127.0.0.1:${relay.port}`, '--port-file', '', '-q',
                       '--token', relay.token(room, 'editor', 'bench')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((res, rej) => {
    let out = '';
    server.stdout.on('data', (d) => { out += d; const m = /port (\d+)/.exec(out); if (m) res(Number(m[1])); });
    server.on('exit', (c) => rej(new Error(`patchbay nrepl exited ${c}`)));
  });
  const c = await NreplClient.connect(port);
  const session = combine(await c.request({ op: 'clone' }))['new-session'];
  const ev = async (code) => combine(await c.request({ op: 'eval', session, code }, 60000));
  await ev('(defn ggg [v] (+ v 48))');
  await ev('(ggg 0)'); // warm: the compile server, the runtimes' first expression

  // the same expression from a plain WebSocket editor: eval, then every
  // runtime's ack with the value
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${room}`, 'patchbay');
  ws.binaryType = 'arraybuffer';
  const inbox = [];
  let wake = () => {};
  ws.onmessage = (e) => { inbox.push(decode(new Uint8Array(e.data))); wake(); };
  await new Promise((r) => { ws.onopen = r; });
  ws.send(frame('hello', { token: relay.token(room, 'editor', 'direct') }));
  const next = async (pred) => {
    for (;;) {
      const i = inbox.findIndex(pred);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise((r) => { wake = r; setTimeout(r, 50); });
    }
  };
  await next((f) => f.t === 'welcome');

  // one of each in turn, so both see the same load on a shared machine
  const nrepl = [], direct = [];
  for (let i = 1; i <= EVALS; i++) {
    let t0 = performance.now();
    const r = await ev(`(ggg ${i})`);
    nrepl.push(performance.now() - t0);
    const values = r['patchbay/values'] || [];
    if (r.value?.[0] !== String(48 + i) || values.length !== RUNTIMES)
      throw new Error(`(ggg ${i}) gave ${JSON.stringify(r)}`);

    t0 = performance.now();
    ws.send(frame('eval', { req: i, lang: 'lisp', name: 'bench.cljc', source: `(ggg ${1000 + i})`, expr: true }));
    const d = await next((f) => f.t === 'diag' && f.req === i);
    const seen = new Set();
    while (seen.size < RUNTIMES) {
      const a = await next((f) => f.t === 'ack' && f.seq === d.seq && f.state === 'committed');
      if (a.value !== String(1048 + i)) throw new Error(`(ggg ${1000 + i}) gave ${JSON.stringify(a)}`);
      seen.add(a.runtime_id);
    }
    direct.push(performance.now() - t0);
  }
  ws.close();
  c.close();

  const p50 = pct(nrepl, 50), p95 = pct(nrepl, 95);
  const d50 = pct(direct, 50), d95 = pct(direct, 95);
  console.log(`eval → value of ${RUNTIMES} runtimes, ${EVALS} evals each (ms):`);
  console.log(`  through patchbay nrepl  p50 ${p50.toFixed(1)}  p95 ${p95.toFixed(1)}`);
  console.log(`  plain WebSocket editor  p50 ${d50.toFixed(1)}  p95 ${d95.toFixed(1)}`);
  console.log(`  ratio to the seed's ${SEED_MS} ms (compile alone): p50 ${(p50 / SEED_MS).toFixed(2)}  p95 ${(p95 / SEED_MS).toFixed(2)}`);
  console.log(`  ratio nREPL / plain editor: p50 ${(p50 / d50).toFixed(2)}  p95 ${(p95 / d95).toFixed(2)}`);
} finally {
  for (const r of rts) r.close();
  server?.kill('SIGTERM');
  await relay.stop();
}
