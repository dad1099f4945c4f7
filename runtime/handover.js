// handover.js — the host's two wasm instances and a frame's way between
// them (runtime/README.md § The verifier instance): every frame goes to
// the verifier instance (host.V, runtime/verifier.c) first, and only what
// it passes reaches the patch instance (host.M), where patch code runs.
import { messageOf } from './calls.js';
import { PB_ERR_PREPARE, PB_MAX_FRAME_BYTES } from './pb_protocol.js';

// What the verifier lets through to the patch instance (rt_session_pass).
export const PASS = { NONE: 0, FRAME: 1, ITEMS: 2, HOLD: 3, END: 4, DROP: 5 };

// A new wasm instance with an open session (no patches yet), at floor
// ({epoch, seq, hash}: what this runtime must not go below; default: the
// persisted one); with isVerifier, a verifier instance (runtime/verifier.c):
// every frame goes to it first, it holds the key, the chain and the
// floor, and no patch code ever runs in its memory.
export async function instantiate(h, floor = h.freshness.floor, { isVerifier = false } = {}) {
  const print = (level) => (text) => h.lines.push({ level, text, ...h.context });
  const M = await h.o.createRuntime({ ...(h.o.moduleArgs || {}),
                                      print: print('info'), printErr: print('error') });
  const l = h.o.limits || {};
  const r = JSON.parse(M.ccall('rt_session_open', 'string', ['string', 'string', 'number'],
                               [h.link.room, h.link.key, l.maxModuleBytes || 0]));
  if (!r.ok)
    throw Object.assign(new Error(`cannot open the runtime session for room "${h.link.room}": ${r.error}`),
                        { code: r.code });
  if (isVerifier ? M._rt_session_verify_only() : M._rt_session_behind_verifier())
    throw new Error('cannot open the runtime session behind a verifier');
  M._rt_session_set_log_limits(l.logLinesPerSecond || 0, l.logBurst || 0, l.logMaxBytes || 0);
  if (floor) {
    const e = M.ccall('rt_session_floor', 'number', ['number', 'number', 'string'],
                      [floor.epoch, floor.seq, floor.hash || '']);
    if (e) throw new Error(`the runtime session refused the floor ${JSON.stringify(floor)} (error ${e})`);
  }
  M._rt_session_set_stale(h.freshness.staleSinceUs); // its acks say so too
  return M;
}

// The account of a frame: the verifier's, with the patch instance's (how
// it prepared) for what it passed.
function merged(v, m) {
  // (verify_us: both instances' share of verifying; created_us, which
  // bounds the room clock, as the verifier read it: the patch instance's
  // memory is patch code's)
  const signed = (x, from) => (from.created_us === undefined ? x : { ...x, created_us: from.created_us });
  if (v.t === 'patch') return signed(m.ok ? { ...m, verify_us: m.verify_us + v.verify_us } : m, v);
  if (v.t !== 'history') return v;
  const mi = m.items || [];
  let k = 0;
  const items = (v.items || []).map((it) => (it.ok ? signed(mi[k++] || it, it) : it));
  const r = { ...v, items, verified: items.filter((it) => it.ok).length,
              failed: items.filter((it) => !it.ok).length };
  if (m.refused) r.refused = m.refused;
  r.resync = v.resync || m.resync;
  if (!r.resync) delete r.resync;
  return r;
}

// Handles one frame from the relay: first the verifier, then — only what
// it passes — the patch instance; h.onFrame sees the account of it, then
// h.step() commits what is due. Returns the account.
export function receive(h, bytes) {
  const V = h.V;
  if (bytes.length > PB_MAX_FRAME_BYTES) {
    // refused before anything reaches wasm memory, which never shrinks
    const ev = JSON.parse(V.UTF8ToString(V._rt_session_refuse(bytes.length)));
    h.onFrame(ev);
    h.step();
    return ev;
  }
  const now = h.clock.roomNowUs();
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
  // batches, and what passed meanwhile behind them, wait in h.held.
  let ev = v;
  if (pass === PASS.NONE) {
    h.onFrame(v);
  } else if (pass === PASS.DROP) {
    for (const x of h.held) if (x.v.t !== 'head') h.onFrame(x.v);
    h.held = [];
    h.onFrame(v);
  } else if (pass === PASS.HOLD || pass === PASS.END || h.held.length) {
    h.held.push({ bytes: passed, v });
    if (v.t === 'head') h.onFrame(v); // its freshness is now
    if (pass !== PASS.END) return v;
    const held = h.held;
    h.held = [];
    for (const x of held) {
      const e = merged(x.v, deliver(h, x.bytes));
      if (x.v.t !== 'head') h.onFrame(ev = e);
    }
  } else {
    ev = merged(v, deliver(h, passed));
    h.onFrame(ev);
  }
  h.step();
  return ev;
}

// Hands a frame the verifier passed to the patch instance; its answer.
function deliver(h, bytes) {
  const M = h.M;
  const now = h.clock.roomNowUs();
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
