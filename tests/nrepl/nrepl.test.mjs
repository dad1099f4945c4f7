// nrepl.test.mjs — `patchbay nrepl` op by op with a small bencode client
// (client.mjs): a real relay, two node runtimes on real sockets, and the
// nREPL server as the room's editor. Every op (clone, close, describe,
// eval, load-file, interrupt, ls-sessions, completions, complete, lookup,
// info, eldoc), an unknown op, malformed bencode and an oversized message
// (each refused while the server goes on serving), and 50 clients at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Relay, joinRoom, until, frame, decode, CLI } from '../runtime/harness.mjs';
import { NreplClient, combine } from './client.mjs';

const ROOM = 'repl';
let relay, server, port, portFile;
const runtimes = [];
const live = new Set();
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL'); } catch { /* gone */ } });

// Starts `patchbay nrepl` for the room; resolves with its port.
async function startNrepl(args = []) {
  const p = spawn(CLI, ['nrepl', '--url', `ws://127.0.0.1:${relay.port}`,
                        '--token', relay.token(ROOM, 'editor', 'nrepl'), ...args],
                  { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(p);
  p.log = '';
  p.stderr.on('data', (d) => { p.log += d; });
  p.exited = new Promise((r) => p.on('exit', (code) => { live.delete(p); r(code); }));
  const found = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`no port:\n${out}${p.log}`)), 20000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = /started on port (\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    p.on('exit', (c) => { clearTimeout(t); reject(new Error(`nrepl exited ${c}:\n${out}${p.log}`)); });
  });
  p.port = found;
  return p;
}

before(async () => {
  relay = await new Relay().start();
  for (const name of ['rt1', 'rt2']) {
    const rt = await joinRoom(relay.link(ROOM, name), { name });
    await until(() => rt.state === 'live', `${name} live`);
    runtimes.push(rt);
  }
  portFile = join(relay.dir, 'nrepl-port');
  server = await startNrepl(['--port-file', portFile]);
  port = server.port;
});

after(async () => {
  for (const rt of runtimes) rt.close();
  if (server) { server.kill('SIGTERM'); await server.exited; }
  await relay?.stop();
});

const connect = () => NreplClient.connect(port);
async function session(c) {
  const r = combine(await c.request({ op: 'clone' }));
  assert.ok(r['new-session'], JSON.stringify(r));
  return r['new-session'];
}

test('the port file names the port, and describe lists the ops and versions', async () => {
  assert.equal(readFileSync(portFile, 'utf8'), String(port));
  const c = await connect();
  const r = combine(await c.request({ op: 'describe' }));
  for (const op of ['clone', 'close', 'describe', 'eval', 'load-file', 'interrupt', 'ls-sessions',
                    'completions', 'complete', 'lookup', 'info', 'eldoc'])
    assert.ok(op in r.ops, `describe lists ${op}`);
  assert.equal(r.versions.nrepl['version-string'], '1.0.0');
  assert.equal(r.aux['current-ns'], 'user');
  assert.ok(r.status.has('done'));
  c.close();
});

test('clone, ls-sessions and close; a closed session is unknown', async () => {
  const c = await connect();
  const s1 = await session(c), s2 = await session(c);
  assert.notEqual(s1, s2);
  let r = combine(await c.request({ op: 'ls-sessions' }));
  assert.ok(r.sessions.includes(s1) && r.sessions.includes(s2));
  r = combine(await c.request({ op: 'close', session: s1 }));
  assert.ok(r.status.has('session-closed'));
  r = combine(await c.request({ op: 'ls-sessions' }));
  assert.ok(!r.sessions.includes(s1) && r.sessions.includes(s2));
  r = combine(await c.request({ op: 'eval', session: s1, code: '1' }));
  assert.ok(r.status.has('unknown-session') && r.status.has('error'), JSON.stringify([...r.status]));
  c.close();
});

test('eval: a definition gives its var, an expression the value of every runtime', async () => {
  const c = await connect();
  const s = await session(c);
  let r = combine(await c.request({ op: 'eval', session: s, code: '(defn ggg [v] (+ v 48))' }));
  assert.deepEqual(r.value, ["#'user/ggg"]);
  r = combine(await c.request({ op: 'eval', session: s, code: '(ggg 10)' }));
  assert.deepEqual(r.value, ['58']);
  assert.equal(r['patchbay/values'].length, 2);
  assert.deepEqual(r['patchbay/values'].map((v) => v.value), ['58', '58']);
  assert.deepEqual(r['patchbay/values'].map((v) => v.runtime).sort(), ['rt1', 'rt2']);
  await c.request({ op: 'eval', session: s, code: '(defn ggg [v] (+ v 49))' });
  r = combine(await c.request({ op: 'eval', session: s, code: '(ggg 10)' }));
  assert.deepEqual(r.value, ['59']);
  // what it printed comes back as out, once
  r = combine(await c.request({ op: 'eval', session: s, code: '(println "hi" (ggg 1))' }));
  assert.equal(r.out, 'hi 50\n');
  assert.deepEqual(r.value, ['nil']);
  // several forms: the definitions as one patch, then the expression
  r = combine(await c.request({ op: 'eval', session: s,
                                code: '(defn a2 [x] (* x 2))\n(defn b2 [x] (+ (a2 x) 1))\n(b2 5)' }));
  assert.deepEqual(r.value, ["#'user/a2", "#'user/b2", '11']);
  c.close();
});

test('runtimes that disagree: the first value, every one under patchbay/values, and a note on err', async () => {
  const c = await connect();
  const s = await session(c);
  await c.request({ op: 'eval', session: s, code: '(defonce n (atom 0))\n(defn next-n [] (swap! n inc))' });
  assert.deepEqual(combine(await c.request({ op: 'eval', session: s, code: '(next-n)' })).value, ['1']);
  // a runtime that joins now starts its n at 0
  const late = await joinRoom(relay.link(ROOM, 'late'), { name: 'late' });
  await until(() => late.state === 'live' && late.committedSeq === runtimes[0].committedSeq, 'late caught up');
  const r = combine(await c.request({ op: 'eval', session: s, code: '(next-n)' }));
  const values = r['patchbay/values'].map((v) => `${v.runtime}=${v.value}`).sort();
  assert.deepEqual(values, ['late=1', 'rt1=2', 'rt2=2']);
  assert.ok(r.value[0] === '1' || r.value[0] === '2');
  assert.match(r.err, /^; the runtimes differ: (2 on 2 runtimes, 1 on 1|1 on 1 runtime, 2 on 2)\n$/);
  late.close();
  c.close();
});

test('a compile error is an nREPL error at the file\'s line and column', async () => {
  const c = await connect();
  const s = await session(c);
  const r = combine(await c.request({ op: 'eval', session: s, file: 'src/demo.cljc', line: 10, column: 3,
                                      code: '(defn f [x]\n  (+ x zz))' }));
  assert.ok(r.status.has('eval-error') && r.status.has('done'), JSON.stringify([...r.status]));
  assert.equal(r.ex, 'patchbay.CompileError');
  assert.match(r.err, /^src\/demo\.cljc:11:8: error: unknown symbol 'zz'/);
  // an unclosed form is found before anything is sent
  const u = combine(await c.request({ op: 'eval', session: s, file: 'x.cljc', line: 2, code: '(ggg 10' }));
  assert.match(u.err, /^x\.cljc:2:1: error: '\(' is never closed/);
  // ns sets the session's namespace, and the values say it
  const n = combine(await c.request({ op: 'eval', session: s, code: '(ns studio.main)\n(ggg 1)' }));
  assert.deepEqual(n.value, ['nil', '50']);
  assert.equal(n.ns, 'studio.main');
  c.close();
});

test('load-file evaluates a file\'s forms in order; a trap is an eval-error', async () => {
  const c = await connect();
  const s = await session(c);
  const file = ';; a file\n(ns demo.core)\n(defonce hits (atom 0))\n(defn hit [] (swap! hits inc))\n(hit)\n';
  let r = combine(await c.request({ op: 'load-file', session: s, file, 'file-path': 'demo/core.cljc' }));
  assert.deepEqual(r.value, ['nil', "#'demo.core/hits", "#'demo.core/hit", '1']);
  r = combine(await c.request({ op: 'eval', session: s, code: '(reset! hits 41)' }));
  assert.deepEqual(r.value, ['41']);
  await c.request({ op: 'load-file', session: s, file: '#include <patchbay.h>\nint boom(int x) { return 10 / x; }\n',
                    'file-path': 'boom.c' });
  r = combine(await c.request({ op: 'eval', session: s, code: '(boom 0)' }));
  assert.ok(r.status.has('eval-error'), JSON.stringify([...r.status]));
  assert.equal(r.ex, 'patchbay.Trap');
  assert.match(r.err, /^trap in 'boom': RuntimeError: divide by zero \(the expression changed nothing\)\n$/);
  c.close();
});

test('completions, complete, lookup, info and eldoc come from the room\'s history', async () => {
  const c = await connect();
  const s = await session(c);
  await c.request({ op: 'eval', session: s, code: '(defn scale? "Is v big?" [v] (> v 100))' });
  let r = combine(await c.request({ op: 'completions', session: s, prefix: 'sca' }));
  assert.deepEqual(r.completions.map((x) => [x.candidate, x.type]), [['scale?', 'function']]);
  r = combine(await c.request({ op: 'complete', session: s, prefix: 'gg' }));
  assert.deepEqual(r.completions.map((x) => x.candidate), ['ggg']);
  r = combine(await c.request({ op: 'lookup', session: s, sym: 'scale?' }));
  assert.equal(r.info.arglists, '([v])');
  assert.match(r.info.doc, /^Is v big\?\n\ndefined by nrepl in patch \d+ \(lisp, id\)$/);
  assert.equal(r.info['patchbay/author'], 'nrepl');
  r = combine(await c.request({ op: 'info', session: s, sym: 'user/ggg' }));
  assert.equal(r['arglists-str'], '([v])');
  assert.match(r['patchbay/source'], /^\(defn ggg \[v\] \(\+ v 49\)\)$/);
  r = combine(await c.request({ op: 'eldoc', session: s, sym: 'ggg' }));
  assert.deepEqual(r.eldoc, [['v']]);
  r = combine(await c.request({ op: 'info', session: s, sym: 'nothing-here' }));
  assert.ok(r.status.has('no-info'));
  r = combine(await c.request({ op: 'eldoc', session: s, sym: 'nothing-here' }));
  assert.ok(r.status.has('no-eldoc'));
  c.close();
});

test('an unknown op is status unknown-op', async () => {
  const c = await connect();
  const r = combine(await c.request({ op: 'stacktrace' }));
  assert.ok(r.status.has('unknown-op') && r.status.has('error') && r.status.has('done'));
  c.close();
});

test('interrupt: an eval waiting for a runtime that never answers, and an idle session', async () => {
  // a runtime that joins and never acks: the eval waits for it
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${ROOM}`, 'patchbay');
  await new Promise((resolve) => {
    ws.onopen = () => ws.send(frame('hello', { token: relay.token(ROOM, 'runtime', 'mute') }));
    ws.onmessage = (ev) => { if (decode(new Uint8Array(ev.data)).t === 'welcome') resolve(); };
  });
  const c = await connect();
  const s = await session(c);
  const ran = runtimes.map((rt) => new Promise((r) => { const off = rt.on('expr', () => { off(); r(); }); }));
  c.send({ op: 'eval', session: s, code: '(ggg 2)', id: 'long' });
  await Promise.all(ran); // rt1 and rt2 answered; mute never will
  assert.ok(!c.messages.some((m) => m.id === 'long' && (m.status || []).includes('done')), 'still waiting for mute');
  const r = combine(await c.request({ op: 'interrupt', session: s, 'interrupt-id': 'long' }));
  assert.ok(r.status.has('done') && !r.status.has('session-idle'));
  await c.until((m) => m.some((x) => x.id === 'long' && (x.status || []).includes('interrupted')), 'interrupted');
  const idle = combine(await c.request({ op: 'interrupt', session: s }));
  assert.ok(idle.status.has('session-idle'));
  ws.close();
  c.close();
});

test('malformed bencode and an oversized message are refused; the server keeps serving', async () => {
  const bad = await connect();
  bad.sendRaw(Buffer.from('d2:opx4:evale'));
  await bad.until((m) => m.some((x) => /bencode: an unexpected byte 0x78 at byte 5/.test(x.err || '')), 'the error');
  await bad.until(() => bad.closed, 'closed');
  const big = await connect();
  big.sendRaw(Buffer.from('d4:code2000000:'));
  await big.until((m) => m.some((x) => /longer than the limit/.test(x.err || '')), 'the size error');
  await big.until(() => big.closed, 'closed');
  const deep = await connect();
  deep.sendRaw(Buffer.from('l'.repeat(40)));
  await deep.until((m) => m.some((x) => /nesting deeper than the limit/.test(x.err || '')), 'the depth error');
  const good = await connect();
  const r = combine(await good.request({ op: 'describe' }));
  assert.ok(r.status.has('done'));
  good.close();
  deep.close();
});

test('a client that goes away in the middle of an eval leaves the room and the others unharmed', async () => {
  const gone = await connect();
  gone.send({ op: 'eval', code: '(ggg 3)', id: 'orphan' });
  gone.close();
  const c = await connect();
  assert.deepEqual(combine(await c.request({ op: 'eval', code: '(ggg 4)' })).value, ['53']);
  c.close();
});

test('50 clients at once each get their own value', async () => {
  const clients = await Promise.all(Array.from({ length: 50 }, () => connect()));
  const results = await Promise.all(clients.map(async (c, i) => {
    const s = await session(c);
    return combine(await c.request({ op: 'eval', session: s, code: `(+ (ggg 0) ${i})` }, 120000));
  }));
  results.forEach((r, i) => assert.deepEqual(r.value, [String(49 + i)], JSON.stringify(r)));
  for (const c of clients) c.close();
  // and the room is as it was
  const c = await connect();
  assert.deepEqual(combine(await c.request({ op: 'eval', code: '(ggg 10)' })).value, ['59']);
  c.close();
});

test('SIGTERM stops the server and removes its port file', async () => {
  const other = await startNrepl(['--port-file', join(relay.dir, 'second-port')]);
  assert.ok(existsSync(join(relay.dir, 'second-port')));
  other.kill('SIGTERM');
  assert.equal(await other.exited, 0);
  assert.ok(!existsSync(join(relay.dir, 'second-port')));
});
