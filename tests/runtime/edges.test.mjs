// edges.test.mjs — real node runtimes on edge relays (issue 19;
// docs/ARCHITECTURE.md § More than one relay): a redis-server on a free
// loopback port, a signer (`serve --redis`) and two edges (`serve --edge
// --redis`). The runtimes' join link names both edges (&relays=), so when
// the edge they use dies (kill -9) they move to the other by themselves
// and catch up there: every patch once, in order, verified by the runtime
// against the signer's key, evals sent through an edge included.
// tests/relay/test_relay_edges_faults.c does the same with 100 runtimes of the
// harness, and the other faults.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Relay, CLI, joinRoom, until } from './harness.mjs';

const H = '#include <patchbay.h>\n';
const ROOM = 'hall';
const N = 10;
let redis;
const relays = [];
const runtimes = [];

after(async () => {
  for (const r of runtimes) r.close();
  for (const r of relays) await r.stop().catch(() => {});
  redis?.proc.kill('SIGKILL');
});

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// redis-server on a free port, nothing saved; resolves once it listens.
async function startRedis() {
  const port = await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
                                   '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('redis-server did not start')), 10000);
    p.stdout.on('data', (d) => { if (/Ready to accept connections/.test(d)) { clearTimeout(t); resolve(); } });
    p.on('exit', (c) => { clearTimeout(t); reject(new Error(`redis-server exited ${c}`)); });
  });
  return { proc: p, url: `redis://127.0.0.1:${port}` };
}

// An edge: its data folder holds the signer's token.key and relay.pub.
function edge(signer, url) {
  const e = new Relay({ args: ['--edge', '--redis', url] });
  mkdirSync(e.data, { mode: 0o700 });
  for (const f of ['token.key', 'relay.pub']) copyFileSync(join(signer.data, f), join(e.data, f));
  return e;
}

// `patchbay eval` through a relay (an edge) with the signer's token.
async function evalVia(signer, port, source) {
  const f = join(signer.dir, `e${Date.now()}${Math.random().toString(36).slice(2)}.c`);
  writeFileSync(f, source);
  const out = execFileSync(CLI, ['eval', '--url', `ws://127.0.0.1:${port}`, '--room', ROOM,
                                 '--token', signer.token(ROOM, 'editor', 'ed'), '--wait-ms', '0', f])
    .toString();
  const m = /accepted as seq (\d+)/.exec(out);
  if (!m) throw new Error(`eval not accepted:\n${out}`);
  return Number(m[1]);
}

test('kill -9 an edge: runtimes on a link naming both edges move to the other, nothing missed or repeated', async () => {
  redis = await startRedis();
  const signer = await new Relay({ args: ['--redis', redis.url] }).start();
  relays.push(signer);
  const a = await edge(signer, redis.url).start();
  const b = await edge(signer, redis.url).start();
  relays.push(a, b);
  const link = (name) => execFileSync(CLI, [
    'token', '--data', signer.data, '--room', ROOM, '--role', 'runtime', '--name', name,
    '--url', `http://127.0.0.1:${a.port},http://127.0.0.1:${b.port}`,
  ]).toString().match(/runtime page: +(\S+)/)[1];
  for (let i = 0; i < N; i++) {
    const rt = await joinRoom(link(`rt${i}`), { name: `rt${i}`, backoffMs: 100, maxBackoffMs: 400 });
    rt.commits = [];
    rt.rejects = [];
    rt.on('commit', (c) => rt.commits.push(c));
    rt.on('reject', (r) => rt.rejects.push(r));
    runtimes.push(rt);
  }
  await until(() => runtimes.every((r) => r.state === 'live'), 'every runtime joined');
  for (const r of runtimes) assert.equal(r.conn.url, `ws://127.0.0.1:${a.port}`);
  const s1 = await evalVia(signer, b.port, H + 'double ggg(double v) { return v + 48; }\n');
  await until(() => runtimes.every((r) => r.committedSeq >= s1), `seq ${s1} everywhere`);

  await a.kill();
  // accepted while they move: it comes in their catch-up or live
  const s2 = await evalVia(signer, b.port, H + 'double ggg(double v) { return v + 49; }\n');
  await until(() => runtimes.every((r) => r.committedSeq >= s2), `seq ${s2} everywhere`, 60000);
  const s3 = await evalVia(signer, b.port, H + 'double ggg(double v) { return v + 50; }\n');
  await until(() => runtimes.every((r) => r.committedSeq >= s3), `seq ${s3} live everywhere`);
  for (const r of runtimes) {
    assert.equal(r.conn.url, `ws://127.0.0.1:${b.port}`, `${r.o.name} on the other edge`);
    assert.equal(r.call('ggg', 10), 60, r.o.name);
    assert.deepEqual(r.commits.map((c) => c.seq), [s1, s2, s3], `${r.o.name}: every seq once, in order`);
    assert.deepEqual(r.rejects, [], `${r.o.name} refused nothing`);
  }
});
