// host.js — the JS host of the runtime, the same in node and in a browser
// Web Worker: it owns the WebSocket, the room clock, the timers and every
// call into patch code; the wasm session (runtime/session.c) owns
// verification, prepare/commit, the registry and the frames' encoding.
//
// Nothing here imports a platform module: the WebSocket constructor, the
// wasm runtime factory (and its binary or locateFile), the clock and the
// timers are passed in. runtime/node/runtime.mjs wires it for node; a
// worker wires it with the browser's own.
//
// The flow (runtime/README.md): socket bytes → the verifier instance's
// rt_session_receive → what it passes → the patch instance's → JSON
// answers → events; after every step, due patches commit (rt_session_tick),
// pb_init of a new patch runs, patch output becomes log frames, and the
// sessions' outboxes are sent. A call into a var that throws (a trap) rolls
// back the patch that defined the var (rt_session_trap).
//
// Its pieces, each a module of functions of the host: handover.js (the
// verifier and patch instances and a frame's way through them), calls.js
// (calling patch code, traps), commit.js (commit timing), generation.js
// (reset and generation reload), farm.js (the device farm: hello's device,
// snapshots, test runs).
import * as calls from './calls.js';
import { RoomClock } from './clock.js';
import { armTick, hosts } from './commit.js';
import { Connection } from './connection.js';
import { answerSnapshot, describeDevice, newDeviceId, requestTests, runTests, runWaitingTests } from './farm.js';
import { Freshness } from './freshness.js';
import { generationOf, reload, reset } from './generation.js';
import { instantiate, receive } from './handover.js';
import { parseLink } from './link.js';
import {
  PB_ERR_INTERNAL, PB_ERR_WRONG_KEY,
  PB_LOG_INFO, PB_LOG_WARN, PB_LOG_ERROR, PB_LOG_TRAP, PB_MAX_CLIENT_BYTES,
} from './pb_protocol.js';

export { parseLink, newDeviceId };
export const CLIENT = 'patchbay-runtime/0.1.0';

const LOG = { info: PB_LOG_INFO, warn: PB_LOG_WARN, error: PB_LOG_ERROR, trap: PB_LOG_TRAP };
// The least time between two reconnects to catch up (ms).
const RESYNC_MS = 5000;

// Writes token over the stand-in C encoded in its place (as many '*' as
// the token has bytes) in an encoded hello: a map whose first keys are
// "v", "t": "hello" and "token" (protocol/frame.c hello_f). False, and
// bytes untouched, if bytes is not exactly that.
function putToken(bytes, token) {
  const head = [0xa1, 0x76, 0x01, 0xa1, 0x74, 0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    0xa5, 0x74, 0x6f, 0x6b, 0x65, 0x6e];
  const m = bytes[0];
  const at0 = m >= 0x80 && m <= 0x8f ? 1 : m === 0xde ? 3 : -1;
  if (at0 < 0 || head.some((b, i) => bytes[at0 + i] !== b)) return false;
  const h = at0 + head.length, b = bytes[h];
  const [len, at] = b >= 0xa0 && b <= 0xbf ? [b & 0x1f, h + 1]
    : b === 0xd9 ? [bytes[h + 1], h + 2]
      : b === 0xda ? [(bytes[h + 1] << 8) | bytes[h + 2], h + 3] : [-1, 0];
  if (len !== token.length || at + len > bytes.length) return false;
  for (let i = at; i < at + len; i++) if (bytes[i] !== 0x2a) return false;
  bytes.set(token, at);
  return true;
}

// Takes the first frame out of instance I's outbox (a copy, in JS memory);
// null if it is empty.
function takeFrame(I) {
  const n = I._rt_session_out_len();
  if (!n) return null;
  const p = I._rt_session_out_data();
  const bytes = I.HEAPU8.slice(p, p + n);
  I._rt_session_out_pop();
  return bytes;
}

export class RuntimeHost {
  // opts:
  //   createRuntime  the Emscripten factory (createPatchbayRuntime)
  //   moduleArgs     extra factory arguments ({wasmBinary} or {locateFile})
  //   WebSocket      a WebSocket constructor (browser API)
  //   link           a join link string, or {url, room, token, key}
  //   name           shown in the client string
  //   clock          a RoomClock (default: new RoomClock())
  //   setTimeout, clearTimeout   default: the globals
  //   limits         {maxModuleBytes, logLinesPerSecond, logBurst, logMaxBytes}
  //   backoffMs      first reconnect delay (500), doubling to maxBackoffMs
  //                  (10000): runtime/connection.js
  //   pingEveryMs    clock re-sync period (500); the first 5 pings 100 ms apart
  //   stopped        [{seq, var}]: patches that hung an earlier instance
  //                  in var (its watchdog restarted it); each is taken back
  //                  the moment it commits, before its code runs, with
  //                  stoppedMessage as the reason in its failed ack
  //   resumeTests    {req, filter, seq, var, message}: the test run an
  //                  earlier instance hung in (in test var): once caught
  //                  up, this one answers it, with var timed out
  //   device         what hello says about the device: {label, platform,
  //                  screen_w, screen_h, dpr, ram_bytes, cores, features}
  //                  (features: detected when absent; runtime/farm.js)
  //   deviceId       hello's device_id: the same for every runtime a
  //                  watchdog restarts in its place (newDeviceId(); one of
  //                  this host's own when absent, kept across reconnects)
  //   canvas         {width, height}: a canvas from the start (its size is
  //                  in hello; attachCanvas can also add one later)
  //   store          where the highest verified head of each (key, room)
  //                  is kept: {load(key, room), save(key, room, head)}
  //                  (runtime/freshness.js); without one, nothing persists
  constructor(opts) {
    this.o = opts;
    this.link = typeof opts.link === 'string' ? parseLink(opts.link) : opts.link;
    this.clock = opts.clock || new RoomClock();
    this.stopped = new Map((opts.stopped || []).map((x) => [x.seq, x]));
    this.setTimeout = opts.setTimeout || globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = opts.clearTimeout || globalThis.clearTimeout.bind(globalThis);
    this.handlers = new Map();
    this.state = 'new';
    this.welcome = null;
    this.clientId = 0;
    this.room = {};
    this.conn = null;
    this.isClosed = false;
    this.lines = [];
    this.context = { var: '', seq: 0 };
    this.pingsSent = 0;
    this.timers = { tick: null, house: null, tests: null, resync: null };
    this.canvas = null;
    this.isReloading = false;
    this.generations = 0;
    this.held = []; // frames the verifier passed, waiting for a state catch-up to end
    this.freshness = new Freshness({
      store: opts.store, key: this.link.key, room: this.link.room,
      onStale: (sinceUs) => {
        for (const I of [this.V, this.M]) I?._rt_session_set_stale(sinceUs); // every ack says so
        this.emit('stale', { since_us: sinceUs });
      },
    });
    this.deviceId = opts.deviceId || newDeviceId();
  }

  // ---- events --------------------------------------------------------------
  // state {state, detail} · welcome · patch {seq, ok, code, error, ...} ·
  // reject (a patch refused: {seq, code, error}) · commit {seq, vars,
  // commit_at_us, apply_us, catchup, expr} · expr (an expression ran:
  // {seq, ok, value, out} or {seq, ok: false, var, error, out}) ·
  // trap {var, seq, vars, message} ·
  // log {level, text, var, seq} · tests {req, results} · relay_error
  // {code, message, fatal} · history · clock {offsetUs, uncertaintyUs} ·
  // call {var, seq, run}: patch code is entered (a watchdog's view,
  // runtime/watchdog.js; run {req, filter, seq}: the test run it is in)
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, ev) {
    for (const fn of this.handlers.get(type) || []) {
      try { fn(ev); } catch (e) { queueMicrotask(() => { throw e; }); }
    }
  }

  setState(state, detail = '') {
    this.state = state;
    this.emit('state', { state, detail });
  }

  // ---- start ---------------------------------------------------------------

  // Instantiates the verifier and the patch instance (two instances of the
  // wasm runtime, each with its own memory); then connects.
  async start() {
    this.V = await instantiate(this, undefined, { isVerifier: true });
    this.M = await instantiate(this);
    if (this.o.canvas) this.attachCanvas(this.o.canvas.width, this.o.canvas.height);
    // hosts on the real clock commit together (a test's own clock does not)
    if (!this.o.clock) hosts.add(this);
    this.housekeeping();
    if (this.o.WebSocket) this.connect();
    return this;
  }

  // Keeps the verifier's head as the floor, if it moved on (never the patch
  // instance's: patch code can write there).
  persistHead() {
    const V = this.V;
    if (V._rt_session_head_seq() === this.savedSeq && this.savedV === V) return;
    this.savedSeq = V._rt_session_head_seq();
    this.savedV = V;
    this.freshness.persist(JSON.parse(V.UTF8ToString(V._rt_session_head())));
  }

  get modules() { return this.M._rt_session_modules(); }
  get headSeq() { return this.V._rt_session_head_seq(); }
  get committedSeq() { return this.M._rt_session_committed_seq(); }
  get pendingCount() { return this.M._rt_session_pending_count(); }
  roomNowUs() { return this.clock.roomNowUs(); }

  // ---- the connection ------------------------------------------------------

  connect() {
    this.conn = new Connection({
      url: this.link.url, urls: this.link.urls, room: this.link.room, WebSocket: this.o.WebSocket,
      backoffMs: this.o.backoffMs, maxBackoffMs: this.o.maxBackoffMs,
      setTimeout: this.setTimeout, clearTimeout: this.clearTimeout,
      onOpen: () => {
        // hello with since_seq = the verified head and the device (built in C)
        describeDevice(this);
        const client = `${CLIENT}${this.o.name ? ` ${this.o.name}` : ''}`.slice(0, PB_MAX_CLIENT_BYTES);
        this.held = []; // a state catch-up of the last connection: dropped
        this.V.ccall('rt_session_hello', 'number', ['string', 'string', 'number'], ['', '', 0]);
        this.sayHello(client);
        this.flush();
      },
      onMessage: (bytes) => {
        if (this.resetQueue) this.resetQueue.push(bytes); // for the new instance
        else this.receive(bytes);
      },
      onState: (state, detail) => {
        if (state === 'failed') this.isClosed = true; // the token was refused
        this.setState(state, detail);
      },
    });
    this.conn.open();
  }

  // The session says this runtime missed patches (a gap, or a catch-up
  // that was not whole: cut short, or stripped): reconnecting asks for
  // everything after the verified head again. At most once per 5 s, so a
  // relay (or a man in the middle) that keeps doing it cannot make it spin:
  // a resync asked for sooner happens when the 5 s are over. The failed
  // ack that says why goes out first.
  resync(why) {
    if (!this.conn) return;
    const wait = (this.lastResync || 0) + RESYNC_MS - Date.now();
    if (wait > 0) {
      this.timers.resync ??= this.setTimeout(() => { this.timers.resync = null; this.resync(why); }, wait);
      return;
    }
    this.lastResync = Date.now();
    this.flush();
    this.conn.reconnect(`${why}: reconnecting to catch up`);
  }

  // Sends everything in the sessions' outboxes (frames are built in C): the
  // verifier's (failed acks of what it refused), then the patch instance's.
  flush() {
    for (const I of [this.V, this.M]) {
      for (let bytes = takeFrame(I); bytes; bytes = takeFrame(I)) {
        this.conn?.send(bytes);
        // while disconnected, acks and logs are dropped: the relay would not
        // route them to anyone who asked, and catch-up re-establishes state
      }
    }
  }

  // hello with since_seq = the verified head and the device, built in C by
  // the patch instance — but the join token never enters wasm memory, where
  // patch code could read it (docs/SECURITY.md § Patch code): C encodes a
  // stand-in of the token's length, and the token is written into the
  // copy of the frame that leaves. The outbox is emptied first, so the
  // frame taken right after the call is that hello; nothing else gets it.
  sayHello(client) {
    this.flush();
    const token = new TextEncoder().encode(this.link.token);
    this.M.ccall('rt_session_hello', 'number', ['string', 'string', 'number'],
                 ['*'.repeat(token.length), client, this.headSeq]);
    const bytes = takeFrame(this.M);
    if (bytes && putToken(bytes, token)) this.conn?.send(bytes);
    // (only a patch instance whose memory a patch corrupted gets here; the
    // relay's hello timeout then closes, and this is the reason given)
    else if (bytes) this.conn?.fatal(PB_ERR_INTERNAL, 'the patch instance encoded a hello without the token\'s stand-in: not sent');
  }

  // ---- receiving -----------------------------------------------------------

  // Handles one frame from the relay (also usable without a socket, which
  // is how the unit tests feed crafted frames): first the verifier, then —
  // only what it passes (runtime/README.md § The verifier instance) — the
  // patch instance (handover.js). Returns the account of it.
  receive(bytes) { return receive(this, bytes); }

  onFrame(ev) {
    switch (ev && ev.t) {
      case 'welcome':
        this.welcome = ev;
        this.clientId = ev.client_id;
        this.clock.seed(ev.now_us);
        this.pingsSent = 0;
        if (this.conn) this.conn.live(`${ev.role} ${ev.name} in ${ev.room}`);
        else this.setState('live', `${ev.role} ${ev.name} in ${ev.room}`);
        this.emit('welcome', ev);
        if (!ev.key_matches)
          this.emit('relay_error', { code: PB_ERR_WRONG_KEY, fatal: false,
            message: 'the relay presents another key than the join link: its patches will be refused' });
        // (its head_seq is not signed: a reset needs a signed later epoch)
        this.freshness.joined(this.clock.roomNowUs());
        this.ping();
        break;
      case 'head':
        if (!ev.ok) {
          this.emit('reject', { seq: 0, code: ev.code, error: ev.error });
          break;
        }
        // signed before it arrived: the room time is past it, and not much
        // more (clock.js)
        this.clock.atLeast(ev.time_us);
        if (ev.fresh) this.freshness.heard(ev.time_us);
        // where the room is: a head ahead is fresh once reached (catchUpIfBehind)
        if (ev.behind && (!this.roomHead || ev.epoch > this.roomHead.epoch ||
                          (ev.epoch === this.roomHead.epoch && ev.time_us > this.roomHead.time_us)))
          this.roomHead = { epoch: ev.epoch, seq: ev.seq, time_us: ev.time_us, atMs: performance.now() };
        if (ev.reset) reset(this, ev);
        else if (ev.resync) this.resync(ev.resync);
        this.emit('head', ev);
        break;
      case 'pong': {
        const s = this.clock.sample(ev.t0_us, ev.t1_us, ev.t2_us);
        this.emit('clock', { offsetUs: this.clock.offsetUs, uncertaintyUs: this.clock.uncertaintyUs,
                             rttUs: this.clock.rttUs, dropped: s.dropped || '' });
        break;
      }
      case 'patch':
        if (ev.created_us) this.clock.atLeast(ev.created_us);
        this.emit('patch', ev);
        if (!ev.ok) this.emit('reject', ev);
        if (ev.resync) this.resync(ev.resync);
        break;
      case 'history':
        for (const it of ev.items || []) if (it.created_us) this.clock.atLeast(it.created_us);
        this.emit('history', ev);
        for (const it of ev.items || []) if (!it.ok) this.emit('reject', it);
        if (ev.refused) this.emit('reject', ev.refused); // the whole catch-up
        if (ev.resync) this.resync(ev.resync);
        // caught up: a test run an earlier instance hung in is answered now
        if (!ev.more && !ev.refused && this.o.resumeTests && !this.hasResumed) {
          this.hasResumed = true;
          const r = this.o.resumeTests;
          requestTests(this, { req: r.req, filter: r.filter, seq: r.seq },
                       { var: r.var, message: r.message });
        }
        break;
      case 'error':
        if (ev.fatal) this.conn?.fatal(ev.code, ev.message);
        this.emit('relay_error', ev);
        break;
      case 'test_req':
        requestTests(this, ev);
        break;
      case 'snapshot_req':
        answerSnapshot(this, ev).catch((e) => this.emit('relay_error', {
          code: PB_ERR_INTERNAL, fatal: false, message: `snapshot ${ev.req}: ${e.message}` }));
        break;
      case 'room':
        this.room = ev;
        break;
      case 'invalid':
        this.emit('reject', { seq: 0, ok: false, code: ev.code, error: ev.error });
        break;
      default:
        break;
    }
  }

  // ---- commit, logs, outbox --------------------------------------------------

  // After anything happened: commit what is due, run pb_init of what was
  // committed, forward output, send, and arm the timer for the next commit.
  step() {
    this.M._rt_session_tick(this.clock.roomNowUs());
    this.afterTick();
  }

  afterTick() {
    // A tick stops after an expression or a patch that defines pb_init
    // (their code runs before the patches after them commit, so a catch-up
    // runs each in order, as the room did): take the commits, run what
    // they ask for, tick again.
    for (;;) {
      const M = this.M;
      const commits = JSON.parse(M.UTF8ToString(M._rt_session_take_commits()));
      let needsInit = false;
      let ranCode = false;
      for (const c of commits) {
        this.emit('commit', c);
        // Commits come in batches (a catch-up commits many at once), so a
        // stopped patch's var may already belong to a later one: then there
        // is nothing to take back.
        const x = this.stopped.get(c.seq);
        const why = this.o.stoppedMessage || 'did not return: the runtime was restarted without it';
        if (x && x.var === 'pb_expr') { // an expression runs once: not again
          M.ccall('rt_session_expr_stopped', null, ['number', 'string'], [c.seq, why]);
          continue;
        }
        if (x && c.vars.includes(x.var) && this.varSeq(x.var) === c.seq) calls.trap(this, x.var, why);
        if (c.vars.includes('pb_init')) needsInit = true;
        if (c.expr) {
          if (needsInit) calls.runInit(this); // the patches before it first
          needsInit = false;
          calls.runExpr(this, c.seq);
          ranCode = true;
        }
      }
      if (needsInit) calls.runInit(this);
      if (!(ranCode || needsInit) || !M._rt_session_tick(this.clock.roomNowUs())) break;
    }
    this.flushLogs();
    this.flush();
    armTick(this);
    this.persistHead();
    if (this.waitingTests && (this.committedSeq >= this.waitingTests.ev.seq || !this.pendingCount))
      runWaitingTests(this);
    const limit = this.o.reloadAfterModules ?? 500;
    if (limit && !this.isReloading && this.modules >= limit && !this.pendingCount)
      this.reload().catch((e) => this.emit('relay_error', { code: PB_ERR_INTERNAL, fatal: false,
                                                            message: `generation reload failed: ${e.message}` }));
  }

  // A generation reload now (generation.js): resolves true if it switched.
  reload() { return reload(this); }

  // What a fresh instance needs to carry on from here (generation.js,
  // generationOf): the chain head, every PB_STATE cell, the patches in use.
  generation(opts) { return generationOf(this.M, opts); }

  nextApplyUs() { return this.isClosed ? 0 : this.M._rt_session_next_apply_us(); }

  flushLogs() {
    if (!this.lines.length) return;
    const lines = this.lines;
    this.lines = [];
    const now = this.clock.roomNowUs();
    for (const l of lines) {
      const sent = this.M.ccall('rt_session_log', 'number',
        ['number', 'string', 'string', 'number', 'number'],
        [LOG[l.level] || 1, l.text, l.var || '', l.seq || 0, now]);
      this.emit('log', { ...l, sent: !!sent });
    }
  }

  // Clock pings (5 quickly after welcome, then every pingEveryMs) and the
  // log budget's marker; runs until close().
  housekeeping() {
    if (this.isClosed) return;
    if (this.state === 'live') {
      const every = this.pingsSent < 5 ? 100 : (this.o.pingEveryMs || 500);
      if (!this.lastPing || Date.now() - this.lastPing >= every) this.ping();
    }
    this.freshness.check();
    this.catchUpIfBehind();
    this.step();
    this.timers.house = this.setTimeout(() => this.housekeeping(), 100);
  }

  // Behind the room's signed head for RESYNC_MS (its catch-up was dropped,
  // or never came): ask again, and again every RESYNC_MS while it lasts.
  // Once reached, that head says how fresh the runtime's view is.
  catchUpIfBehind() {
    const h = this.roomHead;
    if (h && this.V && this.headSeq >= h.seq) {
      this.freshness.heard(h.time_us, h.atMs);
      this.roomHead = null;
    }
    if (!this.roomHead) {
      this.behindSinceMs = 0;
      return;
    }
    const now = performance.now();
    this.behindSinceMs ||= now;
    if (now - this.behindSinceMs < RESYNC_MS) return;
    this.behindSinceMs = now;
    this.resync(`the room is at seq ${h.seq}, this runtime at ${this.headSeq}`);
  }

  ping() {
    if (!this.conn?.isOpen || this.state !== 'live') return;
    this.lastPing = Date.now();
    this.pingsSent++;
    const unc = this.clock.uncertaintyUs;
    this.M._rt_session_ping(this.clock.ping(), Number.isFinite(unc) ? unc : 0);
    this.flush();
  }

  // ---- calling patch code ----------------------------------------------------

  // Patch code, through the registry (calls.js).
  varFn(name) { return calls.varFn(this, name); }
  varSeq(name) { return calls.varSeq(this, name); }
  tryCall(name, args) { return calls.tryCall(this, name, args); }

  // Calls a var; throws if it is undefined or trapped (after rolling back).
  call(name, ...args) {
    const r = this.tryCall(name, args);
    if (r.ok) return r.value;
    if (r.undefined) throw new Error(`var ${name} is not defined`);
    const t = r.trap;
    const err = new Error(`trap in '${t.var}' (seq ${t.seq}): ${t.message}`);
    err.trap = t;
    throw err;
  }

  // Runs the test vars whose name starts with filter and answers one
  // test_result (farm.js).
  runTests(req, filter = '', seq = 0, timedOut = null) { return runTests(this, req, filter, seq, timedOut); }

  // ---- the canvas --------------------------------------------------------------

  // A framebuffer for pb_frame: a pb_canvas {i32 width; i32 height;
  // u32 *pixels} in wasm memory, then width*height RGBA pixels. Returns
  // {ptr, width, height, pixels()} — pixels() is a fresh Uint8ClampedArray
  // view (memory may grow, which detaches old views), ready for ImageData.
  attachCanvas(width, height) {
    const M = this.M;
    if (this.canvas && this.canvas.M === M) M._free(this.canvas.ptr);
    const ptr = M._malloc(12 + width * height * 4);
    if (!ptr) throw new Error(`no memory for a ${width}x${height} canvas`);
    const px = ptr + 12;
    M.HEAP32[ptr >> 2] = width;
    M.HEAP32[(ptr >> 2) + 1] = height;
    M.HEAPU32[(ptr >> 2) + 2] = px;
    M.HEAPU8.fill(0, px, px + width * height * 4);
    M._rt_set_screen(ptr); // pb_screen(): tests see the device's canvas
    this.canvas = {
      M, ptr, width, height,
      pixels: () => new Uint8ClampedArray(M.HEAPU8.buffer, px, width * height * 4),
    };
    return this.canvas;
  }

  // One frame: commit what is due, then pb_frame(t, canvas) at room time t
  // (seconds). Call it between frames (requestAnimationFrame or a timer);
  // commits therefore never happen in the middle of a frame. Returns the
  // call's result ({ok} or {ok:false, trap|undefined}).
  frame() {
    this.step();
    return this.drawAt(this.clock.roomNowUs() / 1e6);
  }

  // pb_frame(t, canvas) for room time t (seconds), without a step first.
  drawAt(t) {
    if (!this.canvas) return { ok: false, undefined: true };
    const bpm = this.room.tempo_bpm || 0;
    this.M._rt_set_time(t, bpm ? t * bpm / 60 : 0);
    // the same room time draws the same picture (a replay, another screen)
    this.M._rt_seed_rand(calls.RAND_FRAME, Math.floor(t * 1e6));
    return this.tryCall('pb_frame', [t, this.canvas.ptr]);
  }

  // ---- stop ------------------------------------------------------------------

  close() {
    this.isClosed = true;
    hosts.delete(this);
    for (const k of Object.keys(this.timers)) {
      if (this.timers[k]) this.clearTimeout(this.timers[k]);
      this.timers[k] = null;
    }
    if (this.conn) this.conn.close('runtime closed');
    else this.setState('closed');
  }
}

// Creates a host, instantiates the runtime and connects (if a WebSocket
// constructor is given).
export async function startHost(opts) {
  return new RuntimeHost(opts).start();
}
