// player.js — a recorded session played back in this page's (or
// process's) own runtime: the room as it was at any patch, and the session
// played at any speed. The editor page's timeline scrubs with it in its
// preview worker, the exported HTML file plays with it, the tests and
// benchmarks drive it in node. Nothing here talks to a relay: it is given
// the session's patch frames, verified by the runtime like any others.
//
// "The room at patch n" is a runtime that committed patches 1..n in order,
// ran every pb_init and expression among them (runtime/host.js), with
// rand() seeded per patch (runtime/rand.c) — what a fresh runtime given
// those patches has (docs/ARCHITECTURE.md § Determinism). To get there
// fast in a long session the player indexes it once: an indexing runtime
// commits every patch in order and, every `every` patches, keeps a
// checkpoint — the chain head, the PB_STATE cells and which patches define
// the vars then (host.generation()). A seek starts a fresh instance from
// the checkpoint at or before n (the patches that define vars, verified
// and loaded again) and commits the few patches after it; a seek forward
// of a few patches only commits those. Drawing frames never touches the
// indexer, so checkpoints hold only what patches built.
//
//   const p = new HistoryPlayer({ createRuntime, moduleArgs, room, key, epoch, tempo });
//   p.setPatches(frames);          // patch frames, seq 1.. in order
//   await p.index(onProgress);     // checkpoints (seek works before, slower)
//   await p.seek(n);               // p.host: the room at patch n
//   p.drawAt(t);                   // pb_frame at room time t (s)
import { loadGeneration } from '../../runtime/generation.js';
import { PASS } from '../../runtime/handover.js';
import { RuntimeHost } from '../../runtime/host.js';
import { PB_ERR_PREPARE } from '../../runtime/pb_protocol.js';
import { decode } from './msgpack.js';
import { readStatement } from './proto.js';

// Runtimes in the player commit what they are given at once: every patch
// is due on this clock (µs; beyond any apply time, within double
// precision).
const FAR_FUTURE_US = 4e15;
const clock = {
  offsetUs: 0, uncertaintyUs: 0, rttUs: 0, isSynced: true,
  roomNowUs: () => FAR_FUTURE_US, now: () => FAR_FUTURE_US,
  seed() {}, atLeast() {}, ping: () => FAR_FUTURE_US,
  sample: () => ({}),
};

// The statement of a patch frame (proto.js readStatement), with the names
// it defines and its source, as the timeline shows it.
export function describePatch(bytes) {
  const f = decode(bytes);
  const st = readStatement(f.stmt);
  return { ...st, vars: st.symbols.map((x) => x.name), source: typeof f.source === 'string' ? f.source : '' };
}

export class HistoryPlayer {
  // opts: createRuntime, moduleArgs (the Emscripten factory and its
  // arguments, as for RuntimeHost), room, key (hex: the relay key the
  // patches are checked against), epoch (the room's: its seq 1 links to
  // that epoch's genesis; 0 from before epochs), tempo {tempo_bpm, quantum}, canvas
  // {width, height}, every (patches between checkpoints, default 8: a seek
  // walks at most 7 patches from one).
  constructor(opts) {
    this.o = opts;
    this.every = opts.every || 8;
    this.frames = [null];     // by seq: patch frame bytes
    this.info = [null];       // by seq: describePatch
    this.checkpoints = [{ seq: 0 }]; // seq 0: the empty room
    this.indexed = 0;         // checkpoints are good up to here
    this.host = null;         // the room at this.at
    this.at = -1;
    this.module = null;       // the compiled main module, shared
  }

  get length() { return this.frames.length - 1; }

  setPatches(frames) {
    this.frames = [null];
    this.info = [null];
    this.append(frames);
  }

  // More of the session: the patches after the ones it has, in order.
  append(frames) {
    for (const f of frames) {
      const p = describePatch(f);
      if (p.seq !== this.frames.length)
        throw new Error(`patch ${this.frames.length} of the session is seq ${p.seq}`);
      this.frames.push(f);
      this.info.push(p);
    }
  }

  // A new runtime instance with nothing in it, on the player's clock; the
  // main module is compiled once and instantiated each time.
  async freshHost() {
    const args = { ...(this.o.moduleArgs || {}) };
    if (typeof WebAssembly !== 'undefined' && args.wasmBinary) {
      this.module ??= await WebAssembly.compile(args.wasmBinary);
      const mod = this.module;
      args.instantiateWasm = (imports, done) => {
        WebAssembly.instantiate(mod, imports).then((inst) => done(inst, mod));
        return {};
      };
      delete args.wasmBinary;
    }
    const host = new RuntimeHost({
      createRuntime: this.o.createRuntime, moduleArgs: args, clock,
      link: { room: this.o.room, key: this.o.key, token: '', url: '' },
      reloadAfterModules: 0, // the player starts instances of its own
      // every instance starts at the room's epoch; nothing is kept
      store: { load: () => ({ epoch: this.o.epoch || 0, seq: 0, hash: '' }), save() {} },
      limits: { logLinesPerSecond: 1000, logBurst: 1000 },
      setTimeout: () => 0, clearTimeout: () => {}, // no timers: it is driven
    });
    await host.start();
    host.room = { tempo_bpm: this.o.tempo?.tempo_bpm || 0, quantum: this.o.tempo?.quantum || 0 };
    return host;
  }

  // A fresh host carrying on from a checkpoint: its verifier instance
  // takes the checkpoint's chain head (the patches before it were
  // verified when they were indexed), the patch instance its state and
  // the patches in use (each verified again as it loads).
  async restore(cp) {
    const host = await this.freshHost();
    if (cp.seq) {
      const e = host.V.ccall('rt_session_adopt', 'number', ['number', 'string', 'number', 'string'],
                             [cp.seq, cp.hash, cp.committed_seq, cp.rand_id]);
      if (e) throw new Error(`the verifier refused checkpoint ${cp.seq} (error ${e})`);
      loadGeneration(host.M, cp, (k) => this.frames[k.seq]);
    }
    return host;
  }

  // Commits patches host.committedSeq + 1 .. n in host, in order, each
  // with its pb_init or expression. A module that does not load here did
  // not in the room either (PB_ERR_PREPARE: the chain moves on without its
  // vars); anything else refused throws, with the patch's seq.
  feed(host, n) {
    for (let s = host.headSeq + 1; s <= n; s++) {
      const ev = host.receive(this.frames[s]);
      if (!ev.ok && ev.code !== PB_ERR_PREPARE)
        throw Object.assign(new Error(`patch ${s}: ${ev.error || 'refused'} (code ${ev.code})`),
                            { seq: s, code: ev.code });
    }
  }

  // Checks frames in order as a runtime would — signature, statement,
  // hashes, chain from the room's epoch — in a verifier instance
  // (runtime/verifier.c), which holds the key and the chain and where no
  // patch code is ever loaded or run: {good (how many verify from the
  // first), failure ({index, seq, code, error}, or null), headHash}.
  async verify(frames, onProgress) {
    const host = await this.freshHost();
    const V = host.V;
    let good = 0;
    let failure = null;
    for (const [i, f] of frames.entries()) {
      const p = V._malloc(f.length || 1);
      V.HEAPU8.set(f, p);
      const r = JSON.parse(V.UTF8ToString(V._rt_session_receive(p, f.length, FAR_FUTURE_US)));
      V._free(p);
      if (r.t !== 'patch' || !r.ok || V._rt_session_pass() !== PASS.FRAME) {
        failure = { index: i + 1, seq: r.seq || 0, code: r.code || 0,
                    error: r.t === 'patch' ? r.error : `not a patch (${r.error || r.t})` };
        break;
      }
      good++;
      if (onProgress && i % 256 === 255) {
        onProgress(i + 1);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    const headHash = JSON.parse(V.UTF8ToString(V._rt_session_head())).hash || '';
    host.close();
    return { good, failure, headHash };
  }

  checkpointAt(n) {
    let best = this.checkpoints[0];
    for (const c of this.checkpoints) if (c.seq <= n && c.seq > best.seq) best = c;
    return best;
  }

  // Builds the checkpoints: every patch committed once, in order. Yields to
  // the caller's event loop between stretches (onProgress(done, total)),
  // so a page stays responsive; a fresh instance every few hundred modules
  // keeps memory bounded (loaded modules are never freed).
  async index(onProgress) {
    let host = await this.restore(this.checkpointAt(this.indexed));
    let loaded = 0;
    for (let s = host.committedSeq + 1; s <= this.length; s++) {
      this.feed(host, s);
      loaded++;
      if (s % this.every === 0 || s === this.length) {
        const cp = host.generation({ withFrames: false });
        if (cp && !this.checkpoints.some((c) => c.seq === s)) this.checkpoints.push({ ...cp, seq: s });
        this.indexed = s;
        onProgress?.(s, this.length);
        await new Promise((r) => setTimeout(r, 0));
        if (loaded >= 400) { // a fresh instance from here
          host.close();
          host = await this.restore(this.checkpointAt(s));
          loaded = 0;
        }
      }
    }
    host.close();
    this.checkpoints.sort((a, b) => a.seq - b.seq);
  }

  // Makes this.host the room at patch n (0: the empty room). Forward by a
  // few patches it commits them in the instance it has; otherwise it starts
  // from the checkpoint at or before n.
  async seek(n) {
    n = Math.max(0, Math.min(this.length, n | 0));
    const cp = this.checkpointAt(n);
    const canWalk = this.host && this.at <= n && this.at >= cp.seq && !this.drawnSince;
    if (!canWalk) {
      const host = await this.restore(cp);
      this.host?.close();
      this.host = host;
      this.at = cp.seq;
      if (this.o.canvas) host.attachCanvas(this.o.canvas.width, this.o.canvas.height);
    }
    this.feed(this.host, n);
    this.at = n;
    this.drawnSince = false;
    return this.host;
  }

  // pb_frame for room time t (s) in the room as seeked. A frame may change
  // state, so the next seek starts from a checkpoint rather than walk on
  // from a state no fresh runtime would have.
  drawAt(t) {
    if (!this.host) return { ok: false, undefined: true };
    this.drawnSince = true;
    return this.host.drawAt(t);
  }

  // Plays on from the current patch: commits every patch due by room time
  // tUs (the session's own times), for a caller that draws frames as it
  // goes (an exported page playing the session).
  playUntil(tUs) {
    let n = this.at;
    while (n < this.length && this.info[n + 1].applyUs <= tUs) n++;
    if (n > this.at) {
      this.feed(this.host, n);
      this.at = n;
    }
    return n;
  }

  close() {
    this.host?.close();
    this.host = null;
  }
}
