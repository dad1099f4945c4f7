// scrub.js — the editor page's timeline (editor.html): the room's patches
// on a time axis (src/timeline.js), one mark per patch coloured by its
// author. Dragging the handle shows the room as it was at that patch in
// this page's own runtime (runtime-worker.js plays the history in an
// instance of its own: the room and its devices are not touched), with
// that patch's source; "live" goes back to the room as it runs now;
// "restore this version" evaluates that patch's source again, as a new
// patch of the room (an undo that is itself recorded).
//
// The marks come from the statements the page has anyway (the state
// catch-up brings every statement from seq 1). The patches themselves,
// with their modules, are asked for once, at the first scrub, with a
// history_req (mode range) and handed to the worker in seq order; live
// patches follow them.
//
//   const s = new EditorScrub({ els, runtime, send, nextReq, spreadOf, onStatus });
//   s.add(item)        a patch or catch-up item {stmt, sig, module, source}
//   s.onFrame(f)       true if f was the answer to its request (history, diag, error)
//   s.seek(seq)  s.live()  s.restore()
import { Timeline } from './timeline.js';
import { clock, frame, readStatement } from './proto.js';

const LIVE_NOTE = 'drag through the room\'s history: this browser\'s runtime shows each patch';

export class EditorScrub {
  // opts: els {timeline, at, source, live, restore} (the page's elements);
  // runtime (BrowserRuntime: history, scrub, live); send(t, fields) ->
  // bool and nextReq() (the page's connection); spreadOf(seq) (the commit
  // room times the page saw for it, by runtime: the lockstep spread on
  // hover); onStatus(text, kind).
  constructor(opts) {
    this.o = opts;
    this.patches = [];        // by seq - 1: {seq, createdUs, author, vars, kind, lang, source}
    this.marks = 0;           // patches 1..marks are known (a hole waits for its catch-up)
    this.frames = new Map();  // seq -> patch frame bytes (with its module)
    this.sent = 0;            // the worker has frames 1..sent
    this.engaged = false;     // the first scrub asked for the history
    this.historyReq = 0;      // the history_req in flight
    this.restoreReq = 0;
    this.at = null;           // the seq shown; null: live
    this.shown = { at: null, ms: null }; // what the page shows (tests read it)
    this.timeline = new Timeline(opts.els.timeline, { onSeek: (seq) => this.seek(seq),
                                                      describe: (p) => this.describe(p) });
    opts.els.live.onclick = () => this.live();
    opts.els.restore.onclick = () => this.restore();
  }

  // How long the shown patch took to draw (null: not yet, or live).
  get ms() { return this.shown.ms; }

  // A mark's hover text, with the lockstep spread where the page saw it.
  describe(p) {
    const times = [...(this.o.spreadOf(p.seq)?.values() || [])];
    const lockstep = times.length > 1
      ? ` · lockstep spread ${((Math.max(...times) - Math.min(...times)) / 1000).toFixed(1)} ms over ${times.length} runtimes`
      : '';
    const what = p.kind === 'expr' ? `= ${p.source.trim().slice(0, 40)}` : p.vars.join(', ') || '—';
    return `#${p.seq} ${clock(p.createdUs)} ${p.author}: ${what}${lockstep}`;
  }

  // The handle is at patch p (null: live); ms: how long it took to draw.
  show(p, ms) {
    const e = this.o.els;
    const at = p ? p.seq : null;
    this.shown = { at, ms };
    e.live.hidden = at === null;
    e.restore.hidden = !at;
    e.source.hidden = !at;
    e.source.textContent = p?.source || '';
    e.at.textContent = at === null ? LIVE_NOTE
      : at === 0 ? 'before the first patch (this browser only; the room runs on)'
        : `#${at} · ${p.author} · ${clock(p.createdUs)} · ${p.kind === 'expr' ? 'expression' : p.vars.join(', ')}` +
          ` — this browser only; the room runs on${ms === null ? ' · loading…' : ` · shown in ${ms} ms`}`;
  }

  // A patch the page received: a mark, and its frame if it has a module
  // (a state catch-up sends old patches without theirs).
  add(item) {
    let s;
    try { s = readStatement(item.stmt); } catch { return; }
    const known = this.patches[s.seq - 1];
    if (known && !known.source && typeof item.source === 'string') known.source = item.source; // a state catch-up's had none
    if (!known) {
      this.patches[s.seq - 1] = { seq: s.seq, createdUs: s.createdUs, author: s.author,
                                  vars: s.symbols.map((x) => x.name), kind: s.kind, lang: s.lang,
                                  source: item.source || '' };
      while (this.patches[this.marks]) this.marks++;
      this.redraw();
    }
    if (item.module && !this.frames.has(s.seq)) {
      this.frames.set(s.seq, frame('patch', { stmt: item.stmt, sig: item.sig, module: item.module,
                                              ...(typeof item.source === 'string' ? { source: item.source } : {}) }));
      if (this.engaged) this.flush();
    }
  }

  // The marks, redrawn once per animation frame however many patches came
  // (a catch-up brings thousands at once).
  redraw() {
    if (this.isRedrawing) return;
    this.isRedrawing = true;
    requestAnimationFrame(() => {
      this.isRedrawing = false;
      this.timeline.setPatches(this.patches.slice(0, this.marks));
    });
  }

  // Hands the worker every frame it does not have yet, in seq order.
  flush() {
    const out = [];
    while (this.frames.has(this.sent + 1)) out.push(this.frames.get(++this.sent));
    if (out.length) this.o.runtime.history(out);
  }

  // The answers to this page's own requests.
  onFrame(f) {
    if (f.t === 'history' && f.req && f.req === this.historyReq) {
      for (const it of f.items || []) this.add(it);
      if (!f.more) {
        this.historyReq = 0;
        this.flush();
        if (this.sent < this.marks)
          this.o.onStatus(`the relay sent the history up to #${this.sent} only`, 'error');
      }
      return true;
    }
    if (f.t === 'diag' && f.req && f.req === this.restoreReq) {
      this.restoreReq = 0;
      if (f.ok) {
        this.o.onStatus(`restored: #${this.restoring} evaluated again as seq ${f.seq}`, 'ok');
        this.live();
      } else {
        const why = (f.items || []).find((d) => d.severity === 'error');
        this.o.onStatus(`#${this.restoring} does not compile in the room as it is now` +
                        `${why ? `: ${why.line}:${why.col}: ${why.message}` : ''}`, 'error');
      }
      return true;
    }
    if (f.t === 'error' && f.req && (f.req === this.historyReq || f.req === this.restoreReq)) {
      if (f.req === this.historyReq) this.historyReq = 0;
      else this.restoreReq = 0;
      this.o.onStatus(f.message, 'error');
      return true;
    }
    return false;
  }

  // Shows the room at patch seq (0: before the first).
  seek(seq) {
    if (!this.engaged || (this.sent < this.marks && !this.historyReq)) {
      const req = this.o.nextReq();
      if (!this.o.send('history_req', { req, mode: 'range', from_seq: 1, to_seq: 0 })) {
        this.o.onStatus('not connected: the history cannot be loaded', 'error');
        return;
      }
      this.engaged = true;
      this.historyReq = req;
      this.flush();
    }
    this.at = seq;
    this.timeline.setPosition(seq);
    this.o.runtime.scrub(seq);
    this.show(this.patches[seq - 1] || { seq: 0 }, null);
  }

  // The worker drew the room at seq (ms: from the request).
  scrubbed(ev) {
    if (this.at === null || ev.seq !== this.at) return;
    if (ev.error) this.o.onStatus(`#${ev.seq} cannot be shown: ${ev.error}`, 'error');
    else this.show(this.patches[ev.seq - 1] || { seq: 0 }, ev.ms);
  }

  live() {
    this.at = null;
    this.timeline.setLive(true);
    this.o.runtime.live();
    this.show(null, null);
  }

  // Evaluates the shown patch's source again, as a new patch.
  restore() {
    const p = this.patches[(this.at || 0) - 1];
    if (!p) return;
    const req = this.o.nextReq();
    const name = `restore-${p.seq}.${p.lang === 'lisp' ? 'cljc' : 'c'}`;
    const sent = this.o.send('eval', { req, lang: p.lang, name, source: p.source,
                                       ...(p.kind === 'expr' ? { expr: true } : {}) });
    if (!sent) return this.o.onStatus('not connected: nothing was sent', 'error');
    this.restoreReq = req;
    this.restoring = p.seq;
    this.o.onStatus(`restoring #${p.seq}…`);
  }
}
