// bench/relay.mjs — the relay under load, on loopback, with ratios against a
// baseline run in the same invocation:
//   fan-out   one eval (a ~1 KB patch frame) to N WebSocket clients held by
//             several client processes: time from the editor's send until the
//             last client has the patch, vs a minimal broadcast relay written
//             with node's `ws` package relaying a message of the same size.
//             The patchbay figure includes what the baseline does not do:
//             compile (a compile-cache hit after the first round), sign, and
//             commit to SQLite with fsync before broadcasting.
//   memory    relay RSS with N clients spread over R rooms (and per client).
//   catch-up  a late joiner in a room of P patches: time from connect until
//             its catch-up is complete (history more=false), vs fetching the
//             same bytes from the baseline relay.
// Not a test: prints numbers, asserts nothing. Needs `npm ci` (ws).
//
// Its fan-out figure holds the clients in node processes on the same two
// cores, so it mostly measures them (issue 19): bench/fanout.mjs measures
// one relay's fan-out with the C load generator (bench/loadgen.c) and the
// relay's own CPU time per delivery; use that one for fan-out.
//
// usage: node bench/relay.mjs [--patchbay PATH] [--clients 1000]
//        [--procs 4] [--rounds 20] [--rooms 100] [--patches 1000]
//        [--backend process|warm]   (default: process; the compiler is not
//                                    what this measures)
import { spawn, fork, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import WebSocket, { WebSocketServer } from 'ws';
import { pct } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

// ---- a little msgpack: maps of str keys to str / uint / bool ---------------
function packStr(s) {
  const b = Buffer.from(s, 'utf8');
  if (b.length < 32) return Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
  if (b.length < 256) return Buffer.concat([Buffer.from([0xd9, b.length]), b]);
  const h = Buffer.alloc(3);
  h[0] = 0xda;
  h.writeUInt16BE(b.length, 1);
  if (b.length < 65536) return Buffer.concat([h, b]);
  const h4 = Buffer.alloc(5);
  h4[0] = 0xdb;
  h4.writeUInt32BE(b.length, 1);
  return Buffer.concat([h4, b]);
}
function packUint(n) {
  if (n < 128) return Buffer.from([n]);
  const b = Buffer.alloc(9);
  b[0] = 0xcf;
  b.writeBigUInt64BE(BigInt(n), 1);
  return b;
}
function packMap(obj) {
  const parts = [Buffer.from([0x80 | Object.keys(obj).length])];
  for (const [k, v] of Object.entries(obj)) {
    parts.push(packStr(k));
    parts.push(typeof v === 'number' ? packUint(v) : packStr(v));
  }
  return Buffer.concat(parts);
}
const hello = (token) => packMap({ v: 1, t: 'hello', token, client: 'bench' });
const evalFrame = (req, source) =>
  packMap({ v: 1, t: 'eval', req, lang: 'c', name: 'bench.c', source });

// The frame type: frames start with the map header, "v", 1, "t", type.
function frameType(buf) {
  const b = Buffer.from(buf);
  if (b.length < 6 || b[1] !== 0xa1 || b[2] !== 0x76 || b[4] !== 0xa1 || b[5] !== 0x74) return '';
  const len = b[6] & 0x1f;
  return b.subarray(7, 7 + len).toString();
}
// history frame: is "more" true? (encoder omits false fields)
const historyHasMore = (buf) => Buffer.from(buf).includes(Buffer.from([0xa4, 0x6d, 0x6f, 0x72, 0x65, 0xc3]));

// ---- client process: holds many connections, reports receipt times --------
async function clientProcess() {
  const conns = [];
  let counts = [];
  let times = [];
  process.on('message', async (m) => {
    if (m.cmd === 'open') {
      const { urls, tokens, patchbay } = m;
      await Promise.all(urls.map((url, i) => new Promise((resolve, reject) => {
        const ws = new WebSocket(url, patchbay ? 'patchbay' : undefined, { perMessageDeflate: false });
        ws.binaryType = 'nodebuffer';
        const k = conns.length;
        conns.push(ws);
        counts[k] = 0;
        let ready = false;
        ws.on('open', () => {
          if (patchbay) ws.send(hello(tokens[i]));
          else { ready = true; resolve(); }
        });
        ws.on('message', (data) => {
          const t = patchbay ? frameType(data) : 'payload';
          if (!ready) {
            if (t === 'history' && !historyHasMore(data)) { ready = true; resolve(); }
            if (t === 'error') reject(new Error('relay refused a bench client'));
            return;
          }
          if (t === 'patch' || t === 'payload') {
            counts[k]++;
            const r = counts[k];
            const now = nowUs();
            times[r] = Math.max(times[r] || 0, now);
            if (conns.every((_, j) => counts[j] >= r))
              process.send({ round: r, last: times[r] });
          }
        });
        ws.on('error', reject);
      })));
      process.send({ opened: conns.length });
    } else if (m.cmd === 'close') {
      for (const ws of conns) ws.terminate();
      process.exit(0);
    }
  });
}

// ---- helpers for the driver --------------------------------------------------
function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : def;
}
const fmt = (us) => (us / 1000).toFixed(2) + ' ms';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function startRelay(bin, dir, extra = []) {
  const p = spawn(bin, ['serve', '--port', '0', '--data', dir, '--quiet',
    '--max-clients', '100000', '--evals-per-second', '100000',
    '--room-evals-per-second', '100000', '--max-evals-per-name', '100000',
    '--max-evals-per-room', '100000', '--max-evals', '100000',
    '--backend', arg('backend', 'process'), ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    p.on('exit', (c) => reject(new Error('relay exited ' + c)));
  });
  return { p, port };
}

function token(bin, dir, room, role) {
  return execFileSync(bin, ['token', '--data', dir, '--room', room, '--role', role,
    '--name', 'bench', '-q']).toString().trim();
}

// Opens n connections spread over procs client processes.
async function openClients(n, procs, urlOf, tokenOf, patchbay) {
  const children = [];
  const per = Math.ceil(n / procs);
  for (let c = 0; c < procs && c * per < n; c++) {
    const child = fork(fileURLToPath(import.meta.url), ['--client'], { stdio: 'inherit' });
    const idx = [...Array(Math.min(per, n - c * per)).keys()].map((i) => c * per + i);
    const opened = new Promise((resolve) => child.once('message', resolve));
    child.send({ cmd: 'open', urls: idx.map(urlOf), tokens: idx.map(tokenOf), patchbay });
    children.push({ child, opened });
  }
  for (const c of children) await c.opened;
  return children.map((c) => c.child);
}

// Runs rounds: send() triggers one message; returns per-round latencies (µs)
// until every child reported that round.
async function rounds(children, nRounds, send) {
  const lat = [];
  for (let r = 1; r <= nRounds; r++) {
    const done = children.map((ch) => new Promise((resolve) => {
      const on = (m) => { if (m.round === r) { ch.off('message', on); resolve(m.last); } };
      ch.on('message', on);
    }));
    const t0 = nowUs();
    send(r);
    const lasts = await Promise.all(done);
    lat.push(Math.max(...lasts) - t0);
    await sleep(20);
  }
  return lat;
}

const closeAll = (children) => children.forEach((c) => c.send({ cmd: 'close' }));

// ---- the benchmarks -----------------------------------------------------------
async function fanout(bin, clients, procs, nRounds) {
  const dir = mkdtempSync(join(tmpdir(), 'pb-bench-'));
  const { p, port } = await startRelay(bin, dir);
  const rt = token(bin, dir, 'fan', 'runtime');
  const ed = token(bin, dir, 'fan', 'editor');
  const src = '#include <patchbay.h>\n/* ' + 'x'.repeat(300) + ' */\ndouble fan(double v) { return v * 2 + 1; }\n';
  // the editor
  const editor = new WebSocket(`ws://127.0.0.1:${port}/r/fan`, 'patchbay');
  let patchBytes = 0;
  await new Promise((resolve) => {
    editor.on('open', () => editor.send(hello(ed)));
    editor.on('message', (d) => {
      const t = frameType(d);
      if (t === 'welcome') resolve();
      if (t === 'patch') patchBytes = d.length;
    });
  });
  // warm the compile cache (first compile) before anyone measures
  editor.send(evalFrame(1, src));
  while (!patchBytes) await sleep(10);
  const t0 = Date.now();
  const children = await openClients(clients, procs, () => `ws://127.0.0.1:${port}/r/fan`, () => rt, true);
  const joinMs = Date.now() - t0;
  const rssPb = rssKb(p.pid);
  const lat = await rounds(children, nRounds, (r) => editor.send(evalFrame(1 + r, src)));
  closeAll(children);
  editor.close();
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  rmSync(dir, { recursive: true, force: true });

  // the baseline: a ws broadcast relay in its own process
  const base = fork(fileURLToPath(import.meta.url), ['--baseline'], { stdio: 'inherit' });
  const bport = await new Promise((r) => base.once('message', (m) => r(m.port)));
  const bchildren = await openClients(clients, procs, () => `ws://127.0.0.1:${bport}`, () => '', false);
  const sender = new WebSocket(`ws://127.0.0.1:${bport}`);
  await new Promise((r) => sender.on('open', r));
  const payload = Buffer.alloc(patchBytes, 7);
  const blat = await rounds(bchildren, nRounds, () => sender.send(payload));
  closeAll(bchildren);
  sender.close();
  base.kill();
  return { lat, blat, patchBytes, joinMs, rssPb };
}

async function baselineProcess() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      for (const c of wss.clients) if (c !== ws && c.readyState === 1) c.send(data);
    });
  });
  wss.on('listening', () => process.send({ port: wss.address().port }));
}

async function memory(bin, clients, rooms, procs) {
  const dir = mkdtempSync(join(tmpdir(), 'pb-bench-'));
  const { p, port } = await startRelay(bin, dir);
  const toks = [];
  for (let r = 0; r < rooms; r++) toks.push(token(bin, dir, 'room' + r, 'viewer'));
  await sleep(200);
  const before = rssKb(p.pid);
  const children = await openClients(clients, procs, (i) => `ws://127.0.0.1:${port}/r/room${i % rooms}`,
    (i) => toks[i % rooms], true);
  await sleep(500);
  const after = rssKb(p.pid);
  closeAll(children);
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
  return { before, after };
}

async function catchup(bin, patches, joins) {
  const dir = mkdtempSync(join(tmpdir(), 'pb-bench-'));
  const { p, port } = await startRelay(bin, dir);
  const ed = token(bin, dir, 'long', 'editor');
  const rt = token(bin, dir, 'long', 'runtime');
  const editor = new WebSocket(`ws://127.0.0.1:${port}/r/long`, 'patchbay');
  let accepted = 0;
  await new Promise((resolve) => {
    editor.on('open', () => editor.send(hello(ed)));
    editor.on('message', (d) => {
      const t = frameType(d);
      if (t === 'welcome') resolve();
      if (t === 'diag') accepted++;
    });
  });
  // 20 vars, 2 versions each: few distinct sources, so the compile cache
  // makes building the room quick
  for (let i = 0; i < patches; i++)
    editor.send(evalFrame(i + 1, `#include <patchbay.h>\ndouble v${i % 20}(double x) { return x + ${(i / 20 | 0) % 2}; }\n`));
  while (accepted < patches) await sleep(20);
  const times = [];
  let bytes = 0;
  for (let j = 0; j < joins; j++) {
    const t0 = nowUs();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/r/long`, 'patchbay', { perMessageDeflate: false });
    let got = 0;
    await new Promise((resolve) => {
      ws.on('open', () => ws.send(hello(rt)));
      ws.on('message', (d) => {
        got += d.length;
        if (frameType(d) === 'history' && !historyHasMore(d)) resolve();
      });
    });
    times.push(nowUs() - t0);
    bytes = got;
    ws.close();
  }
  editor.close();
  p.kill('SIGTERM');
  await new Promise((r) => p.on('exit', r));
  rmSync(dir, { recursive: true, force: true });

  // baseline: the same number of bytes in 64-item-sized messages from ws
  const base = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((r) => base.on('listening', r));
  const chunk = Buffer.alloc(Math.ceil(bytes / Math.ceil(patches / 64)), 1);
  base.on('connection', (ws) => {
    ws.on('message', () => {
      for (let sent = 0; sent < bytes; sent += chunk.length) ws.send(chunk);
      ws.send(Buffer.from('end'));
    });
  });
  const btimes = [];
  for (let j = 0; j < joins; j++) {
    const t0 = nowUs();
    const ws = new WebSocket(`ws://127.0.0.1:${base.address().port}`, { perMessageDeflate: false });
    await new Promise((resolve) => {
      ws.on('open', () => ws.send('go'));
      ws.on('message', (d) => { if (d.length === 3) resolve(); });
    });
    btimes.push(nowUs() - t0);
    ws.close();
  }
  base.close();
  return { times, btimes, bytes };
}

async function main() {
  if (process.argv.includes('--help')) {
    console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n')
      .filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    return;
  }
  let bin = arg('patchbay', join(here, '../build/release/cli/patchbay'));
  if (!existsSync(bin)) bin = join(here, '../build/test/cli/patchbay');
  const clients = Number(arg('clients', 1000));
  const procs = Number(arg('procs', 4));
  const nRounds = Number(arg('rounds', 20));
  const rooms = Number(arg('rooms', 100));
  const patches = Number(arg('patches', 1000));
  console.log(`# relay bench: ${bin}, ${clients} clients in ${procs} processes`);

  const f = await fanout(bin, clients, procs, nRounds);
  console.log(`fan-out of a ${f.patchBytes}-byte patch to ${clients} clients, ${nRounds} rounds`);
  console.log(`  patchbay (eval -> last client): p50 ${fmt(pct(f.lat, 50))}  p95 ${fmt(pct(f.lat, 95))}`);
  console.log(`  ws baseline (send -> last):     p50 ${fmt(pct(f.blat, 50))}  p95 ${fmt(pct(f.blat, 95))}`);
  console.log(`  ratio patchbay/baseline p50: ${(pct(f.lat, 50) / pct(f.blat, 50)).toFixed(2)}`);
  console.log(`  ${clients} clients joined (hello, welcome, catch-up) in ${f.joinMs} ms; relay RSS ${(f.rssPb / 1024).toFixed(1)} MiB`);

  const m = await memory(bin, clients, rooms, procs);
  console.log(`memory with ${clients} clients in ${rooms} rooms: relay RSS ${(m.before / 1024).toFixed(1)} -> ${(m.after / 1024).toFixed(1)} MiB ` +
    `(${((m.after - m.before) / clients).toFixed(1)} KiB per client)`);

  const c = await catchup(bin, patches, 5);
  console.log(`late joiner in a ${patches}-patch room (${(c.bytes / 1024).toFixed(0)} KiB of catch-up): ` +
    `p50 ${fmt(pct(c.times, 50))}, same bytes from a ws server ${fmt(pct(c.btimes, 50))}, ratio ${(pct(c.times, 50) / pct(c.btimes, 50)).toFixed(2)}`);
  process.exit(0);
}

if (process.argv.includes('--client')) clientProcess();
else if (process.argv.includes('--baseline')) baselineProcess();
else main().catch((e) => { console.error(e); process.exit(1); });
