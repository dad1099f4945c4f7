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
    const gen = generationOf(old);
    if (!gen || gen.epoch !== gen0.epoch) return false;
    loadGeneration(M2, gen);
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

// What a fresh instance needs to carry on from where instance M is
// (runtime/reload.c): {epoch, seq, hash, committed_seq, rand_id, states:
// [{name, size, align, bytes}], patches: [{seq, bytes}]}, the bytes copied
// out of M (withFrames false: patches [{seq}] only, for a caller that has
// the frames: the history player's checkpoints); null while patches wait
// for their apply time.
export function generationOf(M, { withFrames = true } = {}) {
  const gen = JSON.parse(M.UTF8ToString(M._rt_session_generation()));
  if (!gen || gen.error) return null;
  const copy = (p, n) => M.HEAPU8.slice(p, p + n);
  return {
    epoch: gen.epoch, seq: gen.seq, hash: gen.hash, committed_seq: gen.committed_seq, rand_id: gen.rand_id,
    states: gen.states.map((st) => ({ name: st.name, size: st.size, align: st.align, bytes: copy(st.ptr, st.size) })),
    patches: gen.patches.map((k) => (withFrames ? { seq: k.seq, bytes: copy(k.ptr, k.len) } : { seq: k.seq })),
  };
}

// Gives M2, a fresh instance at gen's epoch, what gen (generationOf) says:
// the chain head, the PB_STATE cells, and the patches that define the
// current vars, each verified again, loaded and committed; frameOf gives a
// patch's frame (default: the bytes gen carries). Throws if one does not
// load.
export function loadGeneration(M2, gen, frameOf = (k) => k.bytes) {
  const e = M2.ccall('rt_session_adopt', 'number', ['number', 'string', 'number', 'string'],
                     [gen.seq, gen.hash, gen.committed_seq, gen.rand_id]);
  if (e) throw new Error(`the new instance refused the head (error ${e})`);
  for (const st of gen.states) {
    const p = M2._malloc(st.size || 1);
    M2.HEAPU8.set(st.bytes, p);
    M2.ccall('pb_rt_state', 'number', ['string', 'number', 'number', 'number'], [st.name, st.size, st.align, p]);
    M2._free(p);
  }
  for (const k of gen.patches) {
    const bytes = frameOf(k);
    const p = M2._malloc(bytes.length || 1);
    M2.HEAPU8.set(bytes, p);
    const sp = M2.stackSave();
    let r;
    try {
      r = JSON.parse(M2.UTF8ToString(M2._rt_session_reload_patch(p, bytes.length, k.seq)));
    } catch (err) {
      M2.stackRestore(sp);
      r = { ok: false, error: messageOf(err) };
    } finally {
      M2._free(p);
    }
    if (!r.ok) throw new Error(`seq ${k.seq} did not load again: ${r.error}`);
  }
}
