// strangers.test.mjs — issue 22, item 5: someone with no token, or a web
// page on another site. Before: no cap on connections (total or per
// address), a client before hello could buffer up to 2 MiB, an upgrade
// without the `patchbay` sub-protocol bound to the HTTP protocol and stayed
// open forever, and any page could open sockets to a relay on 127.0.0.1.
// Hostile clients connect from 127.0.0.x (x > 1): the relay's own address,
// 127.0.0.1, counts only towards the total (a reverse proxy in front of it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Relay, frame, decode, until, PB } from '../../runtime/harness.mjs';

let relay;
before(async () => {
  relay = await new Relay({ verbose: true,
                            args: ['--max-per-ip', '8', '--allow-origin', 'https://jam.example.org'] }).start();
});
after(async () => { await relay?.stop(); });

// Opens a socket; resolves with how it went: 'open', or 'refused' if the
// relay hung up or refused the upgrade, within ms.
function attempt(url, { protocol = 'patchbay', from, origin, headers, ms = 3000 } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocol ? [protocol] : [], { localAddress: from, origin, headers });
    const done = (how) => { clearTimeout(t); resolve({ how, ws }); };
    const t = setTimeout(() => done('timeout'), ms);
    ws.on('open', () => done('open'));
    ws.on('error', () => done('refused'));
    ws.on('close', () => done('refused'));
  });
}

// Joins as an editor over a raw socket: resolves with the welcome or the
// error frame.
function hello(ws, room = 'calm') {
  return new Promise((resolve) => {
    ws.binaryType = 'arraybuffer';
    ws.on('message', (d) => {
      const f = decode(new Uint8Array(d));
      if (f.t === 'welcome' || f.t === 'error') resolve(f);
    });
    ws.send(frame('hello', { token: relay.token(room, 'editor', 'ann') }));
  });
}

const url = () => `ws://127.0.0.1:${relay.port}/`;

test('an upgrade without the patchbay sub-protocol is refused, not left open', async () => {
  const { how, ws } = await attempt(url(), { protocol: null });
  ws.terminate();
  assert.equal(how, 'refused');
});

test('a page of another origin cannot open a socket; the relay\'s own pages, --allow-origin and non-browsers can', async () => {
  const own = `http://127.0.0.1:${relay.port}`;
  for (const origin of ['http://evil.example', `http://127.0.0.1:${relay.port + 1}`, 'null']) {
    const { how, ws } = await attempt(url(), { origin });
    ws.terminate();
    assert.equal(how, 'refused', origin);
  }
  // DNS rebinding: evil.example resolved to 127.0.0.1, so the page's own
  // host is the socket's Host; a name is trusted only when it is this
  // machine's
  const rebound = await attempt(url(), { origin: `http://evil.example:${relay.port}`,
                                         headers: { Host: `evil.example:${relay.port}` } });
  rebound.ws.terminate();
  assert.equal(rebound.how, 'refused');
  for (const origin of [own, `http://localhost:${relay.port}`, 'https://jam.example.org', undefined]) {
    const host = origin?.startsWith('http://localhost') ? { Host: `localhost:${relay.port}` } : undefined;
    const { how, ws } = await attempt(url(), { origin, headers: host });
    assert.equal(how, 'open', String(origin));
    assert.equal((await hello(ws)).t, 'welcome', String(origin));
    ws.close();
  }
  assert.match(relay.log, /refused a WebSocket from 127\.0\.0\.1 opened by a page of origin "http:\/\/evil\.example"/);
});

test('a client may send only a hello\'s worth of bytes before its hello', async () => {
  const { how, ws } = await attempt(url(), { from: '127.0.0.2' });
  assert.equal(how, 'open');
  const closed = new Promise((r) => ws.on('close', (code, reason) => r(String(reason))));
  const errors = [];
  ws.on('message', (d) => errors.push(decode(new Uint8Array(d))));
  // the start of a message that never ends: 12 KiB of it, then nothing
  // (more input would be unread when the relay closes, which resets the
  // socket and can lose its error frame)
  const t0 = Date.now();
  for (let i = 0; i < 3; i++) ws.send(new Uint8Array(4096), { fin: false });
  await closed;
  assert.ok(Date.now() - t0 < 4000, 'closed before the hello timeout (5 s)');
  const err = errors.find((f) => f.t === 'error');
  assert.equal(err?.code, PB.PB_ERR_TOO_BIG);
  assert.match(err.message, /more than 8192 bytes before hello/);
});

test('connections are capped per address, not for the relay\'s own address', async () => {
  const held = [];
  for (let i = 0; i < 8; i++) {
    const a = await attempt(url(), { from: '127.0.0.3' });
    assert.equal(a.how, 'open', `connection ${i + 1} of 8`);
    held.push(a.ws);
  }
  const ninth = await attempt(url(), { from: '127.0.0.3' });
  assert.equal(ninth.how, 'refused', 'the 9th from one address');
  // others are served: another address, and the relay's own
  for (const from of ['127.0.0.4', '127.0.0.1']) {
    const a = await attempt(url(), { from });
    assert.equal(a.how, 'open', from);
    assert.equal((await hello(a.ws)).t, 'welcome');
    a.ws.close();
  }
  held.pop().close();
  await until(async () => (await attempt(url(), { from: '127.0.0.3' }).then((a) => { a.ws.terminate(); return a.how; })) === 'open',
              'a slot free again after one closed', 5000);
  for (const ws of held) ws.terminate();
  assert.match(relay.log, /refusing connections from 127\.0\.0\.3: this address has --max-per-ip connections/);
});

test('an address that opens connections too fast is refused for a while', async () => {
  let refused = 0;
  for (let i = 0; i < 160; i++) {
    const a = await attempt(url(), { from: '127.0.0.5', ms: 1000 });
    if (a.how !== 'open') refused++;
    a.ws.terminate();
  }
  // 20 a second with a burst of 100: most of the 160 in a few seconds get in
  assert.ok(refused > 0, 'some refused');
  assert.ok(refused < 160, 'not all refused');
});

// Issue 22, item 9: every page and file the relay serves (and its 404)
// carries the security headers (failed before: none of them).
test('every response carries the security headers: CSP with frame-ancestors, nosniff, no referrer', async () => {
  for (const path of ['/', '/editor.html', '/runtime.html', '/editor.js', '/style.css', '/no-such-page']) {
    const r = await fetch(`http://127.0.0.1:${relay.port}${path}`);
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /frame-ancestors 'none'/, `${path}: ${csp}`);
    assert.match(csp, /default-src 'self'/, path);
    assert.match(csp, /object-src 'none'/, path);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer', path);
    assert.equal(r.headers.get('x-frame-options'), 'DENY', path);
    await r.arrayBuffer();
  }
});
