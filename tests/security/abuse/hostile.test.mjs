// hostile.test.mjs — issue 22, proof: one relay, an honest editor and a
// real node runtime in room "calm", and in turn each kind of hostile
// client of the other tests (eval flood, reconnect flood, compile bombs,
// catch-up requests, pre-hello junk, foreign-origin sockets, a flood of
// acks and logs) in room "loud" or with no token at all. Through every
// phase each honest eval must be answered and committed by the runtime;
// the eval → commit latency of each phase is reported (no threshold: the
// machine's load decides the numbers).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Relay, frame, decode, until, spawnRuntimeCli } from '../../runtime/harness.mjs';

let relay, runtime, honest;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const url = () => `ws://127.0.0.1:${relay.port}/`;

// A socket that has said hello; frames land in ws.frames.
function client(room, role, name, { from, origin } = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url(), ['patchbay'], { localAddress: from, origin });
    ws.frames = [];
    ws.binaryType = 'arraybuffer';
    ws.on('message', (d) => {
      const f = decode(new Uint8Array(d));
      ws.frames.push(f);
      if (f.t === 'welcome' || (f.t === 'error' && f.fatal)) resolve(ws);
      if (ws.onFrame) ws.onFrame(f);
    });
    ws.on('open', () => ws.send(frame('hello', { token: relay.token(room, role, name) })));
    ws.on('error', () => resolve(ws));
    ws.on('close', () => resolve(ws));
  });
}
const isOpen = (ws) => ws.readyState === WebSocket.OPEN;

let serial = 0;
const source = (who) => `#include <patchbay.h>\ndouble ${who}${++serial}(double x) { return x + ${serial}; }\n`;
const BOMB = '#include <patchbay.h>\n#define L0(x) x x x x x x x x\n#define L1(x) L0(L0(x))\n' +
             '#define L2(x) L1(L1(x))\n#define L3(x) L2(L2(x))\ndouble boom(double x) { return x L3(+1); }\n';

// One honest eval in room calm: ms from sending it to the runtime's
// committed ack.
async function honestEval() {
  const req = ++serial;
  const t0 = performance.now();
  let seq = 0;
  let committedAt = 0;
  honest.onFrame = (f) => {
    if (f.t === 'diag' && f.req === req) seq = f.ok ? f.seq : -1;
    if (f.t === 'ack' && seq > 0 && f.seq === seq && f.state === 'committed') committedAt = performance.now();
  };
  honest.send(frame('eval', { req, lang: 'c', name: 'h.c', source: source('honest') }));
  await until(() => seq !== 0, `the honest eval ${req} answered`, 60000);
  assert.ok(seq > 0, `the honest eval ${req} was accepted`);
  await until(() => committedAt, `the honest patch ${seq} committed by the runtime`, 60000);
  return committedAt - t0;
}

// Runs attack() until stop is set while the honest pair evaluates n times;
// returns the latencies.
async function during(attack, n = 5) {
  const state = { stop: false };
  const running = attack(state);
  const ms = [];
  try {
    for (let i = 0; i < n; i++) ms.push(await honestEval());
  } finally {
    state.stop = true;
    await running;
  }
  return ms;
}

const report = [];
function record(phase, ms) {
  const s = [...ms].sort((a, b) => a - b);
  report.push(`${phase.padEnd(22)} p50 ${s[s.length >> 1].toFixed(0).padStart(5)} ms  max ${s[s.length - 1].toFixed(0).padStart(5)} ms`);
}

before(async () => {
  relay = await new Relay({ args: ['--compile-timeout-ms', '1500'] }).start();
  runtime = spawnRuntimeCli([relay.link('calm', 'screen'), '--name', 'screen']);
  await until(() => runtime.lines.some((l) => /live/.test(l)), 'the honest runtime live', 30000);
  honest = await client('calm', 'editor', 'honest');
  assert.equal(honest.frames[0].t, 'welcome');
});
after(async () => {
  console.log(`# honest eval -> commit in room calm, by phase:\n${report.map((l) => `#   ${l}`).join('\n')}`);
  honest?.close();
  runtime?.kill('SIGTERM');
  await runtime?.exited;
  await relay?.stop();
});

test('baseline: no attack', async () => {
  await honestEval(); // warm
  record('none', await during(async () => {}));
});

test('an eval flood from one editor token', async () => {
  const flooder = await client('loud', 'editor', 'flooder');
  let refused = 0;
  flooder.onFrame = (f) => { if (f.t === 'error' && f.code === 47) refused++; };
  record('eval flood', await during(async (s) => {
    while (!s.stop && isOpen(flooder)) {
      for (let i = 0; i < 50; i++) flooder.send(frame('eval', { req: ++serial, lang: 'c', name: 'f.c', source: source('f') }));
      await sleep(10);
    }
  }));
  assert.ok(refused > 0, 'the flood was refused');
  flooder.close();
});

test('a reconnect flood with the same token name', async () => {
  record('reconnect flood', await during(async (s) => {
    while (!s.stop) {
      const ws = await client('loud', 'editor', 'again');
      for (let i = 0; i < 10 && isOpen(ws); i++)
        ws.send(frame('eval', { req: i + 1, lang: 'c', name: 'r.c', source: source('r') }));
      ws.close();
    }
  }));
});

test('compile bombs', async () => {
  const bomber = await client('loud', 'editor', 'bomber');
  record('compile bombs', await during(async (s) => {
    while (!s.stop && isOpen(bomber)) {
      bomber.send(frame('eval', { req: ++serial, lang: 'c', name: 'b.c', source: BOMB.replace('boom', `boom${serial}`) }));
      await sleep(200);
    }
  }));
  bomber.close();
});

test('catch-up requests from a viewer', async () => {
  const viewer = await client('loud', 'viewer', 'reader');
  record('history_req flood', await during(async (s) => {
    while (!s.stop && isOpen(viewer)) {
      viewer.send(frame('history_req', { req: ++serial, mode: 'range', from_seq: 1, to_seq: 0 }));
      await sleep(5);
    }
  }));
  viewer.close();
});

test('strangers: junk before hello, foreign origins', async () => {
  record('pre-hello junk, origins', await during(async (s) => {
    while (!s.stop) {
      const socks = [];
      for (let i = 0; i < 20; i++) {
        const ws = new WebSocket(url(), ['patchbay'], { localAddress: `127.0.0.${2 + (i % 5)}`,
                                                        origin: i % 2 ? 'http://evil.example' : undefined });
        ws.on('open', () => ws.send(Buffer.alloc(16384, 0x41)));
        ws.on('error', () => {});
        socks.push(ws);
      }
      await sleep(200);
      for (const ws of socks) ws.terminate();
    }
  }));
});

test('a runtime token flooding acks and logs', async () => {
  const rt = await client('loud', 'runtime', 'noisy');
  record('ack and log flood', await during(async (s) => {
    while (!s.stop && isOpen(rt)) {
      for (let i = 0; i < 100; i++) {
        rt.send(frame('log', { level: 'info', text: 'x'.repeat(1000), seq: 1, var: 'pb_frame' }));
        rt.send(frame('ack', { seq: 1, state: 'committed' }));
      }
      await sleep(5);
    }
  }));
  rt.terminate();
});
