// bench/fanout.mjs — one relay's fan-out, measured with the C load
// generator (build/release/bench/loadgen) so that the clients cost little:
// for each client count, N runtimes in one room of a patchbay relay and an
// editor sending evals one at a time (each once the last one reached
// everyone), then the same N clients on a broadcast server written with
// node's `ws` package (and with uWebSockets.js when it loads), relaying a
// message of the patch frame's size from one sender to all others. It
// prints eval -> last delivery p50/p99 and each server's CPU time
// (utime+stime from /proc/PID/stat, over the measured rounds only) per
// 1,000 delivered frames, split into user and system time, and the ratios
// to ws, all from one run. With --syscalls, perf stat also counts each
// server's system calls over the measured rounds (poll, send, writev...)
// per delivery (with --edges: the signer's and the edges' together); its tracepoints cost a little CPU of their own, the same
// for every server. --other-patchbay PATH measures a second relay binary
// (e.g. a build from before a change) after the first, in the same run,
// with its ratios to the first.
//
// The patchbay figure includes what the baselines do not do: a compile-cache
// hit, signing, and an fsync'd SQLite commit before the broadcast, plus its
// signed head heartbeat to every client. Deliveries are counted per client:
// a missing or repeated one is printed, never hidden.
//
// With --edges E (issue 19's "more than one relay"): one relay alone, then
// a signer and E edges on one redis-server (started here on a free
// loopback port), the clients spread evenly over the edges and the editor
// on the signer: eval -> last delivery, and the CPU time of the signer,
// the edges (in all) and Redis per 1,000 deliveries, and the ratios to the
// one relay.
//
// usage: node bench/fanout.mjs [--patchbay PATH] [--loadgen PATH]
//        [--clients 1000,10000] [--evals 20] [--gap-ms 50]
//        [--only patchbay|ws|uws] [--edges E] [--syscalls]
//        [--other-patchbay PATH]
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, copyFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, loadavg } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { arg } from './common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);

// ---- the baselines, each in a process of its own ----------------------------
async function serveWs() {
  const { WebSocketServer } = await import('ws');
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false,
                                    backlog: 4096 });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      for (const c of wss.clients) if (c !== ws && c.readyState === 1) c.send(data);
    });
  });
  wss.on('listening', () => console.log(`listening on 127.0.0.1:${wss.address().port}`));
}

async function serveUws() {
  const uws = (await import('@btc-vision/uwebsockets.js')).default;
  // the way uWS broadcasts: every socket subscribes to one topic, and the
  // sender publishes to it (it is not sent back to the publisher)
  const app = uws.App().ws('/*', {
    compression: uws.DISABLED, maxPayloadLength: 1 << 20, maxBackpressure: 64 << 20,
    open: (ws) => ws.subscribe('room'),
    message: (ws, msg, isBinary) => ws.publish('room', msg, isBinary),
  });
  app.listen('127.0.0.1', 0, (sock) => {
    if (!sock) { console.error('uWS: cannot listen'); process.exit(1); }
    console.log(`listening on 127.0.0.1:${uws.us_socket_local_port(sock)}`);
  });
}

// ---- the driver ---------------------------------------------------------------
function startServer(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    p.on('exit', (c) => reject(new Error(`${cmd} exited with ${c} before listening`)));
  });
  return { p, port };
}

async function stop(p) {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.on('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10000);
  await gone;
  clearTimeout(t);
}

// The system calls --syscalls counts (perf stat on the kernel's
// tracepoints, attached to the server over the measured rounds only).
const SYSCALLS = ['poll', 'ppoll', 'epoll_wait', 'epoll_pwait', 'epoll_ctl', 'sendto', 'sendmsg',
  'write', 'writev', 'recvfrom', 'read', 'futex'];

// Runs loadgen; with tracePids, perf stat counts those processes' system
// calls between loadgen's "joined" (once perf is attached) and "rounds done".
function loadgen(bin, args, tracePids) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, [...args, '--json', ...(tracePids ? ['--wait-go'] : [])],
                    { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '', perf = null, perfOut = '', perfDone = Promise.resolve();
    p.stdout.on('data', (d) => {
      out += d;
      if (tracePids && !perf && /^joined$/m.test(out)) {
        perf = spawn('perf', ['stat', '-x', ',', '-p', tracePids.join(','), '-e',
          ['raw_syscalls:sys_enter', ...SYSCALLS.map((c) => `syscalls:sys_enter_${c}`)].join(',')],
        { stdio: ['ignore', 'ignore', 'pipe'] });
        perf.stderr.on('data', (e) => { perfOut += e; });
        perfDone = new Promise((r) => perf.on('exit', r));
        setTimeout(() => p.stdin.write('go\n'), 500); // perf attaches meanwhile
      }
      if (perf && /^rounds done$/m.test(out)) perf.kill('SIGINT');
    });
    p.on('exit', async (code) => {
      if (perf) perf.kill('SIGINT');
      await perfDone;
      const line = out.trim().split('\n').pop();
      let r;
      try { r = JSON.parse(line); } catch { return reject(new Error(`loadgen failed (exit ${code})`)); }
      if (tracePids) {
        r.syscalls = {};
        for (const l of perfOut.split('\n')) {
          const [n, , ev] = l.split(',');
          const m = /^(?:raw_)?syscalls:sys_enter(?:_(\w+))?$/.exec(ev || '');
          if (m && /^\d+$/.test(n)) r.syscalls[m[1] || 'all'] = Number(n);
        }
        if (!('all' in r.syscalls)) r.syscalls_error = `perf stat gave nothing: ${perfOut.trim().slice(0, 200)}`;
      }
      resolve(r);
    });
  });
}

const common = (n, evals, gap) => ['--clients', String(n), '--evals', String(evals),
  '--gap-ms', String(gap), '--source-addrs', n > 20000 ? '8' : '1'];

// What a relay needs to take n clients in one room and many evals.
const limits = (n) => {
  const lim = String(Math.max(n * 2, 1000));
  return ['--quiet', '--max-clients', lim, '--max-connections', lim, '--max-per-ip', lim,
    '--max-evals', '100000', '--max-evals-per-name', '100000', '--max-evals-per-room', '100000',
    '--evals-per-second', '100000', '--room-evals-per-second', '100000', '--max-catchups', '256'];
};

async function runPatchbay(pb, lg, n, evals, gap, trace) {
  const dir = mkdtempSync(join(tmpdir(), 'pb-fanout-'));
  const { p, port } = startServer(pb, ['serve', '--port', '0', '--data', dir,
    '--backend', 'process', ...limits(n)]);
  try {
    const pt = await port;
    const tok = (role) => execFileSync(pb, ['token', '--data', dir, '--room', 'fan',
      '--role', role, '--name', 'bench', '-q']).toString().trim();
    return await loadgen(lg, ['--url', `ws://127.0.0.1:${pt}`, '--room', 'fan',
      '--token', tok('runtime'), '--editor-token', tok('editor'), '--cpu-pid', String(p.pid),
      ...common(n, evals, gap)], trace && [p.pid]);
  } finally {
    await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// A signer and e edges on a redis-server of their own; the runtimes
// spread over the edges, the editor on the signer.
async function runEdges(pb, lg, n, evals, gap, e, trace) {
  const dir = mkdtempSync(join(tmpdir(), 'pb-edges-'));
  const procs = [];
  try {
    const rport = await freePort();
    const redis = spawn('redis-server', ['--port', String(rport), '--bind', '127.0.0.1',
      '--save', '', '--appendonly', 'no', '--maxclients', '10000'], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(redis);
    await new Promise((resolve, reject) => {
      let out = '';
      redis.stdout.on('data', (d) => { out += d; if (/Ready to accept/.test(out)) resolve(); });
      redis.on('exit', (c) => reject(new Error(`redis-server exited with ${c}:\n${out}`)));
    });
    const url = `redis://127.0.0.1:${rport}`;
    const signerDir = join(dir, 'signer');
    const tok = (role) => execFileSync(pb, ['token', '--data', signerDir, '--room', 'fan',
      '--role', role, '--name', 'bench', '-q'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const rt = tok('runtime'), ed = tok('editor'); // the first makes the signer's keys
    const signer = startServer(pb, ['serve', '--port', '0', '--data', signerDir, '--redis', url,
      '--backend', 'process', ...limits(n)]);
    procs.push(signer.p);
    const sport = await signer.port;
    const edges = [];
    for (let k = 0; k < e; k++) {
      const d = join(dir, `edge${k}`);
      mkdirSync(d, { mode: 0o700 });
      for (const f of ['token.key', 'relay.pub']) copyFileSync(join(signerDir, f), join(d, f));
      const edge = startServer(pb, ['serve', '--edge', '--port', '0', '--data', d, '--redis', url,
        ...limits(n)]);
      procs.push(edge.p);
      edges.push({ p: edge.p, port: await edge.port });
    }
    const r = await loadgen(lg, ['--url', edges.map((x) => `ws://127.0.0.1:${x.port}`).join(','),
      '--editor-url', `ws://127.0.0.1:${sport}`, '--room', 'fan', '--token', rt, '--editor-token', ed,
      '--cpu-pid', [signer.p.pid, ...edges.map((x) => x.p.pid), redis.pid].join(','),
      ...common(n, evals, gap)], trace && [signer.p.pid, ...edges.map((x) => x.p.pid)]);
    const each = r.cpu_ms_each, per = (ms) => (r.delivered ? (ms * 1000) / r.delivered : 0);
    r.signer_per_1000 = per(each[0]);
    r.edges_per_1000 = per(each.slice(1, 1 + e).reduce((a, b) => a + b, 0));
    r.redis_per_1000 = per(each[1 + e]);
    r.redis_ms = each[1 + e];
    return r;
  } finally {
    for (const p of procs.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runBaseline(mode, lg, n, evals, gap, bytes, trace) {
  const { p, port } = startServer(process.execPath, [self, mode]);
  try {
    const pt = await port;
    return await loadgen(lg, ['--raw', '--url', `ws://127.0.0.1:${pt}`, '--cpu-pid',
      String(p.pid), '--payload-bytes', String(bytes), ...common(n, evals, gap)], trace && [p.pid]);
  } finally {
    await stop(p);
  }
}

// uWebSockets.js is published on GitHub, not npm; npm has forks. The one
// tried, @btc-vision/uwebsockets.js 20.57.0, installs from npm with its
// binaries but they need glibc 2.38 (Debian 12 has 2.36), so it is not in
// package.json; where it is installed and loads, it is measured too.
async function uwsLoads() {
  try {
    await import('@btc-vision/uwebsockets.js');
    return '';
  } catch (e) {
    const why = String(e.message).split('\n').filter(Boolean).pop();
    return `@btc-vision/uwebsockets.js does not load here (${why.slice(0, 160)})`;
  }
}

const f2 = (x) => x.toFixed(2), f3 = (x) => x.toFixed(3);
function row(name, r, ws) {
  const lost = r.expected - r.delivered;
  const ratio = ws ? `  ${f2(ws.cpu_ms_per_1000 / r.cpu_ms_per_1000)}x less CPU than ws` +
    ` (user ${f2(ws.user_ms_per_1000 / r.user_ms_per_1000)}x, system ` +
    `${f2(ws.sys_ms_per_1000 / r.sys_ms_per_1000)}x), p50 ${f2(r.last_p50_ms / ws.last_p50_ms)}x ws's` : '';
  console.log(`  ${name.padEnd(9)} last p50 ${f2(r.last_p50_ms).padStart(8)} ms  p99 ` +
    `${f2(r.last_p99_ms).padStart(8)} ms  CPU ${f3(r.cpu_ms_per_1000).padStart(7)} ms ` +
    `per 1,000 deliveries (user ${f3(r.user_ms_per_1000)}, system ${f3(r.sys_ms_per_1000)})  ` +
    `(${r.delivered}/${r.expected}` +
    `${lost ? `, ${lost} MISSING` : ''}${r.repeats ? `, ${r.repeats} repeated` : ''})${ratio}`);
  if (r.syscalls_error) console.log(`    system calls: ${r.syscalls_error}`);
  else if (r.syscalls) {
    const per = (c) => (r.delivered ? r.syscalls[c] / r.delivered : 0);
    const named = SYSCALLS.filter((c) => r.syscalls[c]).map((c) => `${c} ${f3(per(c))}`);
    console.log(`    system calls per delivery: ${f3(per('all'))} in all; ${named.join(', ')}`);
  }
}

async function main() {
  if (process.argv.includes('--help')) {
    console.log(readFileSync(self, 'utf8').split('\n').filter((l) => l.startsWith('//'))
      .map((l) => l.slice(3)).join('\n'));
    return;
  }
  let pb = arg('patchbay', join(here, '../build/release/cli/patchbay'));
  const lg = arg('loadgen', join(here, '../build/release/bench/loadgen'));
  for (const [what, path] of [['--patchbay', pb], ['--loadgen', lg]])
    if (!existsSync(path))
      throw new Error(`${what} ${path} does not exist: build it with scripts/setup.sh release`);
  const sizes = arg('clients', '1000,10000').split(',').map(Number);
  const evals = Number(arg('evals', 20)), gap = Number(arg('gap-ms', 50));
  const only = arg('only', '');
  const trace = process.argv.includes('--syscalls');
  const other = arg('other-patchbay', '');
  if (other && !existsSync(other)) throw new Error(`--other-patchbay ${other} does not exist`);
  const hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim());
  const need = Math.max(...sizes) + 64;
  if (hard < need)
    throw new Error(`${need} file descriptors per process are needed; the hard limit is ${hard} ` +
                    '(raise it, e.g. ulimit -Hn, or in /etc/security/limits.conf)');
  const uwsWhy = await uwsLoads();
  console.log(`# fan-out: ${pb}; load average ${loadavg().map(f2).join(' ')}`);
  if (uwsWhy) console.log(`# uWebSockets.js skipped: ${uwsWhy}`);
  const edges = Number(arg('edges', 0));
  for (const n of sizes) {
    if (edges) {
      console.log(`${n} clients, ${evals} evals: one relay, then a signer and ${edges} edges on Redis`);
      const one = await runPatchbay(pb, lg, n, evals, gap, trace);
      const many = await runEdges(pb, lg, n, evals, gap, edges, trace);
      row('1 relay', one);
      row(`${edges} edges`, many);
      console.log(`  ${edges} edges: CPU per 1,000 deliveries: signer ${many.signer_per_1000.toFixed(3)} ms, ` +
        `edges ${many.edges_per_1000.toFixed(3)} ms in all, Redis ${many.redis_per_1000.toFixed(3)} ms ` +
        `(${many.redis_ms.toFixed(0)} ms over the run); last p50 ${f2(many.last_p50_ms / one.last_p50_ms)}x ` +
        `and p99 ${f2(many.last_p99_ms / one.last_p99_ms)}x one relay's`);
      console.log(`  (load average now ${loadavg().map(f2).join(' ')})`);
      continue;
    }
    console.log(`${n} clients, ${evals} evals:`);
    const r = {};
    if (!only || only === 'patchbay') r.pb = await runPatchbay(pb, lg, n, evals, gap, trace);
    if (other && (!only || only === 'patchbay'))
      r.other = await runPatchbay(other, lg, n, evals, gap, trace);
    const bytes = r.pb ? r.pb.frame_bytes : 1200;
    if (!only || only === 'ws') r.ws = await runBaseline('--serve-ws', lg, n, evals, gap, bytes, trace);
    if ((!only || only === 'uws') && !uwsWhy)
      r.uws = await runBaseline('--serve-uws', lg, n, evals, gap, bytes, trace);
    if (r.pb) row('patchbay', r.pb, r.ws);
    if (r.other) {
      row('other', r.other, r.ws);
      console.log(`    other / patchbay: CPU ${f2(r.other.cpu_ms_per_1000 / r.pb.cpu_ms_per_1000)}x ` +
        `(user ${f2(r.other.user_ms_per_1000 / r.pb.user_ms_per_1000)}x, system ` +
        `${f2(r.other.sys_ms_per_1000 / r.pb.sys_ms_per_1000)}x), last p50 ` +
        `${f2(r.other.last_p50_ms / r.pb.last_p50_ms)}x`);
    }
    if (r.ws) row('ws', r.ws);
    if (r.uws) row('uWS.js', r.uws, r.ws);
    console.log(`  (${bytes}-byte frames; load average now ${loadavg().map(f2).join(' ')})`);
  }
}

if (process.argv.includes('--serve-ws')) serveWs();
else if (process.argv.includes('--serve-uws')) serveUws();
else main().catch((e) => { console.error(`fanout: ${e.message}`); process.exit(1); });
