// watchdog.js — the one watchdog of a runtime that runs patch code on a
// thread of its own: a browser Web Worker watched by its page
// (web/src/browser-runtime.js) and the node runtime's worker thread watched
// by the CLI's main thread (runtime/node/patchbay-runtime.mjs).
//
// A patch that never returns stops its thread: no more beats. Which code
// it is stuck in comes from the host's `call` event ({var, seq}, emitted
// as the host enters patch code: pb_frame, pb_init, a test, any call), so
// the watchdog names the var and patch that hang — never a guess — and the
// next thread takes exactly that patch back as it commits (the host's
// `stopped` option).
//
// The watched side (reportTo) posts {t:'call', var, seq, run} when patch
// code is entered (run: the test run {req, filter, seq} a test is part of,
// so that the next thread can answer it) and {t:'beat', ...} when its
// thread is free; a call is posted once
// per beat (pb_frame runs every frame: the watchdog needs to hear of it
// once, not sixty times a second). The watching side (Watchdog) reads
// those messages and says, when asked, whether and where the thread hangs.

// Called on the watched thread: post(message) sends to the watchdog.
// Returns {beat(extra)}, to be called whenever the thread is free.
export function reportTo(host, post) {
  let last = '';
  host.on('call', (c) => {
    const key = `${c.seq} ${c.var}`;
    if (key === last) return;
    last = key;
    post({ t: 'call', var: c.var, seq: c.seq, ...(c.run ? { run: c.run } : {}) });
  });
  return {
    beat(extra = {}) {
      last = '';
      post({ ...extra, t: 'beat' });
    },
  };
}

export class Watchdog {
  // limitMs: how long the thread may stay in one call; now(): ms.
  constructor({ limitMs, now = () => performance.now() }) {
    this.limitMs = limitMs;
    this.now = now;
    this.restart();
  }

  // A new thread: unarmed until it first beats or enters patch code
  // (loading the wasm takes a while and is not patch code).
  restart() {
    this.lastBeat = 0;
    this.calling = null;
  }

  // A message from the watched thread; true if it was the watchdog's.
  read(m) {
    if (m.t === 'beat') {
      this.lastBeat = this.now();
      this.calling = null;
      return true;
    }
    if (m.t === 'call') {
      // entering patch code arms the watchdog too: a patch can hang
      // before the first beat was due
      this.calling = { var: m.var, seq: m.seq, run: m.run || null };
      if (!this.lastBeat) this.lastBeat = this.now();
      return true;
    }
    return false;
  }

  // Arms the watchdog without a beat (say, the room was joined).
  arm() {
    if (!this.lastBeat) this.lastBeat = this.now();
  }

  // null while the thread is fine; else {var, seq, quietMs, run}: the call
  // it is stuck in (var '' and seq 0 when it is not in patch code; run the
  // test run, if it is a test).
  check() {
    if (!this.lastBeat) return null;
    const quietMs = this.now() - this.lastBeat;
    if (quietMs < this.limitMs) return null;
    return { var: this.calling?.var || '', seq: this.calling?.seq || 0, quietMs, run: this.calling?.run || null };
  }

  // For the next thread's host: the test run a hung test was part of
  // (its resumeTests option), or null.
  static resume(c, message) {
    return c && c.run ? { ...c.run, var: c.var, message } : null;
  }
}
