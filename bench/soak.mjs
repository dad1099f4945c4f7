// bench/soak.mjs — issue 22's soak: N clients in R rooms for M minutes,
// a share of them hostile, against one relay on loopback. Each room has
// one honest editor (an eval every few seconds), honest viewers that check
// they get every patch of their room once, in order, and never lose their
// connection; hostile clients (eval floods from an editor token, log and
// ack floods from a runtime token, history_req floods from a viewer, junk
// before hello) come and go. Prints the relay's RSS at the start, after
// the first minute (warm-up) and at the end (flat within 10 % is the goal), honest frames lost (0), honest
// connections the relay closed (0) and the honest eval → diag latency
// p50/p99 — not a test: nothing is asserted (run it by hand; CI does not).
//
// usage: node bench/soak.mjs [--patchbay PATH] [--clients 1000] [--rooms 100]
//        [--minutes 10] [--hostile 0.05] [--backend process|warm]
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { pct } from './common.mjs';
import { encode, decode } from '../web/src/msgpack.js';

const here = dirname(fileURLToPath(import.meta.url));

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}
const bin = arg('patchbay', join(here, '../build/release/cli/patchbay'));
const clients = Number(arg('clients', 1000));
const rooms = Number(arg('rooms', 100));
const minutes = Number(arg('minutes', 10));
const hostileShare = Number(arg('hostile', 0.05));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const frame = (t, f) => encode({ v: 1, t, ...f });
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

const dir = mkdtempSync(join(tmpdir(), 'pb-soak-'));
const data = join(dir, 'data');
const relay = spawn(bin, ['serve', '--port', '0', '--data', data, '--quiet',
  '--backend', arg('backend', 'warm'), '--max-clients', '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  relay.stdout.on('data', (d) => {
    out += d;
    const m = /127\.0\.0\.1:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  relay.on('exit', (c) => reject(new Error('relay exited ' + c)));
});
// Every token is made before the clients start, a few `patchbay token`
// at a time. A room's honest viewers share one (a join link on a
// projector screen is one token for the whole class).
const tokens = new Map();
const token = (room, role, name) => tokens.get(`${room}/${role}/${name}`);
async function makeTokens(list) {
  const run = promisify(execFile);
  for (let i = 0; i < list.length; i += 6)
    await Promise.all(list.slice(i, i + 6).map(async ([room, role, name]) => {
      const { stdout } = await run(bin, ['token', '--data', data, '--room', room, '--role', role, '--name', name, '-q']);
      tokens.set(`${room}/${role}/${name}`, stdout.trim());
    }));
}
const t00 = Date.now();
const say = (what) => process.stderr.write(`soak ${((Date.now() - t00) / 1000).toFixed(0)} s: ${what}\n`);

const stats = { lost: 0, doubled: 0, closed: 0, closeCodes: new Map(), failed: 0, latencies: [], evals: 0, refused: 0 };
const unexpectedClose = (ws) => (code, reason) => {
  if (ws.leaving) return;
  stats.closed++;
  const k = `${code} ${reason}`;
  stats.closeCodes.set(k, (stats.closeCodes.get(k) || 0) + 1);
};

function open(room, role, name, onFrame) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['patchbay'], { perMessageDeflate: false });
    ws.binaryType = 'arraybuffer';
    ws.on('open', () => ws.send(frame('hello', { token: token(room, role, name) })));
    ws.on('message', (d) => {
      const f = decode(new Uint8Array(d));
      if (f.t === 'welcome') { ws.welcomed = true; resolve(ws); }
      onFrame?.(f, ws);
    });
    ws.on('error', () => { ws.failed = true; resolve(ws); });
    // refused (a limit) or closed before welcome: not connected
    ws.on('close', () => { ws.failed ||= !ws.welcomed; resolve(ws); });
  });
}

// Honest viewers: every patch of the room once, in order.
function viewer(room) {
  let last = -1;
  const seen = (seq) => {
    if (last >= 0 && seq > last + 1) stats.lost += seq - last - 1;
    if (seq <= last) stats.doubled++;
    last = Math.max(last, seq);
  };
  return open(room, 'viewer', 'viewers', (f) => {
    if (f.t === 'welcome') last = f.head_seq;
    if (f.t === 'patch') seen(decode(f.stmt)[2]);
    if (f.t === 'history') for (const it of f.items || []) last = Math.max(last, decode(it.stmt)[2]);
  }).then((ws) => { if (ws.failed) stats.failed++; ws.on('close', unexpectedClose(ws)); return ws; });
}

let serial = 0;
async function honestEditor(room) {
  const pending = new Map();
  const ws = await open(room, 'editor', 'ed', (f) => {
    if ((f.t === 'diag' || f.t === 'error') && pending.has(f.req)) {
      if (f.t === 'error') stats.refused++;
      else stats.latencies.push(performance.now() - pending.get(f.req));
      pending.delete(f.req);
    }
  });
  if (ws.failed) stats.failed++;
  ws.on('close', unexpectedClose(ws));
  ws.pending = pending;
  ws.evalOnce = () => {
    const req = ++serial;
    pending.set(req, performance.now());
    stats.evals++;
    ws.send(frame('eval', { req, lang: 'c', name: 'soak.c',
                            source: `#include <patchbay.h>\ndouble k${req % 20}(double x) { return x * ${req}; }\n` }));
  };
  return ws;
}

// One hostile client for a while, then it leaves (and another comes).
async function hostile(room, kind, stop) {
  while (!stop.now) {
    if (kind === 0) { // eval flood
      const ws = await open(room, 'editor', 'flood');
      for (let i = 0; i < 200 && ws.readyState === 1; i++)
        ws.send(frame('eval', { req: i + 1, lang: 'c', name: 'f.c', source: `double f${i}(double x) { return x; }\n` }));
      await sleep(2000);
      ws.terminate();
    } else if (kind === 1) { // log and ack flood
      const ws = await open(room, 'runtime', 'noisy');
      for (let i = 0; i < 2000 && ws.readyState === 1; i++)
        ws.send(frame('log', { level: 'info', text: 'y'.repeat(500), seq: 1, var: 'pb_frame' }));
      await sleep(2000);
      ws.terminate();
    } else if (kind === 2) { // history_req flood
      const ws = await open(room, 'viewer', 'reader');
      for (let i = 0; i < 100 && ws.readyState === 1; i++)
        ws.send(frame('history_req', { req: i + 1, mode: 'range', from_seq: 1, to_seq: 0 }));
      await sleep(2000);
      ws.terminate();
    } else { // junk before hello
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, ['patchbay']);
      ws.on('open', () => ws.send(Buffer.alloc(16384, 0x42)));
      ws.on('error', () => {});
      await sleep(1000);
      ws.terminate();
    }
  }
}

const nHostile = Math.round(clients * hostileShare);
const perRoom = Math.max(2, Math.floor((clients - nHostile) / rooms));
process.stderr.write(`soak: ${clients} clients (${nHostile} hostile) in ${rooms} rooms for ${minutes} min\n`);
const hostileKinds = [['editor', 'flood'], ['runtime', 'noisy'], ['viewer', 'reader']];
const needed = [];
for (let r = 0; r < rooms; r++)
  needed.push([`room${r}`, 'editor', 'ed'], [`room${r}`, 'viewer', 'viewers']);
for (let h = 0; h < nHostile; h++)
  if (h % 4 < 3) needed.push([`room${h % rooms}`, ...hostileKinds[h % 4]]);
await makeTokens(needed);
say(`${tokens.size} tokens made`);
const editors = [], viewers = [];
for (let r = 0; r < rooms; r++) {
  editors.push(await honestEditor(`room${r}`));
  for (let i = 1; i < perRoom; i++) viewers.push(await viewer(`room${r}`));
}
say(`${editors.length + viewers.length} honest clients connected`);
const stop = { now: false };
const hostiles = [];
for (let h = 0; h < nHostile; h++) hostiles.push(hostile(`room${h % rooms}`, h % 4, stop));
await sleep(5000);
const rssStart = rssKb(relay.pid);
say(`hostile clients running; ${minutes} min of evals begin`);
const rssSamples = [rssStart];
const t0 = Date.now();
let nextSample = t0 + 30000;
while (Date.now() - t0 < minutes * 60000) {
  for (const ed of editors) if (Math.random() < 0.2) ed.evalOnce();
  await sleep(1000);
  if (Date.now() >= nextSample) {
    rssSamples.push(rssKb(relay.pid));
    nextSample += 30000;
  }
}
stop.now = true;
say('evals done; hostile clients stopping');
await Promise.race([Promise.allSettled(hostiles), sleep(15000)]);
await sleep(3000);
const rssEnd = rssKb(relay.pid);
rssSamples.push(rssEnd);
// an eval still unanswered 3 s after the last one was sent: a lost diag
const unanswered = editors.reduce((n, ed) => n + (ed.pending?.size || 0), 0);
for (const ws of [...editors, ...viewers]) { ws.leaving = true; ws.close(); }
relay.kill('SIGTERM');
await new Promise((r) => relay.on('exit', r));
rmSync(dir, { recursive: true, force: true });
const lat = stats.latencies;
console.log(`soak: ${clients} clients (${nHostile} hostile) in ${rooms} rooms, ${minutes} min`);
const mib = (kb) => (kb / 1024).toFixed(1);
console.log(`  honest clients ${editors.length + viewers.length} (${editors.length} editors, ${viewers.length} viewers), ${stats.failed} failed to connect`);
const grew = (from) => `${(100 * (rssEnd - from) / from).toFixed(1)} %`;
// after the first minute: SQLite's page caches (2 MB per connection at
// most) and the allocator's arena have filled (bench/README.md § Soak)
const rssWarm = rssSamples[Math.min(2, rssSamples.length - 1)];
console.log(`  relay RSS ${mib(rssStart)} MiB -> ${mib(rssEnd)} MiB (${grew(rssStart)}); after the first minute ${mib(rssWarm)} MiB -> ${mib(rssEnd)} MiB (${grew(rssWarm)}); every 30 s: ${rssSamples.map(mib).join(' ')}`);
console.log(`  honest patches lost ${stats.lost}, doubled ${stats.doubled}; honest evals unanswered ${unanswered}; honest connections closed by the relay ${stats.closed}`);
for (const [k, n] of stats.closeCodes) console.log(`    closed ${n}x: ${k}`);
console.log(`  honest evals ${stats.evals}: refused ${stats.refused}; eval -> diag p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms (${lat.length} answered)`);
