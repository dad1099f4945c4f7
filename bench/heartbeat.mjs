// bench/heartbeat.mjs — what the signed head heartbeat (docs/PROTOCOL.md
// § The signed head) costs each client of an idle room, in one run: R node
// runtimes join a room through a counting proxy (tests/security/
// attacker.mjs, forwarding everything), and for S seconds the bytes the
// relay sends each of them are summed by frame type. Printed per client
// and minute: the `head` frames, against the baseline of the clock sync's
// `pong`s in the same run (ratio head / pong), and everything the relay
// sent. WebSocket framing is not counted (2–4 bytes a message).
//
// usage: node bench/heartbeat.mjs [--patchbay PATH] [--runtime DIR]
//                                 [--runtimes 5] [--seconds 30]
//   PATH defaults to build/release/cli/patchbay, DIR to
//   build/release/runtime (the installed node runtime).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/heartbeat.mjs [--patchbay PATH] [--runtime DIR] [--runtimes 5] [--seconds 30]');
  process.exit(0);
}
const build = join(here, '..', 'build', 'release');
process.env.PB_CLI = resolve(arg('patchbay', join(build, 'cli', 'patchbay')));
process.env.PB_RUNTIME_DIR = resolve(arg('runtime', join(build, 'runtime')));
const RUNTIMES = Number(arg('runtimes', 5));
const SECONDS = Number(arg('seconds', 30));

const { Relay, joinRoom, until } = await import('../tests/runtime/harness.mjs');
const { Mitm } = await import('../tests/security/attacker.mjs');

const relay = await new Relay().start();
const mitm = await new Mitm(relay.port).start();
const rts = [];
try {
  await relay.eval('idle', '#include <patchbay.h>\ndouble ggg(double v) { return v + 48; }\n');
  for (let i = 0; i < RUNTIMES; i++)
    rts.push(await joinRoom(mitm.link(relay.link('idle', `rt${i}`)), { name: `rt${i}`, store: null }));
  await until(() => rts.every((r) => r.committedSeq === 1 && r.clock.isSynced), 'every runtime joined and synced');
  const from = mitm.seen.length;
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const minutes = (Date.now() - t0) / 60000;
  const by = {};
  for (const s of mitm.seen.slice(from))
    if (s.dir === 'client') by[s.t] = (by[s.t] || 0) + s.bytes.length;
  const per = (b) => (b || 0) / RUNTIMES / minutes;
  const all = Object.values(by).reduce((a, b) => a + b, 0);
  console.log(`idle room, ${RUNTIMES} node runtimes, ${SECONDS} s (bytes the relay sent, per client and minute)`);
  console.log(`  head (signed heartbeat)   ${per(by.head).toFixed(0)} B/min`);
  console.log(`  pong (clock sync, baseline) ${per(by.pong).toFixed(0)} B/min`);
  console.log(`  everything                ${per(all).toFixed(0)} B/min`);
  console.log(`  ratio head / pong         ${(per(by.head) / per(by.pong)).toFixed(2)}`);
} finally {
  for (const r of rts) r.close();
  await mitm.close();
  await relay.stop();
}
