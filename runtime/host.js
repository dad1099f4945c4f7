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
import { RoomClock } from './clock.js';
import { Connection } from './connection.js';
import { answerSnapshot, describeDevice, newDeviceId } from './farm.js';
import { Freshness } from './freshness.js';
import { parseLink } from './link.js';
import {
  PB_ERR_INTERNAL, PB_ERR_PREPARE, PB_ERR_WRONG_KEY,
  PB_LOG_INFO, PB_LOG_WARN, PB_LOG_ERROR, PB_LOG_TRAP, PB_MAX_CLIENT_BYTES, PB_MAX_FRAME_BYTES,
  PB_TEST_PASS, PB_TEST_FAIL, PB_TEST_TRAP, PB_TEST_TIMEOUT,
} from './pb_protocol.js';

export { parseLink, newDeviceId };
export const CLIENT = 'patchbay-runtime/0.1.0';

const LOG = { info: PB_LOG_INFO, warn: PB_LOG_WARN, error: PB_LOG_ERROR, trap: PB_LOG_TRAP };
const TEST_PREFIX = 'pb_test__';
// How long a test request waits for the patches queued before it to
// commit (they wait for their apply time) before running on what is there.
const TEST_WAIT_MS = 5000;
// How early the commit timer fires before the last stretch (ms).
const SPIN_MS = 3;
// The least time between two reconnects to catch up (ms).
const RESYNC_MS = 5000;
// What rand() is seeded for before a call into patch code (runtime/rand.c).
const RAND_INIT = 1;
const RAND_EXPR = 2;
const RAND_FRAME = 3;
const RAND_TEST = 4;

// The last stretch before a commit: a precise sleep where the platform
// allows one (node: Atomics.wait, which takes fractions of a millisecond
// and leaves the CPU to other runtimes), else a busy wait (a browser worker
// without cross-origin isolation has no SharedArrayBuffer).
const sleepMs = (() => {
  try {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(cell, 0, 0, 0); // throws where a thread may not block
    return (ms) => { Atomics.wait(cell, 0, 0, ms); };
  } catch {
    return null;
  }
})();

// Which var's code trapped: the innermost pb__def.NAME frame of the stack
// (the ABI renames every var's definition so; docs/PATCH_ABI.md).
function trappedVar(err, fallback) {
  const m = /pb__def\.([A-Za-z_][A-Za-z0-9_]*)/.exec(String(err && err.stack || ''));
  return m ? m[1] : fallback;
}

function messageOf(err) {
  if (err && err.name && err.message) return `${err.name}: ${err.message}`;
  return String(err);
}

// Every started host of this JS realm. A node process may run many
// runtimes (a test farm); when one's commit is due, every other one due
// within COMMIT_GROUP_US swaps in the same pass — each at its own apply
// time on its own clock — before any of them does the slower rest (acks,
// pb_init, output), so they do not queue behind each other's work.
const hosts = new Set();
const COMMIT_GROUP_US = (SPIN_MS + 1) * 1000;

function waitUntil(h, at, stop) {
  for (;;) {
    const left = (at - h.clock.roomNowUs()) / 1000;
    if (left <= 0 || performance.now() >= stop) return;
    if (sleepMs && left > 0.25) sleepMs(left - 0.15); // then spin the rest
  }
}

function commitTogether(first) {
  const stop = performance.now() + SPIN_MS + 2;
  const group = [];
  for (const h of hosts.has(first) ? hosts : [first]) {
    const at = h.nextApplyUs();
    if (at && (h === first || at - h.clock.roomNowUs() <= COMMIT_GROUP_US))
      group.push({ h, at, left: at - h.clock.roomNowUs() });
  }
  group.sort((a, b) => a.left - b.left);
  for (const g of group) {
    waitUntil(g.h, g.at, stop);
    g.h.M._rt_session_tick(g.h.clock.roomNowUs());
  }
  for (const g of group) g.h.afterTick();
}

// What the verifier lets through to the patch instance (rt_session_pass).
const PASS = { NONE: 0, FRAME: 1, ITEMS: 2, HOLD: 3, END: 4, DROP: 5 };

// The account of a frame: the verifier's, with the patch instance's (how
// it prepared) for what it passed.
function merged(v, m) {
  // (verify_us: both instances' share of verifying)
  if (v.t === 'patch') return m.ok ? { ...m, verify_us: m.verify_us + v.verify_us } : m;
  if (v.t !== 'history') return v;
  const mi = m.items || [];
  let k = 0;
  const items = (v.items || []).map((it) => (it.ok ? mi[k++] || it : it));
  const r = { ...v, items, verified: items.filter((it) => it.ok).length,
              failed: items.filter((it) => !it.ok).length };
  if (m.refused) r.refused = m.refused;
  r.resync = v.resync || m.resync;
  if (!r.resync) delete r.resync;
  return r;
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
    this.V = await this.instantiate(undefined, { isVerifier: true });
    this.M = await this.instantiate();
    if (this.o.canvas) this.attachCanvas(this.o.canvas.width, this.o.canvas.height);
    // hosts on the real clock commit together (a test's own clock does not)
    if (!this.o.clock) hosts.add(this);
    this.housekeeping();
    if (this.o.WebSocket) this.connect();
    return this;
  }

  // A new wasm instance with an open session (no patches yet), at floor
  // ({epoch, seq, hash}: what this runtime must not go below; default: the
  // persisted one); with isVerifier, a verifier instance (runtime/verifier.c):
  // every frame goes to it first, it holds the key, the chain and the
  // floor, and no patch code ever runs in its memory.
  async instantiate(floor = this.freshness.floor, { isVerifier = false } = {}) {
    const print = (level) => (text) => this.lines.push({ level, text, ...this.context });
    const M = await this.o.createRuntime({ ...(this.o.moduleArgs || {}),
                                           print: print('info'), printErr: print('error') });
    const l = this.o.limits || {};
    const r = JSON.parse(M.ccall('rt_session_open', 'string', ['string', 'string', 'number'],
                                 [this.link.room, this.link.key, l.maxModuleBytes || 0]));
    if (!r.ok)
      throw Object.assign(new Error(`cannot open the runtime session for room "${this.link.room}": ${r.error}`),
                          { code: r.code });
    if (isVerifier ? M._rt_session_verify_only() : M._rt_session_behind_verifier())
      throw new Error('cannot open the runtime session behind a verifier');
    M._rt_session_set_log_limits(l.logLinesPerSecond || 0, l.logBurst || 0, l.logMaxBytes || 0);
    if (floor) {
      const e = M.ccall('rt_session_floor', 'number', ['number', 'number', 'string'],
                        [floor.epoch, floor.seq, floor.hash || '']);
      if (e) throw new Error(`the runtime session refused the floor ${JSON.stringify(floor)} (error ${e})`);
    }
    M._rt_session_set_stale(this.freshness.staleSinceUs); // its acks say so too
    return M;
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
      url: this.link.url, room: this.link.room, WebSocket: this.o.WebSocket,
      backoffMs: this.o.backoffMs, maxBackoffMs: this.o.maxBackoffMs,
      setTimeout: this.setTimeout, clearTimeout: this.clearTimeout,
      onOpen: () => {
        // hello with since_seq = the verified head and the device (built in C)
        describeDevice(this);
        const client = `${CLIENT}${this.o.name ? ` ${this.o.name}` : ''}`.slice(0, PB_MAX_CLIENT_BYTES);
        this.held = []; // a state catch-up of the last connection: dropped
        this.V.ccall('rt_session_hello', 'number', ['string', 'string', 'number'], ['', '', 0]);
        this.M.ccall('rt_session_hello', 'number', ['string', 'string', 'number'],
                     [this.link.token, client, this.headSeq]);
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
      for (let n = I._rt_session_out_len(); n; n = I._rt_session_out_len()) {
        const p = I._rt_session_out_data();
        const bytes = I.HEAPU8.slice(p, p + n);
        I._rt_session_out_pop();
        this.conn?.send(bytes);
        // while disconnected, acks and logs are dropped: the relay would not
        // route them to anyone who asked, and catch-up re-establishes state
      }
    }
  }

  // ---- receiving -----------------------------------------------------------

  // Handles one frame from the relay (also usable without a socket, which
  // is how the unit tests feed crafted frames): first the verifier, then —
  // only what it passes (runtime/README.md § The verifier instance) — the
  // patch instance. Returns the account of it.
  receive(bytes) {
    const V = this.V;
    if (bytes.length > PB_MAX_FRAME_BYTES) {
      // refused before anything reaches wasm memory, which never shrinks
      const ev = JSON.parse(V.UTF8ToString(V._rt_session_refuse(bytes.length)));
      this.onFrame(ev);
      this.step();
      return ev;
    }
    const now = this.clock.roomNowUs();
    const p = V._malloc(bytes.length || 1);
    V.HEAPU8.set(bytes, p);
    const v = JSON.parse(V.UTF8ToString(V._rt_session_receive(p, bytes.length, now))) || { t: 'unknown' };
    V._free(p);
    const pass = V._rt_session_pass(); // runtime/verifier.c, rt_pass
    const passed = pass === PASS.ITEMS
      ? V.HEAPU8.slice(V._rt_session_passed_data(), V._rt_session_passed_data() + V._rt_session_passed_len())
      : bytes;
    // A state catch-up reaches the patch instance only once the verifier
    // has it whole (nothing of a refused one is loaded), all at once: its
    // batches, and what passed meanwhile behind them, wait here.
    let ev = v;
    if (pass === PASS.NONE) {
      this.onFrame(v);
    } else if (pass === PASS.DROP) {
      for (const h of this.held) if (h.v.t !== 'head') this.onFrame(h.v);
      this.held = [];
      this.onFrame(v);
    } else if (pass === PASS.HOLD || pass === PASS.END || this.held.length) {
      this.held.push({ bytes: passed, v });
      if (v.t === 'head') this.onFrame(v); // its freshness is now
      if (pass !== PASS.END) return v;
      const held = this.held;
      this.held = [];
      for (const h of held) {
        const e = merged(h.v, this.deliver(h.bytes));
        if (h.v.t !== 'head') this.onFrame(ev = e);
      }
    } else {
      ev = merged(v, this.deliver(passed));
      this.onFrame(ev);
    }
    this.step();
    return ev;
  }

  // Hands a frame the verifier passed to the patch instance; its answer.
  deliver(bytes) {
    const M = this.M;
    const now = this.clock.roomNowUs();
    const p = M._malloc(bytes.length || 1);
    M.HEAPU8.set(bytes, p);
    const sp = M.stackSave();
    let ev;
    try {
      ev = JSON.parse(M.UTF8ToString(M._rt_session_receive(p, bytes.length, now)));
    } catch (e) {
      // a module's constructor trapped while loading (or the answer did not
      // fit): nothing of it is staged
      M.stackRestore(sp);
      const message = messageOf(e);
      M.ccall('rt_session_load_failed', null, ['string'], [message]);
      ev = { t: 'patch', ok: false, code: PB_ERR_PREPARE, error: message };
    } finally {
      M._free(p);
    }
    return ev;
  }

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
        // signed before it arrived: the room time is past it (clock.js)
        this.clock.atLeast(ev.time_us);
        if (ev.fresh) this.freshness.heard(ev.time_us);
        // where the room is: a head ahead is fresh once reached (catchUpIfBehind)
        if (ev.behind && (!this.roomHead || ev.epoch > this.roomHead.epoch ||
                          (ev.epoch === this.roomHead.epoch && ev.time_us > this.roomHead.time_us)))
          this.roomHead = { epoch: ev.epoch, seq: ev.seq, time_us: ev.time_us, atMs: performance.now() };
        if (ev.reset) this.reset(ev);
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
          this.requestTests({ req: r.req, filter: r.filter, seq: r.seq },
                            { var: r.var, message: r.message });
        }
        break;
      case 'error':
        if (ev.fatal) this.conn?.fatal(ev.code, ev.message);
        this.emit('relay_error', ev);
        break;
      case 'test_req':
        this.requestTests(ev);
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
        if (x && c.vars.includes(x.var) && this.varSeq(x.var) === c.seq) this.trap(x.var, why);
        if (c.vars.includes('pb_init')) needsInit = true;
        if (c.expr) {
          if (needsInit) this.runInit(); // the patches before it first
          needsInit = false;
          this.runExpr(c.seq);
          ranCode = true;
        }
      }
      if (needsInit) this.runInit();
      if (!(ranCode || needsInit) || !M._rt_session_tick(this.clock.roomNowUs())) break;
    }
    this.flushLogs();
    this.flush();
    this.armTick();
    this.persistHead();
    if (this.waitingTests && (this.committedSeq >= this.waitingTests.ev.seq || !this.pendingCount))
      this.runWaitingTests();
    const limit = this.o.reloadAfterModules ?? 500;
    if (limit && !this.isReloading && this.modules >= limit && !this.pendingCount)
      this.reload().catch((e) => this.emit('relay_error', { code: PB_ERR_INTERNAL, fatal: false,
                                                            message: `generation reload failed: ${e.message}` }));
  }

  // The relay signed a head of a later epoch: it began the room again (it
  // lost its database). Everything of the old epoch would be refused as
  // replays forever, so the host starts afresh — a new instance with an
  // empty registry at the new epoch's genesis (state is lost, as for a late
  // joiner) — and hands it the frames that arrived meanwhile, beginning
  // with the catch-up.
  reset(head) {
    if (this.resetQueue) return;
    this.resetQueue = [];
    const from = this.headSeq;
    this.freshness.newEpoch(head.epoch);
    const floor = { epoch: head.epoch, seq: 0 };
    Promise.all([this.instantiate(floor, { isVerifier: true }), this.instantiate(floor)]).then(([V2, M2]) => {
      this.V = V2;
      this.M = M2;
      this.held = [];
      if (this.canvas) this.attachCanvas(this.canvas.width, this.canvas.height);
      this.emit('reset', { from_seq: from, epoch: head.epoch, relay_head_seq: head.seq });
    }).catch((e) => {
      this.emit('relay_error', { code: PB_ERR_INTERNAL, fatal: false, message: `reset failed: ${e.message}` });
    }).finally(() => {
      const queued = this.resetQueue || [];
      this.resetQueue = null;
      for (const b of queued) this.receive(b);
    });
  }

  // Generation reload. Emscripten never frees a loaded module, so after
  // many patches the host starts a fresh instance in the background, gives
  // it the chain head and the PB_STATE cells, loads into it only the
  // patches that still define a current var (each verified again), and
  // switches to it between two frames, with nothing waiting to commit.
  // Resolves true if it switched, false if it had to give up this time
  // (a patch came in meanwhile; the next step tries again).
  async reload() {
    if (this.isReloading) return false;
    this.isReloading = true;
    try {
      const old = this.M;
      const gen0 = JSON.parse(old.UTF8ToString(old._rt_session_head()));
      // the old instance keeps running
      const M2 = await this.instantiate({ epoch: gen0.epoch, seq: 0 });
      if (this.M !== old || this.resetQueue || old._rt_session_pending_count()) return false;
      const gen = JSON.parse(old.UTF8ToString(old._rt_session_generation()));
      if (!gen || gen.error || gen.epoch !== gen0.epoch) return false;
      const e = M2.ccall('rt_session_adopt', 'number', ['number', 'string', 'number', 'string'],
                         [gen.seq, gen.hash, gen.committed_seq, gen.rand_id]);
      if (e) throw new Error(`the new instance refused the head (error ${e})`);
      for (const st of gen.states) {
        const p = M2._malloc(st.size || 1);
        M2.HEAPU8.set(old.HEAPU8.subarray(st.ptr, st.ptr + st.size), p);
        M2.ccall('pb_rt_state', 'number', ['string', 'number', 'number', 'number'],
                 [st.name, st.size, st.align, p]);
        M2._free(p);
      }
      for (const k of gen.patches) {
        const p = M2._malloc(k.len);
        M2.HEAPU8.set(old.HEAPU8.subarray(k.ptr, k.ptr + k.len), p);
        const sp = M2.stackSave();
        let r;
        try {
          r = JSON.parse(M2.UTF8ToString(M2._rt_session_reload_patch(p, k.len, k.seq)));
        } catch (err) {
          M2.stackRestore(sp);
          r = { ok: false, error: messageOf(err) };
        } finally {
          M2._free(p);
        }
        if (!r.ok) throw new Error(`seq ${k.seq} did not load again: ${r.error}`);
      }
      const before = this.modules;
      this.M = M2; // between two frames: nothing of the old instance runs again
      if (this.canvas) this.attachCanvas(this.canvas.width, this.canvas.height);
      this.generations++;
      this.emit('generation', { modules_before: before, modules: this.modules,
                                patches: gen.patches.length, states: gen.states.length });
      return true;
    } finally {
      this.isReloading = false;
    }
  }

  nextApplyUs() { return this.isClosed ? 0 : this.M._rt_session_next_apply_us(); }

  // A timer for the next queued patch's apply time, armed SPIN_MS early:
  // timers fire late by a millisecond or more, so the last stretch is a
  // precise sleep and a short busy wait on the room clock, bounded in real
  // time, and the swap lands within tens of µs of the apply time. tick
  // re-checks the room time, so a patch never commits early even if the
  // clock moved meanwhile.
  armTick() {
    if (this.timers.tick) this.clearTimeout(this.timers.tick);
    this.timers.tick = null;
    const next = this.nextApplyUs();
    if (!next) return;
    const ms = Math.max(0, Math.floor((next - this.clock.roomNowUs()) / 1000) - SPIN_MS);
    this.timers.tick = this.setTimeout(() => {
      this.timers.tick = null;
      commitTogether(this);
    }, ms);
  }

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

  // The table index of a var's current definition (0: undefined).
  varFn(name) { return this.M.ccall('rt_var_fn', 'number', ['string'], [name]); }
  varSeq(name) { return this.M.ccall('rt_session_var_seq', 'number', ['string'], [name]); }

  // pb_init of the patch that just committed, with rand() seeded for it.
  runInit() {
    this.M._rt_seed_rand(RAND_INIT, 0);
    return this.tryCall('pb_init', []);
  }

  // Calls a var through the registry. Returns {ok, value} or, after a trap
  // (the var's patch then rolled back), {ok: false, trap}.
  tryCall(name, args) {
    const M = this.M;
    const fn = this.varFn(name);
    if (!fn) return { ok: false, undefined: true };
    const sp = M.stackSave();
    this.context = { var: name, seq: this.varSeq(name) };
    this.emit('call', this.context);
    try {
      return { ok: true, value: M.wasmTable.get(fn)(...args) };
    } catch (e) {
      M.stackRestore(sp);
      return { ok: false, trap: this.trap(trappedVar(e, name), messageOf(e)) };
    } finally {
      this.context = { var: '', seq: 0 };
      this.flushLogs();
      this.flush();
    }
  }

  // Runs the expression of patch seq that just committed (its pb_expr;
  // docs/PROTOCOL.md § Expressions): once, with what it prints collected
  // for its ack. A trap rolls nothing back — the session puts the PB_STATE
  // cells back instead — and is reported with the var whose code trapped.
  // Emits 'expr' {seq, ok, value | var, error, out}.
  runExpr(seq) {
    const M = this.M;
    const fn = M._rt_session_expr_begin();
    if (!fn) return null;
    M._rt_seed_rand(RAND_EXPR, 0);
    const sp = M.stackSave();
    const first = this.lines.length;
    this.context = { var: 'pb_expr', seq };
    this.emit('call', this.context);
    let trap = null;
    try {
      M.wasmTable.get(fn)();
    } catch (e) {
      M.stackRestore(sp);
      trap = { var: trappedVar(e, 'pb_expr'), message: messageOf(e) };
    }
    M._rt_session_flush_output(); // a last line without its newline
    this.context = { var: '', seq: 0 };
    const out = this.lines.slice(first).map((l) => `${l.text}\n`).join('');
    const r = JSON.parse(M.ccall('rt_session_expr_end', 'string',
      ['number', 'string', 'string', 'string', 'number'],
      [trap ? 0 : 1, trap ? trap.var : '', trap ? trap.message : '', out, this.clock.roomNowUs()]));
    this.emit('expr', r);
    return r;
  }

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

  trap(varName, message) {
    const r = JSON.parse(this.M.ccall('rt_session_trap', 'string', ['string', 'string', 'number'],
                                      [varName, message, this.clock.roomNowUs()]));
    const t = { var: varName, seq: r.seq, vars: r.vars, message };
    this.emit('trap', t);
    return t;
  }

  // test_req {req, filter, seq}: the run is for seq, so it waits while
  // patches up to seq are queued for their apply time (at most
  // TEST_WAIT_MS; then it runs on what is committed, and the answer's seq
  // says so). timedOut {var, message}: a test an earlier instance hung in,
  // answered as timed out without running it.
  requestTests(ev, timedOut = null) {
    if (this.waitingTests) this.runWaitingTests(); // one run at a time
    this.waitingTests = { ev, timedOut };
    if (this.committedSeq >= (ev.seq || 0) || !this.pendingCount) {
      this.runWaitingTests();
      return;
    }
    this.timers.tests = this.setTimeout(() => this.runWaitingTests(), TEST_WAIT_MS);
  }

  runWaitingTests() {
    const w = this.waitingTests;
    this.waitingTests = null;
    if (this.timers.tests) this.clearTimeout(this.timers.tests);
    this.timers.tests = null;
    if (w && !this.isClosed) this.runTests(w.ev.req, w.ev.filter, w.ev.seq || 0, w.timedOut);
  }

  // Runs every test var (PB_TEST, deftest) whose name starts with filter,
  // in name order, and answers one test_result: pass; fail with the
  // check's file, line and expression; trap with the innermost var and its
  // patch (nothing rolls back); timeout for timedOut's var. Each test is
  // entered with a call event naming the run, so a watchdog that restarts
  // this instance can have the next one answer it.
  runTests(req, filter = '', seq = 0, timedOut = null) {
    const M = this.M;
    const names = JSON.parse(M.ccall('rt_session_tests', 'string', ['string'], [filter]));
    if (timedOut && timedOut.var.startsWith(TEST_PREFIX) && !names.includes(timedOut.var))
      names.push(timedOut.var);
    names.sort();
    M._rt_session_test_begin(req);
    const run = { req, filter, seq };
    const results = [];
    for (const full of names) {
      const r = timedOut && full === timedOut.var
        ? { status: PB_TEST_TIMEOUT, message: timedOut.message, us: 0 }
        : this.runTest(full, run);
      r.name = full.slice(TEST_PREFIX.length);
      r.ok = r.status === PB_TEST_PASS;
      results.push(r);
      M.ccall('rt_session_test_case', 'number',
              ['string', 'number', 'string', 'number', 'string', 'number', 'string', 'number'],
              [r.name, r.status, r.message || '', r.us, r.file || '', r.line || 0, r.var || '', r.var_seq || 0]);
    }
    M._rt_session_test_end(this.committedSeq);
    this.flushLogs();
    this.flush();
    this.emit('tests', { req, results });
    return results;
  }

  // One test: {status, message, us, file, line} or {status, var, var_seq}.
  runTest(full, run) {
    const M = this.M;
    const fn = this.varFn(full);
    M.ccall('rt_check_take', 'string', [], []);
    M._rt_seed_rand(RAND_TEST, 0);
    const sp = M.stackSave();
    const t0 = performance.now();
    let r;
    this.context = { var: full, seq: this.varSeq(full) };
    this.emit('call', { ...this.context, run });
    try {
      M.wasmTable.get(fn)();
      const expr = M.ccall('rt_check_take', 'string', [], []);
      r = expr ? { status: PB_TEST_FAIL, message: expr, file: M.ccall('rt_check_file', 'string', [], []),
                   line: M._rt_check_line() }
               : { status: PB_TEST_PASS };
    } catch (e) {
      M.stackRestore(sp);
      const v = trappedVar(e, full);
      r = { status: PB_TEST_TRAP, message: messageOf(e), var: v, var_seq: this.varSeq(v) };
    }
    this.context = { var: '', seq: 0 };
    r.us = Math.round((performance.now() - t0) * 1000);
    return r;
  }

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
    this.M._rt_seed_rand(RAND_FRAME, Math.floor(t * 1e6));
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
