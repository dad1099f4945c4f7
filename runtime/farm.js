// farm.js — a runtime's side of the device farm (docs/PROTOCOL.md § Device
// testing), shared by the node runtime and the browser worker like host.js:
// what the device says about itself in hello, the picture it draws for a
// snapshot_req, and the test run it answers a test_req with. host.js
// calls these; the frames are built in C (runtime/device.c, report.c)
// like every frame the runtime sends.
import { messageOf, RAND_TEST, trappedVar, varFn, varSeq } from './calls.js';
import { encodePNG } from './png.js';
import { PB_MAX_NAME_BYTES, PB_TEST_FAIL, PB_TEST_PASS, PB_TEST_TIMEOUT, PB_TEST_TRAP } from './pb_protocol.js';

const TEST_PREFIX = 'pb_test__';
// How long a test request waits for the patches queued before it to
// commit (they wait for their apply time) before running on what is there.
const TEST_WAIT_MS = 5000;

// Tiny modules that only validate where the feature is there (one
// instruction of it each: v128.const; memory.copy; a shared memory with
// an atomic load; try/end; return_call).
const PROBES = {
  simd: [0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253,
         98, 11],
  'bulk-memory': [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 10, 14, 1, 12, 0, 65,
                  0, 65, 0, 65, 0, 252, 10, 0, 0, 11],
  threads: [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 5, 4, 1, 3, 1, 1, 10, 11, 1, 9, 0, 65, 0,
            254, 16, 2, 0, 26, 11],
  exceptions: [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 8, 1, 6, 0, 6, 64, 25, 11, 11],
  'tail-call': [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 10, 6, 1, 4, 0, 18, 0, 11],
};

// The wasm features this engine has, comma-separated ("bigint,simd,...").
export function wasmFeatures() {
  const has = [];
  if (typeof BigInt64Array === 'function') has.push('bigint');
  for (const [name, bytes] of Object.entries(PROBES)) {
    let ok = false;
    try { ok = WebAssembly.validate(new Uint8Array(bytes)); } catch { ok = false; }
    // threads also need memory that can be shared with another thread
    if (ok && (name !== 'threads' || typeof SharedArrayBuffer === 'function')) has.push(name);
  }
  return has.sort().join(',');
}

// A hello's device_id: 16 random bytes in hex. Whatever restarts a runtime
// (the page's or the node runtime's watchdog) picks one when it starts and
// gives it to every runtime it starts, so the relay can tell that a new
// connection is the same device back and drop the old one
// (docs/PROTOCOL.md § Device testing). Not crypto.randomUUID: a page on
// http://LAN-ADDRESS is not a secure context.
export function newDeviceId() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

// Tells the session what to say in hello: its device_id (host.deviceId),
// device (the host's opts.device: label — else the link's &label= —,
// platform, screen_w, screen_h, dpr, ram_bytes, cores) and the canvas the
// host draws on.
export function describeDevice(host) {
  const d = host.o.device || {};
  const c = host.canvas;
  host.M.ccall('rt_session_set_device', 'number',
    ['string', 'string', 'string', 'string', 'number', 'number', 'number', 'number', 'number', 'number', 'number'],
    [host.deviceId, String(d.label || host.link.label || '').slice(0, PB_MAX_NAME_BYTES), String(d.platform || ''),
     d.features ?? wasmFeatures(),
     c ? c.width : 0, c ? c.height : 0, d.screen_w || 0, d.screen_h || 0, d.dpr || 0, d.ram_bytes || 0,
     d.cores || 0]);
}

// How far ahead a snapshot may be asked for: a request for a later room
// time is answered with an error rather than kept for minutes.
const MAX_AHEAD_US = 60e6;

// snapshot_req {req, at_us, editor_id}: when the room clock reaches at_us,
// draw pb_frame for that room time on the canvas and answer with the
// picture as PNG (or with why there is none). A runtime without a canvas
// does not answer. Resolves once answered.
export async function answerSnapshot(host, ev) {
  if (!host.canvas) return;
  const at = ev.at_us || host.clock.roomNowUs();
  const ahead = at - host.clock.roomNowUs();
  const send = (png, error, c) => {
    const M = host.M;
    const p = png ? M._malloc(png.length) : 0;
    if (png) M.HEAPU8.set(png, p);
    M.ccall('rt_session_snapshot', 'number',
      ['number', 'number', 'number', 'number', 'number', 'number', 'number', 'number', 'string'],
      [ev.req, ev.editor_id, host.committedSeq, at, c ? c.width : 0, c ? c.height : 0, p, png ? png.length : 0,
       error || '']);
    if (p) M._free(p);
    host.flush();
  };
  if (ahead > MAX_AHEAD_US) {
    send(null, `room time ${(at / 1e6).toFixed(3)} is ${(ahead / 1e6).toFixed(0)} s ahead; ` +
               `a snapshot may be asked for at most ${MAX_AHEAD_US / 1e6} s ahead`);
    return;
  }
  if (ahead > 0) await new Promise((resolve) => host.setTimeout(resolve, Math.ceil(ahead / 1000)));
  if (host.isClosed) return;
  host.step(); // the patches due by then are in
  const r = host.drawAt(at / 1e6);
  if (!r.ok) {
    send(null, r.undefined ? 'pb_frame is not defined' : `pb_frame trapped: ${r.trap.message}`);
    return;
  }
  const c = host.canvas;
  const rgba = c.pixels().slice(); // a copy: memory may grow while encoding
  let png;
  try {
    png = await encodePNG(rgba, c.width, c.height);
  } catch (e) {
    send(null, `cannot encode the picture: ${e.message}`);
    return;
  }
  if (!host.isClosed) send(png, '', c);
}

// test_req {req, filter, seq}: the run is for seq, so it waits while
// patches up to seq are queued for their apply time (at most
// TEST_WAIT_MS; then it runs on what is committed, and the answer's seq
// says so). timedOut {var, message}: a test an earlier instance hung in,
// answered as timed out without running it. The host calls
// runWaitingTests again after every commit.
export function requestTests(host, ev, timedOut = null) {
  if (host.waitingTests) runWaitingTests(host); // one run at a time
  host.waitingTests = { ev, timedOut };
  if (host.committedSeq >= (ev.seq || 0) || !host.pendingCount) {
    runWaitingTests(host);
    return;
  }
  host.timers.tests = host.setTimeout(() => runWaitingTests(host), TEST_WAIT_MS);
}

export function runWaitingTests(host) {
  const w = host.waitingTests;
  host.waitingTests = null;
  if (host.timers.tests) host.clearTimeout(host.timers.tests);
  host.timers.tests = null;
  if (w && !host.isClosed) runTests(host, w.ev.req, w.ev.filter, w.ev.seq || 0, w.timedOut);
}

// Runs every test var (PB_TEST, deftest) whose name starts with filter,
// in name order, and answers one test_result: pass; fail with the
// check's file, line and expression; trap with the innermost var and its
// patch (nothing rolls back); timeout for timedOut's var. Each test is
// entered with a call event naming the run, so a watchdog that restarts
// this instance can have the next one answer it.
export function runTests(host, req, filter = '', seq = 0, timedOut = null) {
  const M = host.M;
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
      : runTest(host, full, run);
    r.name = full.slice(TEST_PREFIX.length);
    r.ok = r.status === PB_TEST_PASS;
    results.push(r);
    M.ccall('rt_session_test_case', 'number',
            ['string', 'number', 'string', 'number', 'string', 'number', 'string', 'number'],
            [r.name, r.status, r.message || '', r.us, r.file || '', r.line || 0, r.var || '', r.var_seq || 0]);
  }
  M._rt_session_test_end(host.committedSeq);
  host.flushLogs();
  host.flush();
  host.emit('tests', { req, results });
  return results;
}

// One test: {status, message, us, file, line} or {status, var, var_seq}.
function runTest(host, full, run) {
  const M = host.M;
  const fn = varFn(host, full);
  M.ccall('rt_check_take', 'string', [], []);
  M._rt_seed_rand(RAND_TEST, 0);
  const sp = M.stackSave();
  const t0 = performance.now();
  let r;
  host.context = { var: full, seq: varSeq(host, full) };
  host.emit('call', { ...host.context, run });
  try {
    M.wasmTable.get(fn)();
    const expr = M.ccall('rt_check_take', 'string', [], []);
    r = expr ? { status: PB_TEST_FAIL, message: expr, file: M.ccall('rt_check_file', 'string', [], []),
                 line: M._rt_check_line() }
             : { status: PB_TEST_PASS };
  } catch (e) {
    M.stackRestore(sp);
    const v = trappedVar(e, full);
    r = { status: PB_TEST_TRAP, message: messageOf(e), var: v, var_seq: varSeq(host, v) };
  }
  host.context = { var: '', seq: 0 };
  r.us = Math.round((performance.now() - t0) * 1000);
  return r;
}
