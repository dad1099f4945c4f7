// calls.js — calling patch code, for the runtime host (host.js): a var
// through the registry, pb_init, an expression, and what a trap does
// (rt_session_trap rolls back the patch that defined the var whose code
// trapped). Each call is announced with the host's `call` event first,
// which the watchdog (watchdog.js) reads, and its output becomes log
// lines tagged with the var (host.lines, host.context).

// What rand() is seeded for before a call into patch code (runtime/rand.c).
export const RAND_INIT = 1;
export const RAND_EXPR = 2;
export const RAND_FRAME = 3;
export const RAND_TEST = 4;

// Which var's code trapped: the innermost pb__def.NAME frame of the stack
// (the ABI renames every var's definition so; docs/PATCH_ABI.md).
export function trappedVar(err, fallback) {
  const m = /pb__def\.([A-Za-z_][A-Za-z0-9_]*)/.exec(String(err && err.stack || ''));
  return m ? m[1] : fallback;
}

export function messageOf(err) {
  if (err && err.name && err.message) return `${err.name}: ${err.message}`;
  return String(err);
}

// The table index of a var's current definition (0: undefined).
export function varFn(h, name) { return h.M.ccall('rt_var_fn', 'number', ['string'], [name]); }
export function varSeq(h, name) { return h.M.ccall('rt_session_var_seq', 'number', ['string'], [name]); }

// pb_init of the patch that just committed, with rand() seeded for it.
export function runInit(h) {
  h.M._rt_seed_rand(RAND_INIT, 0);
  return tryCall(h, 'pb_init', []);
}

// Calls a var through the registry. Returns {ok, value} or, after a trap
// (the var's patch then rolled back), {ok: false, trap}.
export function tryCall(h, name, args) {
  const M = h.M;
  const fn = varFn(h, name);
  if (!fn) return { ok: false, undefined: true };
  const sp = M.stackSave();
  h.context = { var: name, seq: varSeq(h, name) };
  h.emit('call', h.context);
  try {
    return { ok: true, value: M.wasmTable.get(fn)(...args) };
  } catch (e) {
    M.stackRestore(sp);
    return { ok: false, trap: trap(h, trappedVar(e, name), messageOf(e)) };
  } finally {
    h.context = { var: '', seq: 0 };
    h.flushLogs();
    h.flush();
  }
}

// Runs the expression of patch seq that just committed (its pb_expr;
// docs/PROTOCOL.md § Expressions): once, with what it prints collected
// for its ack. A trap rolls nothing back — the session puts the PB_STATE
// cells back instead — and is reported with the var whose code trapped.
// Emits 'expr' {seq, ok, value | var, error, out}.
export function runExpr(h, seq) {
  const M = h.M;
  const fn = M._rt_session_expr_begin();
  if (!fn) return null;
  M._rt_seed_rand(RAND_EXPR, 0);
  const sp = M.stackSave();
  const first = h.lines.length;
  h.context = { var: 'pb_expr', seq };
  h.emit('call', h.context);
  let t = null;
  try {
    M.wasmTable.get(fn)();
  } catch (e) {
    M.stackRestore(sp);
    t = { var: trappedVar(e, 'pb_expr'), message: messageOf(e) };
  }
  M._rt_session_flush_output(); // a last line without its newline
  h.context = { var: '', seq: 0 };
  const out = h.lines.slice(first).map((l) => `${l.text}\n`).join('');
  const r = JSON.parse(M.ccall('rt_session_expr_end', 'string',
    ['number', 'string', 'string', 'string', 'number'],
    [t ? 0 : 1, t ? t.var : '', t ? t.message : '', out, h.clock.roomNowUs()]));
  h.emit('expr', r);
  return r;
}

// Rolls back the patch that defined varName; emits and returns the trap.
export function trap(h, varName, message) {
  const r = JSON.parse(h.M.ccall('rt_session_trap', 'string', ['string', 'string', 'number'],
                                 [varName, message, h.clock.roomNowUs()]));
  const t = { var: varName, seq: r.seq, vars: r.vars, message };
  h.emit('trap', t);
  return t;
}
