// failover.test.mjs — a join link that names several relays (issue 19;
// docs/PROTOCOL.md § Transport): when the relay the runtimes use dies
// (kill -9), they reconnect to the link's next relay and catch up there,
// nothing missed or applied twice. The second relay here is the same one
// restarted on another port with the same data folder (same key, same
// chain): two relays sharing nothing would not be a fair test of catch-up.
// The edges of issue 19 are the real case; their tests use these links.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import WebSocket from 'ws';
import { Relay, joinRoom, parseLink, until } from './harness.mjs';

const H = '#include <patchbay.h>\n';
const ROOM = 'stage';
const N = 4;
let relay;
const runtimes = [];
const gate = { open: true }; // closed: no runtime reaches any relay

// A WebSocket that is refused while the gate is closed, so the test
// decides when the runtimes come back (after the eval they must catch up).
class GatedWebSocket extends WebSocket {
  constructor(url, protocols, options) {
    super(gate.open ? url : 'ws://127.0.0.1:9/', protocols, options);
  }
}

after(async () => {
  for (const r of runtimes) r.close();
  await relay?.stop();
});

// A loopback port nothing listens on now (for the relay started later).
function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('parseLink reads the relays a link names, in order, each once', () => {
  const base = 'http://a:1/runtime.html#room=r&token=t&key=' + '0'.repeat(64);
  assert.deepEqual(parseLink(base).urls, ['ws://a:1']);
  assert.deepEqual(parseLink(`${base}&relays=b:2,wss://c:3,a:1,https://d:4`).urls,
                   ['ws://a:1', 'ws://b:2', 'wss://c:3', 'wss://d:4']);
  assert.deepEqual(parseLink(base.replace('http:', 'https:') + '&relays=b:2').urls,
                   ['wss://a:1', 'wss://b:2']);
  assert.throws(() => parseLink(`${base}&relays=ftp://b:2`), /relays entry "ftp:\/\/b:2"/);
  assert.throws(() => parseLink(`${base}&relays=b:2/x`), /relays entry "b:2\/x"/);
  const nine = Array.from({ length: 8 }, (_, i) => `h${i}:1`).join(',');
  assert.throws(() => parseLink(`${base}&relays=${nine}`), /names 9 relays; at most 8/);
});

test('kill -9 the relay: the runtimes move to the link\'s next relay and catch up, nothing missed or repeated', async () => {
  relay = await new Relay().start();
  const second = await freePort();
  const link = (name) => `${relay.link(ROOM, name)}&relays=127.0.0.1:${second}`;
  for (let i = 0; i < N; i++) {
    const rt = await joinRoom(link(`rt${i}`), { name: `rt${i}`, WebSocket: GatedWebSocket, backoffMs: 100, maxBackoffMs: 400 });
    rt.commits = [];
    rt.rejects = [];
    rt.welcomes = 0;
    rt.on('commit', (c) => rt.commits.push(c));
    rt.on('reject', (r) => rt.rejects.push(r));
    rt.on('welcome', () => { rt.welcomes++; });
    runtimes.push(rt);
  }
  await until(() => runtimes.every((r) => r.state === 'live'), 'every runtime joined');
  const first = `ws://127.0.0.1:${relay.port}`;
  for (const r of runtimes) assert.equal(r.conn.url, first);
  const { seq: s1 } = await relay.eval(ROOM, H + 'double ggg(double v) { return v + 48; }\n');
  await until(() => runtimes.every((r) => r.committedSeq >= s1), `seq ${s1} everywhere`);

  gate.open = false;
  await relay.kill();
  relay.port = second; // same data: same key, same chain
  await relay.start();
  // evaluated before any runtime is back: it must come in their catch-up
  const { seq: s2 } = await relay.eval(ROOM, H + 'double ggg(double v) { return v + 49; }\n');
  gate.open = true;
  await until(() => runtimes.every((r) => r.state === 'live' && r.welcomes >= 2), 'every runtime back');
  await until(() => runtimes.every((r) => r.committedSeq >= s2), `seq ${s2} caught up everywhere`);
  const { seq: s3 } = await relay.eval(ROOM, H + 'double ggg(double v) { return v + 50; }\n');
  await until(() => runtimes.every((r) => r.committedSeq >= s3), `seq ${s3} live everywhere`);
  for (const r of runtimes) {
    assert.equal(r.conn.url, `ws://127.0.0.1:${second}`, `${r.o.name} on the second relay`);
    assert.equal(r.call('ggg', 10), 60, r.o.name);
    assert.deepEqual(r.commits.map((c) => c.seq), [s1, s2, s3], `${r.o.name}: every seq once, in order`);
    assert.equal(r.commits.find((c) => c.seq === s2).catchup, true);
    assert.deepEqual(r.rejects, [], `${r.o.name} refused nothing`);
  }
});
