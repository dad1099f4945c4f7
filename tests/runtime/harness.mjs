// harness.mjs — for the runtime tests: a real relay (`patchbay serve`) on a
// free loopback port with its own data folder, tokens and links from
// `patchbay token`, evals through `patchbay eval`, a recorder that keeps
// the raw bytes of every frame the relay broadcasts (to feed real, signed
// patches — intact or tampered with — to a runtime without a socket), and
// node runtimes from the installed <build>/runtime/. Everything started
// here is stopped by stop(), also when a test fails.
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { encode, decode } from '../../web/src/msgpack.js';
import { frame } from '../../web/src/proto.js';
import { ServedRelay, freePort } from '../serve.mjs';

export { encode, decode, frame, freePort };

// A WebSocket class that goes nowhere while gate.open is false (the
// connection is refused, the runtime backs off and retries), so a test
// decides exactly when runtimes come back.
export function gatedWebSocket(gate) {
  return class GatedWebSocket extends WebSocket {
    constructor(url, protocols, options) {
      super(gate.open ? url : 'ws://127.0.0.1:9/', protocols, options);
    }
  };
}
export const CLI = process.env.PB_CLI;
export const RUNTIME_DIR = process.env.PB_RUNTIME_DIR;
if (!CLI || !RUNTIME_DIR) throw new Error('set PB_CLI and PB_RUNTIME_DIR (ctest does)');
if (!existsSync(join(RUNTIME_DIR, 'pb_runtime.cjs')))
  throw new Error(`${RUNTIME_DIR}/pb_runtime.cjs is missing: build the pb_runtime_node target`);
export const RUNTIME_CLI = resolve(RUNTIME_DIR, 'node', 'patchbay-runtime.mjs');
const installed = (f) => pathToFileURL(resolve(RUNTIME_DIR, f)).href;
export const { joinRoom, parseLink } = await import(installed('node/runtime.mjs'));
export const { RoomClock, MAX_AHEAD_US } = await import(installed('clock.js'));
// the wire numbers by their C names (runtime/pb_protocol.js, generated)
export const PB = await import(installed('pb_protocol.js'));

const run = promisify(execFile);
const live = new Set(); // processes to kill on exit, whatever happens
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL'); } catch { /* gone */ } });

// Resolves when cond() is true, polling every 20 ms; rejects with what
// after timeoutMs. Every wait in these tests is bounded by it.
export async function until(cond, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export class Relay extends ServedRelay {
  // opts.keyFrom: another Relay whose keys this one shares (same relay
  // key, its own history: a forked chain); opts.args: more `serve`
  // options; opts.verbose: the relay logs every connection (this.log).
  constructor(opts = {}) {
    super(CLI, 'pb-rt-');
    this.data = join(this.dir, 'data');
    this.leadMs = opts.leadMs || 50;
    this.args = [...(opts.args || []), ...(opts.verbose ? [] : ['-q'])];
    // the relay's default compiler, as users run it (opts.backend:
    // 'process' for the other one)
    this.backend = opts.backend || 'warm';
    if (opts.keyFrom) {
      mkdirSync(this.data, { mode: 0o700 });
      for (const f of ['relay.key', 'relay.pub', 'token.key'])
        copyFileSync(join(opts.keyFrom.data, f), join(this.data, f));
    }
  }

  // Starts (or restarts, on the same port) the relay.
  async start() {
    live.add(await this.serve(['--backend', this.backend, '--lead-ms', String(this.leadMs), ...this.args]));
    return this;
  }

  // The runtime link exactly as `patchbay token` prints it.
  link(room, name) {
    const out = execFileSync(CLI, ['token', '--data', this.data, '--room', room, '--role', 'runtime',
                                   '--name', name, '--url', `http://127.0.0.1:${this.port}`],
                             { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    return out.match(/runtime page: +(\S+)/)[1];
  }

  // `patchbay eval` as another editor would; waits for `runtimes` commits
  // if given. Returns {stdout, seq}.
  async eval(room, source, { lang = 'c', runtimes = 0, file } = {}) {
    const f = join(this.dir, file || `e${Date.now()}${Math.random().toString(36).slice(2)}.${lang === 'lisp' ? 'cljc' : 'c'}`);
    writeFileSync(f, source);
    const args = ['eval', '--url', `ws://127.0.0.1:${this.port}`, '--room', room,
                  '--token', this.token(room, 'editor', 'ed'), '--lang', lang];
    if (runtimes) args.push('--runtimes', String(runtimes), '--wait-ms', '20000');
    else args.push('--wait-ms', '0');
    args.push(f);
    const { stdout } = await run(CLI, args);
    const m = /accepted as seq (\d+)/.exec(stdout);
    if (!m) throw new Error(`eval not accepted:\n${stdout}`);
    return { stdout, seq: Number(m[1]) };
  }

  async kill() {
    live.delete(await super.kill());
  }
}

// A viewer that keeps the raw bytes of every patch the relay broadcasts
// in a room: real, signed frames for the unit tests.
export class Recorder {
  constructor(relay, room) {
    this.patches = [];
    this.heads = []; // the signed heads, raw: the first names the room's epoch
    this.ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${room}`, 'patchbay');
    this.ws.binaryType = 'arraybuffer';
    const token = relay.token(room, 'viewer', 'recorder');
    this.ready = new Promise((resolve, reject) => {
      this.ws.onopen = () => this.ws.send(frame('hello', { token }));
      this.ws.onerror = (e) => reject(e.error || new Error('recorder socket failed'));
      this.ws.onmessage = (ev) => {
        const bytes = new Uint8Array(ev.data);
        const f = decode(bytes);
        if (f.t === 'head' && !this.heads.length) resolve(); // right after welcome
        if (f.t === 'patch') this.patches.push(bytes);
        if (f.t === 'head') this.heads.push(bytes);
      };
    });
  }

  // The raw patch frame with this seq (waits for it).
  async patch(seq) {
    await until(() => this.patches.some((b) => decode(b).t === 'patch' &&
                                                statementSeq(decode(b).stmt) === seq),
                `patch seq ${seq}`);
    return this.patches.find((b) => statementSeq(decode(b).stmt) === seq);
  }

  close() { this.ws.close(); }
}

export function statementSeq(stmt) { return decode(stmt)[2]; }
export function statementApplyUs(stmt) { return decode(stmt)[10]; }

const bare = new Set();
// Closes every runtime bareRuntime made (afterEach: a failed assertion
// must not leave a runtime's timers keeping the test process alive).
export function closeBareRuntimes() {
  for (const rt of bare) rt.close();
  bare.clear();
}

// A socket that reaches no relay: it opens at once, keeps what is sent
// (decoded) and how it was closed. For runtimes whose frames a test feeds.
class LoopbackSocket {
  static OPEN = WebSocket.OPEN;
  OPEN = WebSocket.OPEN;
  constructor() {
    this.readyState = WebSocket.CONNECTING;
    this.sent = [];
    this.closedWith = null;
    queueMicrotask(() => { this.readyState = WebSocket.OPEN; this.onopen?.(); });
  }
  send(bytes) { this.sent.push(decode(bytes)); }
  close(code, reason) {
    this.closedWith = { code, reason };
    this.readyState = WebSocket.CLOSED;
  }
}

// A runtime on a LoopbackSocket: frames are fed with receive(); what it
// sends is decoded into rt.sent (the hello first). The clock is the
// test's: rt.setNow(us), which may be far past the signed times it feeds
// (no ceiling: docs/SECURITY.md § The room clock). opts.head: a signed head (raw, from a Recorder)
// fed first, as the relay sends it right after welcome: it names the
// room's epoch, whose genesis the chain starts from.
export async function bareRuntime(room, key, opts = {}) {
  let now = opts.now || Date.now() * 1000;
  const clock = new RoomClock({ now: () => now, maxAheadUs: Infinity });
  let socket = null;
  const rt = await joinRoom(`http://127.0.0.1:1/runtime.html#room=${room}&token=t&key=${key}`, {
    store: null, // a test's runtime starts with no floor of an earlier test's (opts.store to keep one)
    ...opts, clock,
    WebSocket: class extends LoopbackSocket { constructor() { super(); socket = this; } },
  });
  bare.add(rt);
  await until(() => socket && socket.sent.length, 'the hello on the loopback socket');
  rt.socket = socket;
  rt.sent = socket.sent;
  rt.setNow = (us) => { now = us; };
  rt.acks = (state) => rt.sent.filter((f) => f.t === 'ack' && (!state || f.state === state));
  if (opts.head) {
    const ev = rt.receive(opts.head);
    if (!ev.ok) throw new Error(`the signed head was refused: ${ev.error}`);
  }
  return rt;
}

// Spawns the node runtime CLI; lines collects its stdout.
export function spawnRuntimeCli(args) {
  const p = spawn(process.execPath, [RUNTIME_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(p);
  p.lines = [];
  p.stderrText = '';
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    p.lines.push(...parts);
  });
  p.stderr.on('data', (d) => { p.stderrText += d; });
  p.exited = new Promise((r) => p.on('exit', (code) => { live.delete(p); r(code); }));
  return p;
}
