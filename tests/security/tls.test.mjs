// tls.test.mjs — TLS end to end (issue 15). The test makes a throwaway CA
// and a certificate for 127.0.0.1 with openssl; `patchbay serve
// --tls-cert --tls-key` serves https and wss on its one port; `patchbay
// token` then prints https links by itself; `patchbay eval --ca` and a node
// runtime with `ca` (the CLI's --ca) trust the private CA, and refuse the
// relay without it; a Chromium runtime page loads over https and runs
// the patch over wss.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Relay, joinRoom, until, CLI, frame, decode, statementSeq } from '../runtime/harness.mjs';
import { launch } from '../web/harness.mjs';

const H = '#include <patchbay.h>\n';
let relay, browser, pki;

// A CA and a server certificate it signed, for 127.0.0.1 and localhost.
function makePki(dir) {
  const f = (n) => join(dir, n);
  const ssl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
      '-subj', '/CN=patchbay test CA');
  ssl('req', ...ec, '-keyout', f('relay.key'), '-out', f('relay.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl('x509', '-req', '-in', f('relay.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
      '-CAcreateserial', '-out', f('relay.pem'), '-days', '2', '-extfile', f('san.ext'));
  return { ca: f('ca.pem'), cert: f('relay.pem'), key: f('relay.key') };
}

before(async () => {
  relay = new Relay();
  pki = makePki(relay.dir);
  relay.args.push('--tls-cert', pki.cert, '--tls-key', pki.key);
  await relay.start();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

// `patchbay token` with no --url: the address serve last listened on.
function link(room, role, name) {
  const out = execFileSync(CLI, ['token', '--data', relay.data, '--room', room, '--role', role, '--name', name],
                           { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return out.match(/runtime page: +(\S+)/)[1];
}

// `patchbay eval` over wss, trusting the test's CA with --ca (not blocking
// this process: the node runtime under test lives in it).
async function evalTls(room, source, runtimes) {
  const f = join(relay.dir, `e${Date.now()}.c`);
  writeFileSync(f, source);
  const token = execFileSync(CLI, ['token', '--data', relay.data, '--room', room, '--role', 'editor',
                                   '--name', 'ed', '-q']).toString().trim();
  const { stdout: out } = await promisify(execFile)(CLI, ['eval', '--url', `wss://127.0.0.1:${relay.port}`, '--ca',
                                                          pki.ca, '--room', room, '--token', token, '--runtimes',
                                                          String(runtimes), '--wait-ms', '20000', f]);
  const m = /accepted as seq (\d+)/.exec(out);
  assert.ok(m, out);
  return Number(m[1]);
}

test('serve --tls-cert: token prints https links, and the relay log says https', () => {
  assert.match(relay.log, /listening on https:\/\/127\.0\.0\.1:\d+/);
  assert.match(link('tls', 'runtime', 'x'), new RegExp(`^https://127\\.0\\.0\\.1:${relay.port}/runtime\\.html#`));
});

test('eval without the private CA is refused by the TLS handshake, naming the relay', () => {
  const f = join(relay.dir, 'plain.c');
  writeFileSync(f, `${H}double ggg(double v) { return v; }\n`);
  const token = execFileSync(CLI, ['token', '--data', relay.data, '--room', 'tls', '--role', 'editor',
                                   '--name', 'ed', '-q']).toString().trim();
  let err = null;
  try {
    execFileSync(CLI, ['eval', '--url', `wss://127.0.0.1:${relay.port}`, '--token', token, f],
                 { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATCHBAY_CA: '' } });
  } catch (e) { err = e; }
  assert.ok(err, 'refused');
  assert.match(String(err.stderr), /127\.0\.0\.1/);
});

test('node runtime over wss with the private CA commits a patch; without it, it does not connect', async () => {
  const l = link('tls', 'runtime', 'node');
  const untrusting = await joinRoom(l, { name: 'untrusting', backoffMs: 100, ca: '' });
  const rt = await joinRoom(l, { name: 'node', backoffMs: 100, ca: pki.ca });
  try {
    const details = [];
    untrusting.on('state', (s) => details.push(s.detail || ''));
    await until(() => rt.state === 'live', 'the node runtime joined over wss');
    const seq = await evalTls('tls', `${H}double ggg(double v) { return v + 49; }\n`, 1);
    await until(() => rt.committedSeq === seq, 'committed');
    assert.equal(rt.call('ggg', 10), 59);
    assert.notEqual(untrusting.state, 'live');
    assert.equal(untrusting.committedSeq, 0);
  } finally {
    rt.close();
    untrusting.close();
  }
});

// WebSockets ride HTTP/1.1 only: lws 4.1 carries a WebSocket in an HTTP/2
// stream (RFC 8441, as Firefox does) but then a frame larger than the
// stream's flow-control window never leaves (third reader's finding 6).
// A client offering h2 first is given http/1.1. Failed before: 'h2'.
test('a TLS client offering h2 and http/1.1 gets http/1.1', async () => {
  const sock = tlsConnect({ host: '127.0.0.1', port: relay.port, ca: readFileSync(pki.ca),
                            ALPNProtocols: ['h2', 'http/1.1'] });
  try {
    await new Promise((resolve, reject) => { sock.once('secureConnect', resolve); sock.once('error', reject); });
    assert.equal(sock.alpnProtocol, 'http/1.1');
  } finally {
    sock.destroy();
  }
});

test('Chromium runtime page over https and wss runs the patch', async () => {
  browser = await launch();
  // the browser is told to accept the test's certificate, as a user would
  // install the private CA
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 480, height: 320 } }))
    .newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(link('page', 'runtime', 'page'));
  await page.waitForFunction(() => window.patchbay.conn === 'live', null, { timeout: 30000 });
  const seq = await evalTls('page', `${H}double ggg(double v) { return v + 50; }\n`, 1);
  await page.waitForFunction((s) => window.patchbay.stats.committedSeq === s, seq, { timeout: 30000, polling: 50 });
  assert.deepEqual(errors, []);
});

// How the relay writes (docs/ARCHITECTURE.md): a frame goes out at once
// when nothing of its session waits; over TLS too, SSL_write may take
// part of it and lws keep the rest. A wss runtime stops reading while
// ~4.8 MB of patches are sent to it; when it reads again, every patch is
// there, whole (each decodes, TLS and WebSocket framing intact), in order.
test('a wss runtime that stops reading gets every patch whole and in order when it reads again', async () => {
  const token = (role, name) => execFileSync(CLI, ['token', '--data', relay.data, '--room', 'burst', '--role', role,
                                                   '--name', name, '-q']).toString().trim();
  const open = (role, name) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${relay.port}/`, ['patchbay'], { ca: readFileSync(pki.ca) });
    ws.binaryType = 'arraybuffer';
    ws.frames = [];
    ws.on('message', (d) => {
      const f = decode(new Uint8Array(d));
      ws.frames.push(f);
      if (f.t === 'welcome') resolve(ws);
      if (f.t === 'error' && f.fatal) reject(new Error(f.message));
    });
    ws.on('open', () => ws.send(frame('hello', { token: token(role, name) })));
    ws.on('error', reject);
  });
  const ed = await open('editor', 'ed');
  const rt = await open('runtime', 'slow');
  try {
    rt._socket.pause(); // nothing read from here on
    const pad = ' '.repeat(240 * 1024), sources = [], seqs = [];
    for (let i = 1; i <= 20; i++) {
      sources.push(`${H}double b${i}(double x) { return x + ${i}; }\n/*${pad}*/\n`);
      ed.send(frame('eval', { req: i, lang: 'c', name: `b${i}.c`, source: sources[i - 1] }));
      await until(() => ed.frames.some((f) => f.t === 'diag' && f.req === i), `eval ${i} answered`, 30000);
      const d = ed.frames.find((f) => f.t === 'diag' && f.req === i);
      assert.ok(d.ok, `eval ${i} accepted`);
      seqs.push(d.seq);
      await new Promise((r) => setTimeout(r, 120)); // (10 evals a second per name)
    }
    assert.equal(rt.frames.filter((f) => f.t === 'patch').length, 0, 'nothing read while paused');
    rt._socket.resume();
    const patches = () => rt.frames.filter((f) => f.t === 'patch');
    await until(() => patches().length >= 20, 'the 20 patches read', 60000);
    assert.deepEqual(patches().map((p) => statementSeq(p.stmt)), seqs);
    assert.deepEqual(patches().map((p) => p.source), sources);
    assert.equal(rt.readyState, WebSocket.OPEN);
  } finally {
    ed.close();
    rt.close();
  }
});
