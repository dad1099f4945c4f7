// generation.js — the host starting a new wasm instance in place of the
// old: a reset (the relay began the room again at a later epoch: both
// instances afresh) and a generation reload (the patch instance only, with
// its state and the patches still in use; runtime/README.md § Generation
// reload).
import { messageOf } from './calls.js';
import { instantiate } from './handover.js';
import { PB_ERR_INTERNAL } from './pb_protocol.js';

// The relay signed a head of a later epoch: it began the room again (it
// lost its database). Everything of the old epoch would be refused as
// replays forever, so the host starts afresh — a new instance with an
// empty registry at the new epoch's genesis (state is lost, as for a late
// joiner) — and hands it the frames that arrived meanwhile (h.resetQueue),
// beginning with the catch-up.
export function reset(h, head) {
  if (h.resetQueue) return;
  h.resetQueue = [];
  const from = h.headSeq;
  h.freshness.newEpoch(head.epoch);
  const floor = { epoch: head.epoch, seq: 0 };
  Promise.all([instantiate(h, floor, { isVerifier: true }), instantiate(h, floor)]).then(([V2, M2]) => {
    h.V = V2;
    h.M = M2;
    h.held = [];
    if (h.canvas) h.attachCanvas(h.canvas.width, h.canvas.height);
    h.emit('reset', { from_seq: from, epoch: head.epoch, relay_head_seq: head.seq });
  }).catch((e) => {
    h.emit('relay_error', { code: PB_ERR_INTERNAL, fatal: false, message: `reset failed: ${e.message}` });
  }).finally(() => {
    const queued = h.resetQueue || [];
    h.resetQueue = null;
    for (const b of queued) h.receive(b);
  });
}

// Generation reload. Emscripten never frees a loaded module, so after
// many patches the host starts a fresh instance in the background, gives
// it the chain head and the PB_STATE cells, loads into it only the
// patches that still define a current var (each verified again), and
// switches to it between two frames, with nothing waiting to commit.
// Resolves true if it switched, false if it had to give up this time
// (a patch came in meanwhile; the next step tries again).
export async function reload(h) {
  if (h.isReloading) return false;
  h.isReloading = true;
  try {
    const old = h.M;
    const gen0 = JSON.parse(old.UTF8ToString(old._rt_session_head()));
    // the old instance keeps running
    const M2 = await instantiate(h, { epoch: gen0.epoch, seq: 0 });
    if (h.M !== old || h.resetQueue || old._rt_session_pending_count()) return false;
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
    const before = h.modules;
    h.M = M2; // between two frames: nothing of the old instance runs again
    if (h.canvas) h.attachCanvas(h.canvas.width, h.canvas.height);
    h.generations++;
    h.emit('generation', { modules_before: before, modules: h.modules,
                           patches: gen.patches.length, states: gen.states.length });
    return true;
  } finally {
    h.isReloading = false;
  }
}
