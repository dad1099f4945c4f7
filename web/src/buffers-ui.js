// buffers-ui.js — the room's shared buffers in the editor page: tabs (create,
// rename, close), the editor bound to the active buffer with the others'
// cursors named and coloured (y-codemirror.next), read-only for viewers,
// and evaluations made visible: the range anyone evaluates flashes in their
// colour on every page, and the gutter keeps a mark of each definition's
// last evaluation (its seq and author on hover). The documents and the
// traffic are shared.js's.
import { EditorView, Decoration, gutter, GutterMarker, keymap } from '@codemirror/view';
import { Compartment, EditorState, StateEffect, StateField, RangeSet, Prec, Transaction } from '@codemirror/state';
import * as Y from 'yjs';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';
import { SharedBuffers, colourOf } from './shared.js';

const FLASH_MS = 900;

const flashEval = StateEffect.define(); // {from, to, color} or null
const flashField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects)
      if (e.is(flashEval))
        deco = e.value
          ? Decoration.set([Decoration.mark({ class: 'cm-remote-eval', attributes: { style: `background: ${e.value.color}55` } })
            .range(e.value.from, e.value.to)])
          : Decoration.none;
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

class EvalMark extends GutterMarker {
  constructor(seq, author, color) { super(); this.seq = seq; this.author = author; this.color = color; }
  eq(o) { return o.seq === this.seq; }
  toDOM() {
    const s = document.createElement('span');
    s.className = 'cm-eval-mark';
    s.textContent = '●';
    s.style.color = this.color;
    s.title = `evaluated as patch #${this.seq} by ${this.author}`;
    return s;
  }
}
const setMarks = StateEffect.define(); // [{at, seq, author, color}]
const marksField = StateField.define({
  create: () => RangeSet.empty,
  update(marks, tr) {
    marks = marks.map(tr.changes);
    for (const e of tr.effects)
      if (e.is(setMarks))
        marks = RangeSet.of(e.value.map((m) => new EvalMark(m.seq, m.author, m.color).range(m.at)), true);
    return marks;
  },
});

export class BufferTabs {
  // opts: {tabs: element, user: {name}, onLang(lang) (the active buffer's),
  // onStatus(text, kind), onPeople() (presence changed), firstName() and
  // lang(): a new room's first buffer, nameOf(client id): a person's token
  // name}
  constructor(opts) {
    this.o = opts;
    this.view = null;
    this.active = null;
    this.collab = new Compartment();
    this.readOnly = new Compartment();
    this.createReq = 0;
    this.joining = false; // the first buffers frame after welcome is the join's
    this.hub = new SharedBuffers({
      send: (t, f) => this.send(t, f),
      user: { name: opts.user.name || 'editor', color: colourOf(opts.user.name) },
      onList: (list, f) => this.onList(list, f),
      onChange: () => this.peopleSoon(),
      onEval: (b, f) => this.onEval(b, f),
      onProblem: (text) => opts.onStatus(text, 'error'),
      nameOf: opts.nameOf,
    });
  }

  extensions() {
    return [this.collab.of([]), this.readOnly.of([]), flashField, marksField,
            gutter({ class: 'cm-eval-gutter', markers: (v) => v.state.field(marksField) })];
  }

  attach(view, send) { this.view = view; this.sendFrame = send; }

  send(t, f) { return this.sendFrame ? this.sendFrame(t, f) : false; }

  get isShared() { return !!this.active; }

  // A document's whole state as one update (tests read a page's with it).
  encode(doc) { return Y.encodeStateAsUpdate(doc); }

  welcome(f) {
    this.joining = true;
    this.hub.welcome(f);
    const user = { name: f.name, color: colourOf(f.name) };
    this.hub.user = user;
    for (const b of this.hub.buffers.values()) b.awareness.setLocalStateField('user', user);
    this.view.dispatch({ effects: this.readOnly.reconfigure(this.hub.writable ? [] : EditorState.readOnly.of(true)) });
  }

  disconnected() { this.hub.disconnected(); }

  // A frame about buffers (true), or one the page handles (false).
  onFrame(f) {
    if (f.t === 'buffers') {
      // buffers created after the join come with no sync: they are empty
      const fresh = !this.joining;
      this.joining = false;
      const before = new Set(this.hub.buffers.keys());
      const local = this.active ? '' : this.view.state.doc.toString();
      this.hub.onFrame(f);
      if (fresh) for (const b of this.hub.buffers.values()) if (!before.has(b.id)) { b.synced = true; b.flush(); }
      if (f.req && f.req === this.createReq && f.peer === this.hub.clientId) this.fillCreated(f, local);
      return true;
    }
    // two pages made a room's first buffer at once: the other one's is it
    if (f.t === 'error' && f.req && f.req === this.createReq) return true;
    return this.hub.onFrame(f);
  }

  onList(list) {
    this.renderTabs();
    if (this.active && !list.includes(this.active)) this.unbind();
    if (!this.active && list.length) this.activate(list[0]);
    else if (this.active) this.o.onLang(this.active.lang);
    if (!list.length && this.hub.writable && !this.createReq) {
      // a room without a buffer: this page's text becomes its first
      this.createReq = this.hub.op('create', { name: this.o.firstName(), lang: this.o.lang() });
    }
  }

  fillCreated(f, local) {
    const info = (f.buffers || []).find((x) => x.name === this.o.firstName());
    const b = info && this.hub.buffers.get(info.id);
    if (!b) return;
    this.activate(b);
    if (local && !b.text.length) b.text.insert(0, local);
  }

  activate(b) {
    const prev = this.active;
    if (prev === b) return;
    if (prev) prev.awareness.setLocalStateField('cursor', null);
    this.active = b;
    b.undo ||= new Y.UndoManager(b.text);
    const view = this.view;
    view.dispatch({ effects: this.collab.reconfigure([]) });
    view.dispatch({
      changes: { from: 0, to: view.state.doc.length, insert: b.text.toString() },
      effects: [this.collab.reconfigure([yCollab(b.text, b.awareness, { undoManager: b.undo }),
                                         Prec.high(keymap.of(yUndoManagerKeymap))]), flashEval.of(null)],
      annotations: [Transaction.addToHistory.of(false)],
    });
    this.showMarks();
    this.o.onLang(b.lang);
    this.renderTabs();
  }

  unbind() {
    this.active = null;
    this.view.dispatch({ effects: [this.collab.reconfigure([]), setMarks.of([])] });
  }

  // ---- tabs
  renderTabs() {
    const nav = this.o.tabs;
    nav.replaceChildren();
    for (const id of this.hub.order) {
      const b = this.hub.buffers.get(id);
      const tab = document.createElement('span');
      tab.className = `tab${b === this.active ? ' active' : ''}`;
      tab.dataset.id = id;
      const name = document.createElement('button');
      name.className = 'tab-name';
      name.textContent = b.name;
      name.title = `${b.name} (${b.lang}); double-click to rename`;
      name.onclick = () => this.activate(b);
      name.ondblclick = () => this.rename(b);
      tab.append(name);
      if (this.hub.writable) {
        const x = document.createElement('button');
        x.className = 'tab-close';
        x.textContent = '×';
        x.title = `close ${b.name} for everyone`;
        x.onclick = () => { if (confirm(`Close ${b.name} for everyone in the room?`)) this.hub.op('close', { buffer: b.id }); };
        tab.append(x);
      }
      nav.append(tab);
    }
    if (this.hub.writable) {
      const add = document.createElement('button');
      add.className = 'tab-new';
      add.textContent = '+';
      add.title = 'a new shared buffer';
      add.onclick = () => {
        const name = prompt('Name of the new buffer (e.g. visual.cljc):');
        if (name) this.hub.op('create', { name, lang: /\.(clj[cs]?|edn|lisp)$/.test(name) ? 'lisp' : 'c' });
      };
      nav.append(add);
    }
  }

  rename(b) {
    if (!this.hub.writable) return;
    const name = prompt(`New name of ${b.name}:`, b.name);
    if (name && name !== b.name) this.hub.op('set', { buffer: b.id, name });
  }

  // The language menu changes the active buffer's language for everyone.
  setLang(lang) {
    if (this.active && this.hub.writable && lang !== this.active.lang)
      this.hub.op('set', { buffer: this.active.id, lang });
  }

  // ---- evaluation
  evalFields(from, to) {
    if (!this.active) return {};
    return { buffer: this.active.id, ...this.active.range(from, to) };
  }

  onEval(b, f) {
    const color = colourOf(f.author);
    b.evals = (b.evals || []).filter((e) => e.seq !== f.seq);
    b.evals.push({ seq: f.seq, author: f.author, color, start: f.start, end: f.end });
    if (b.evals.length > 200) b.evals.shift();
    if (b !== this.active) return;
    const from = b.resolve(f.start), to = b.resolve(f.end);
    this.showMarks();
    if (from === null || to === null || to <= from || f.peer === this.hub.clientId) return;
    this.view.dispatch({ effects: flashEval.of({ from, to, color }) });
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => this.view.dispatch({ effects: flashEval.of(null) }), FLASH_MS);
  }

  // One mark per evaluated range, the latest of those that overlap.
  showMarks() {
    const b = this.active;
    if (!b) return;
    const ranges = [];
    for (const e of [...(b.evals || [])].reverse()) {
      const from = b.resolve(e.start), to = b.resolve(e.end);
      if (from === null || to === null) continue;
      if (ranges.some((r) => from < r.to && to > r.from)) continue;
      ranges.push({ from, to, seq: e.seq, author: e.author, color: e.color });
    }
    const doc = this.view.state.doc;
    const marks = ranges.map((r) => ({ ...r, at: doc.lineAt(Math.min(r.from, doc.length)).from }))
      .sort((a, c) => a.at - c.at)
      .filter((m, i, a) => i === 0 || a[i - 1].at !== m.at);
    this.view.dispatch({ effects: setMarks.of(marks) });
  }

  // ---- people
  whereIs(peerId) {
    const names = [];
    for (const id of this.hub.order) {
      const b = this.hub.buffers.get(id);
      if (b.present().has(peerId)) names.push(b.name);
    }
    return names;
  }

  peopleSoon() {
    if (this.peopleTimer) return;
    this.peopleTimer = setTimeout(() => { this.peopleTimer = null; this.o.onPeople(); }, 100);
  }
}
