// editor.js — the editor page (editor.html): CodeMirror 6 with C and Lisp,
// Ctrl/Cmd-Enter evaluates the definition under the cursor and Shift-Enter
// the whole buffer, diagnostics inline and in a problems list, the room's
// peers and devices with their last ack, the runtimes' console, the history
// strip, and the connection state. The join link's fragment carries the
// room, the token and the relay's public key (patchbay token prints it).
//
// The text is the room's: shared buffers (tabs), everyone's cursors, and
// each evaluation flashing on every page (buffers-ui.js, shared.js).
//
// For tests, the page's state is readable as window.patchbay.
import { takeJoinUrl } from './fragment.js';
import { EditorView, basicSetup } from 'codemirror';
import { EditorState, Compartment, Transaction } from '@codemirror/state';
import { keymap, Decoration, WidgetType } from '@codemirror/view';
import { StateField, StateEffect } from '@codemirror/state';
import { cpp } from '@codemirror/lang-cpp';
import { StreamLanguage, HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';
import { clojure } from '@codemirror/legacy-modes/mode/clojure';
import { setDiagnostics, lintGutter } from '@codemirror/lint';
import { EditorConnection } from './conn.js';
import { readStatement, clock } from './proto.js';
import { parseLink } from '../../runtime/link.js';
import { formAt } from './forms.js';
import { describeAnswers } from './values.js';
import { BrowserRuntime } from './browser-runtime.js';
import { TestRun, renderMatrix, describe, outputOf } from './tests.js';
import { BufferTabs } from './buffers-ui.js';
import { EditorScrub } from './scrub.js';

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

const STARTER = {
  c: '#include <patchbay.h>\n\n// Ctrl-Enter evaluates the definition under the cursor,\n// Shift-Enter the whole buffer.\ndouble ggg(double v) { return v + 48; }\n\nvoid pb_frame(double t, pb_canvas *c) {\n    pb_clear(c, pb_rgb(0, 0, 0));\n    pb_circle(c, c->width / 2, c->height / 2,\n              (int)(40 + 20 * sin(t * 2)), pb_rgb(255, 128, 0));\n}\n',
  lisp: ';; Ctrl-Enter evaluates the form under the cursor,\n;; Shift-Enter the whole buffer.\n(defn ggg [v] (+ v 48))\n\n(defn pb-frame [t c]\n  (pb-clear c (pb-rgb 0 0 0))\n  (pb-circle c (/ (pb-width c) 2) (/ (pb-height c) 2)\n             (+ 40 (* 20 (sin (* t 2)))) (pb-rgb 255 128 0)))\n',
};

// The join link (runtime/link.js); a page opened without a whole one says
// what is missing instead of joining.
const joinUrl = takeJoinUrl(); // the fragment, then cleared from view
let link = null, linkError = '';
try {
  link = parseLink(joinUrl);
} catch (e) {
  linkError = e.message;
}

const state = {
  link: link || { url: '', room: '', token: '', key: '', name: '' },
  conn: 'connecting', connDetail: '',
  welcome: null,
  lang: 'c',
  adopted: true,       // the buffer shows the room's code until the person types
  req: 0,
  pending: new Map(),  // req -> {source, from, to}
  diags: [],           // the last eval's items, with line/col
  lastResult: null,    // {req, ok, seq}
  exprs: new Map(),    // seq -> {at, answers: Map(who -> {ok, text}), shown}
  history: [],         // {seq, author, vars, createdUs, lang, source, kind}
  headSeq: 0,
  catchups: 0,         // catch-ups received (the last history batch of each)
  peers: new Map(),    // id -> peer
  acks: new Map(),     // runtime_id -> {state, seq, error, var}
  logs: [],            // {runtime_id, level, text, seq, var}
  errors: [],          // error frames
  room: { tempo: 0, quantum: 0, leadUs: 0 }, // the room's settings
  commitTimes: new Map(), // seq -> Map(runtime_id -> commit room time)
  spreadUs: 0, spreadSeq: 0,
  preview: { stats: {}, commits: [], traps: [], restarts: [], rejects: [] }, // this page's runtime
  testRun: null,       // the last "Run tests" (web/src/tests.js)
};
window.patchbay = state;

// The room's shared buffers; until the room has one, the page's own text.
const tabs = new BufferTabs({
  tabs: $('tabs'), user: { name: link?.name || '' },
  onLang: (lang) => showLang(lang), onStatus: (text, kind) => status(text, kind), onPeople: () => renderPeers(),
  firstName: () => (state.lang === 'lisp' ? 'main.cljc' : 'main.c'), lang: () => state.lang,
  nameOf: (id) => state.peers.get(id)?.name,
});
Object.defineProperty(state, 'shared', { value: tabs });

// ---- the editor -----------------------------------------------------------------
const langConf = new Compartment();
const flash = StateEffect.define();
const flashField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects)
      if (e.is(flash))
        deco = e.value ? Decoration.set([Decoration.mark({ class: 'cm-evaluated' }).range(e.value.from, e.value.to)]) : Decoration.none;
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

// An expression's value at the end of its form (=> 59, or the runtimes'
// values when they disagree): one widget per expression, moved with edits.
const showValue = StateEffect.define(); // {at, text, kind}
class ValueWidget extends WidgetType {
  constructor(text, kind) { super(); this.text = text; this.kind = kind; }
  eq(o) { return o.text === this.text && o.kind === this.kind; }
  toDOM() {
    const s = el('span', `cm-value ${this.kind}`, ` ${this.text}`);
    s.title = this.text;
    return s;
  }
}
const valueField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (!e.is(showValue)) continue;
      deco = deco.update({ filter: (from) => from !== e.value.at });
      if (e.value.text)
        deco = deco.update({ add: [Decoration.widget({ widget: new ValueWidget(e.value.text, e.value.kind),
                                                       side: 1 }).range(e.value.at)] });
    }
    return deco;
  },
  provide: (f) => EditorView.decorations.from(f),
});

// Colours for a dark page that stays readable on a projector.
const dark = EditorView.theme({
  '.cm-activeLineGutter': { background: '#1a2028', color: '#dde3ea' },
  '.cm-selectionBackground, &.cm-focused .cm-selectionBackground': { background: '#2f4a66 !important' },
  '.cm-matchingBracket': { background: '#34404d', outline: '1px solid #6cb6ff' },
  '.cm-lintRange-error': { textDecoration: 'underline wavy #ff6b6b', backgroundImage: 'none' },
  '.cm-lintRange-warning': { textDecoration: 'underline wavy #f0c050', backgroundImage: 'none' },
}, { dark: true });
const colours = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.definitionKeyword, t.modifier], color: '#ff8fb1' },
  { tag: [t.typeName, t.standard(t.typeName)], color: '#8fd0ff' },
  { tag: [t.function(t.variableName), t.function(t.definition(t.variableName))], color: '#ffd479' },
  { tag: [t.number, t.bool, t.atom], color: '#b8a1ff' },
  { tag: [t.string, t.character], color: '#9be59b' },
  { tag: [t.comment, t.lineComment, t.blockComment], color: '#7d8794', fontStyle: 'italic' },
  { tag: [t.processingInstruction, t.meta], color: '#6cb6ff' },
  { tag: [t.operator, t.punctuation, t.bracket], color: '#c3cad3' },
  { tag: [t.variableName, t.propertyName], color: '#dde3ea' },
]);

const storeKey = () => `patchbay:${state.link.room}:${state.lang}`;
const language = (lang) => (lang === 'lisp' ? StreamLanguage.define(clojure) : cpp());

const view = new EditorView({
  parent: $('editor'),
  state: EditorState.create({
    doc: '',
    extensions: [
      keymap.of([
        { key: 'Mod-Enter', run: () => { evaluate(false); return true; } },
        { key: 'Shift-Enter', run: () => { evaluate(true); return true; } },
      ]),
      basicSetup,
      dark,
      syntaxHighlighting(colours),
      lintGutter(),
      langConf.of(language('c')),
      flashField,
      valueField,
      tabs.extensions(),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) for (const x of state.exprs.values()) x.at = u.changes.mapPos(x.at, 1);
        // only what the person typed is theirs to keep (and stops the
        // buffer from following the room, see adoptRoomSource)
        if (u.docChanged && !tabs.isShared && u.transactions.some((tr) => tr.annotation(Transaction.userEvent))) {
          localStorage.setItem(storeKey(), u.state.doc.toString());
          state.adopted = false;
        }
      }),
    ],
  }),
});

// Tests drive the editor through this (not enumerable: the state stays
// plain data for anyone who serialises it).
Object.defineProperty(state, 'view', { value: view });
tabs.attach(view, (t, f) => connection.send(t, f));

// The source of the room's latest patch in a language, if the relay sent it.
function roomSource(lang) {
  for (let i = state.history.length - 1; i >= 0; i--) {
    const h = state.history[i];
    if (h.lang === lang && h.source && h.kind !== 'expr') return h.source;
  }
  return null;
}

// Until the person types, an editor opened on a room shows the room's
// latest code in its language (the demo room opens on examples/demo.c),
// else a starter; what they type is kept per room and language.
function adoptRoomSource() {
  const src = state.adopted && !tabs.isShared && roomSource(state.lang);
  if (src && src !== view.state.doc.toString())
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: src } });
}

// The language of what the editor shows (a shared buffer's, for everyone).
function showLang(lang) {
  state.lang = lang;
  $('lang').value = lang;
  view.dispatch({ effects: langConf.reconfigure(language(lang)) });
}

function setLang(lang) {
  if (tabs.isShared) { // the buffer's language changes for everyone
    showLang(lang);
    tabs.setLang(lang);
    return;
  }
  state.lang = lang;
  $('lang').value = lang;
  const saved = localStorage.getItem(storeKey());
  state.adopted = saved === null;
  view.dispatch({
    changes: { from: 0, to: view.state.doc.length, insert: saved ?? roomSource(lang) ?? STARTER[lang] },
    effects: [langConf.reconfigure(language(lang)), flash.of(null)],
  });
  view.dispatch(setDiagnostics(view.state, []));
  localStorage.setItem(`patchbay:${state.link.room}:lang`, lang);
}

// A diagnostic's byte column on a line of the sent source, as a UTF-16
// offset into the buffer (the sent source keeps the buffer's UTF-16 columns).
function position(source, line, col) {
  const lines = source.split('\n');
  const l = Math.max(1, Math.min(line, view.state.doc.lines));
  const text = lines[l - 1] || '';
  const bytes = new TextEncoder().encode(text);
  const before = new TextDecoder().decode(bytes.subarray(0, Math.max(0, col - 1)));
  const docLine = view.state.doc.line(l);
  return Math.min(docLine.from + before.length, docLine.to);
}

function showDiagnostics(p, items) {
  const doc = view.state.doc;
  const diags = items.map((d) => {
    const from = position(p.source, d.line, d.col);
    let to = d.end_line ? position(p.source, d.end_line, d.end_col) : from;
    if (to <= from) { // underline the word (or character) at the position
      const line = doc.lineAt(from);
      const m = /^[\w\-?!*+<>=.]+/.exec(line.text.slice(from - line.from));
      to = Math.min(line.to, from + (m ? m[0].length : 1));
      if (to <= from && from > line.from) return { from: from - 1, to: from, severity: sev(d), message: d.message };
    }
    return { from, to, severity: sev(d), message: d.message };
  });
  view.dispatch(setDiagnostics(view.state, diags));
  const list = $('problems');
  list.replaceChildren();
  for (const d of items) {
    const li = el('li', `problem ${d.severity}`);
    li.append(el('span', 'where', `${d.line}:${d.col}`), el('span', 'sev', d.severity), el('span', 'msg', d.message));
    li.onclick = () => {
      const at = position(p.source, d.line, d.col);
      view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
      view.focus();
    };
    list.append(li);
  }
  $('problems-count').textContent = items.length ? `(${items.length})` : '';
}
const sev = (d) => (d.severity === 'note' ? 'info' : d.severity);

function evaluate(whole) {
  const text = view.state.doc.toString();
  const pos = view.state.selection.main.head;
  const pick = whole ? { source: text, from: 0, to: text.length } : formAt(text, pos, state.lang);
  if (!pick || !pick.source.trim()) return status('nothing to evaluate here');
  const req = ++state.req;
  const name = tabs.active?.name || `${state.link.name || 'editor'}.${state.lang === 'lisp' ? 'cljc' : 'c'}`;
  if (!connection.send('eval', { req, lang: state.lang, name, source: pick.source, ...(pick.expr ? { expr: true } : {}),
                                 ...tabs.evalFields(pick.from, pick.to) }))
    return status(`not connected (${state.conn}); nothing was sent`, 'error');
  state.pending.set(req, pick);
  view.dispatch({ effects: flash.of({ from: pick.from, to: pick.to }) });
  status(`evaluating… (#${req})`);
}

function status(text, kind = '') {
  const s = $('status');
  s.textContent = text;
  s.className = kind;
}

// ---- frames ---------------------------------------------------------------------
function onFrame(f) {
  if (tabs.onFrame(f)) return;
  if (scrub?.onFrame(f)) return;
  switch (f.t) {
    case 'welcome':
      state.welcome = f;
      tabs.welcome(f);
      state.headSeq = f.head_seq || 0;
      $('who').textContent = `${f.name} · ${f.role}`;
      $('room').textContent = f.room;
      break;
    case 'diag': {
      const p = state.pending.get(f.req);
      state.pending.delete(f.req);
      state.diags = f.items || [];
      state.lastResult = { req: f.req, ok: f.ok, seq: f.seq || 0 };
      if (p) showDiagnostics(p, state.diags);
      if (f.ok && f.expr && p) expressionAccepted(f.seq, p);
      status(f.ok ? `accepted as seq ${f.seq}${f.expr ? ' (an expression: it runs once on every runtime)' : ''}`
                  : `${state.diags.filter((d) => d.severity === 'error').length} error(s): not sent to the room`,
             f.ok ? 'ok' : 'error');
      setTimeout(() => view.dispatch({ effects: flash.of(null) }), 600);
      break;
    }
    case 'patch':
      addHistory(f);
      scrub?.add(f);
      break;
    case 'history':
      for (const it of f.items || []) {
        addHistory(it);
        scrub?.add(it);
      }
      if (!f.more) {
        adoptRoomSource();
        state.catchups++;
      }
      break;
    case 'peers':
      if (f.event === 'snapshot') state.peers.clear();
      for (const p of f.peers || []) {
        if (f.event === 'leave') {
          state.peers.delete(p.id);
          state.testRun?.gone(p.id);
        } else state.peers.set(p.id, { ...state.peers.get(p.id), ...p });
      }
      renderPeers();
      if (state.testRun && f.event === 'leave') renderTests();
      break;
    case 'test_result':
      if (state.testRun?.take(f, state.peers)) renderTests();
      break;
    case 'ack':
      state.acks.set(f.runtime_id, { state: f.state, seq: f.seq, error: f.error, var: f.var,
                                     prepareUs: f.prepare_us, lateUs: f.late_us, mem: f.mem_bytes,
                                     commitAtUs: f.commit_at_us });
      if (f.state === 'committed' && f.commit_at_us) noteCommit(f.seq, f.runtime_id, f.commit_at_us);
      if ((f.state === 'committed' && f.value !== undefined) || f.state === 'failed')
        expressionAnswered(f.seq, f.runtime_id, f.state === 'committed', f.state === 'committed' ? f.value : f.error);
      renderPeers();
      if (f.state === 'failed')
        addLog({ runtime_id: f.runtime_id, level: 'trap', seq: f.seq, var: f.var,
                 text: `patch ${f.seq} failed${f.var ? ` in ${f.var}` : ''}: ${f.error || ''}` });
      break;
    case 'log':
      addLog(f);
      break;
    case 'room':
      state.room = { tempo: f.tempo_bpm || 0, quantum: f.quantum || 0, leadUs: f.lead_us || 0 };
      $('tempo').textContent = state.room.tempo
        ? `${state.room.tempo} BPM${state.room.quantum ? ` · every ${state.room.quantum} beats` : ''}` : '';
      $('tempo').title = state.room.leadUs ? `lead ${state.room.leadUs / 1000} ms` : 'lead: adaptive';
      break;
    case 'error':
      state.errors.push(f);
      status(f.message, 'error');
      if (f.req) state.pending.delete(f.req);
      break;
    case 'local_error':
      status(f.message, 'error');
      break;
    default:
      break;
  }
}

// ---- expressions: their values at the end of the form ---------------------------
function expressionAccepted(seq, p) {
  const early = state.exprs.get(seq); // the preview may have run it first
  state.exprs.set(seq, { at: p.to, answers: early ? early.answers : new Map(), shown: true });
  // an expression evaluated again at the same place replaces the old value
  for (const [s, x] of state.exprs) if (s !== seq && x.at === p.to) state.exprs.delete(s);
  while (state.exprs.size > 64) state.exprs.delete(state.exprs.keys().next().value);
  renderValue(seq);
}

// who: a runtime's id, or 'preview' (this page's own runtime).
function expressionAnswered(seq, who, ok, text) {
  let x = state.exprs.get(seq);
  if (!x) { // an answer before the diag (the preview), or another editor's
    if (who !== 'preview') return;
    state.exprs.set(seq, (x = { at: -1, answers: new Map(), shown: false }));
  }
  x.answers.set(who, { ok, text: text || '' });
  renderValue(seq);
}

function renderValue(seq) {
  const x = state.exprs.get(seq);
  if (!x || !x.shown || x.at < 0) return;
  const d = describeAnswers([...x.answers.values()]) || { text: '=> …', kind: 'pending' };
  x.text = d.text;
  view.dispatch({ effects: showValue.of({ at: Math.min(x.at, view.state.doc.length), text: d.text, kind: d.kind }) });
}

function addHistory(p) {
  let s;
  try { s = readStatement(p.stmt); } catch { return; }
  if (state.history.some((h) => h.seq === s.seq)) return;
  const h = { seq: s.seq, author: s.author, vars: s.symbols.map((x) => x.name), createdUs: s.createdUs,
              lang: s.lang, source: p.source || '', kind: s.kind };
  state.history.push(h);
  state.history.sort((a, b) => a.seq - b.seq);
  if (state.history.length > 500) state.history.shift();
  state.headSeq = Math.max(state.headSeq, s.seq);
  renderHistory();
}

function renderHistory() {
  const strip = $('history');
  strip.replaceChildren();
  for (const h of state.history.slice(-60).reverse()) {
    const b = el('button', 'patch');
    b.dataset.seq = h.seq;
    // an expression by its text (it defines no var)
    const what = h.kind === 'expr' ? `= ${h.source.trim().slice(0, 40)}` : h.vars.join(' ');
    b.append(el('span', 'seq', `#${h.seq}`), el('span', 'vars', what || '—'),
             el('span', 'by', `${h.author} · ${clock(h.createdUs)}`));
    b.title = `seq ${h.seq} by ${h.author} (${h.lang})`;
    b.onclick = () => showSource(h);
    strip.append(b);
  }
}

function showSource(h) {
  $('source-title').textContent = `seq ${h.seq} · ${h.author} · ${h.lang} · ${h.vars.join(', ')}`;
  $('source-text').textContent = h.source || '(the relay sent this patch without its source)';
  $('source').showModal();
}

const isPreview = (p) => p.role !== 'runtime' && /^patchbay-runtime\//.test(p.client || '');

// Lockstep as the room's editors see it: for each patch, when every device
// swapped it in (room time); a device's skew is its commit time minus the
// median of the devices' for the same patch, and a patch's spread is the
// max minus the min.
function noteCommit(seq, id, at) {
  let m = state.commitTimes.get(seq);
  if (!m) {
    state.commitTimes.set(seq, (m = new Map()));
    if (state.commitTimes.size > 64) state.commitTimes.delete(state.commitTimes.keys().next().value);
  }
  m.set(id, at);
  const times = [...m.values()].sort((a, b) => a - b);
  const median = times[times.length >> 1];
  for (const [rid, t] of m) {
    const a = state.acks.get(rid);
    if (a && a.seq === seq) a.skewUs = t - median;
  }
  state.spreadUs = times.at(-1) - times[0];
  state.spreadSeq = seq;
  $('spread').textContent = m.size > 1 ? `#${seq}: ${m.size} devices within ${(state.spreadUs / 1000).toFixed(2)} ms` : '';
}

function renderPeers() {
  const list = $('peers');
  list.replaceChildren();
  // editor pages' own preview runtimes are not people or devices
  const sorted = [...state.peers.values()].filter((p) => !isPreview(p)).sort((a, b) => a.role.localeCompare(b.role) || a.id - b.id);
  for (const p of sorted) {
    const li = el('li', `peer ${p.role}`);
    li.dataset.id = p.id;
    li.append(el('span', 'name', p.label || p.name), el('span', 'role', p.role));
    const where = p.role === 'runtime' ? [] : tabs.whereIs(p.id);
    if (where.length) li.append(el('span', 'where', `in ${where.join(', ')}`));
    if (p.role === 'runtime') {
      if (p.canvas_w) li.append(el('span', 'canvas', `${p.canvas_w}×${p.canvas_h}`));
      const a = state.acks.get(p.id);
      const ack = a ? `${a.state} #${a.seq}` : p.last_ack ? `${p.last_ack} #${p.last_seq}` : 'no ack yet';
      li.append(el('span', `ack ${a?.state || p.last_ack || ''}`, ack));
      const skew = a?.skewUs ?? p.skew_us;
      if (skew !== undefined) {
        const s = el('span', 'skew', `${skew >= 0 ? '+' : ''}${(skew / 1000).toFixed(2)} ms`);
        s.title = `commit time minus the room's median for patch #${a?.seq ?? p.last_seq}` +
                  (a?.lateUs !== undefined ? `; ${(a.lateUs / 1000).toFixed(2)} ms after the apply time` : '');
        li.append(s);
      }
      const mem = a?.mem ?? p.mem_bytes;
      if (mem) li.append(el('span', 'mem', `${(mem / 1048576).toFixed(1)} MiB`));
      li.title = [p.platform || p.client, p.features && `wasm ${p.features}`,
                  p.unc_us && `clock ±${(p.unc_us / 1000).toFixed(1)} ms`].filter(Boolean).join(' · ');
    }
    list.append(li);
  }
  $('peers-count').textContent = `(${sorted.length})`;
}

function addLog(l) {
  state.logs.push(l);
  if (state.logs.length > 1000) state.logs.shift();
  const box = $('console');
  const line = el('div', `log ${l.level}`);
  const who = l.who || state.peers.get(l.runtime_id)?.name || (l.runtime_id ? `runtime ${l.runtime_id}` : 'runtime');
  const where = [l.seq ? `#${l.seq}` : '', l.var || ''].filter(Boolean).join(' ');
  line.append(el('span', 'who', who), el('span', 'where', where), el('span', 'text', `${l.text}${l.truncated ? ' …(truncated)' : ''}`));
  box.append(line);
  while (box.childElementCount > 500) box.firstChild.remove();
  box.scrollTop = box.scrollHeight;
}

function onState(s, detail) {
  if (s !== 'live') tabs.disconnected(); // edits wait, and merge on return
  state.conn = s;
  state.connDetail = detail;
  const c = $('conn');
  c.className = `conn ${s}`;
  c.textContent = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…',
                    waiting: 'offline', failed: 'cannot join', closed: 'closed' }[s] || s;
  c.title = detail;
  if (s === 'failed') status(`cannot join: ${detail}`, 'error');
  else if (s === 'waiting') status(detail, 'error');
  else if (s === 'live' && $('status').className === 'error') status('connected');
}

// ---- this browser's runtime ---------------------------------------------------------
// The room's program runs here too (a Web Worker drawing to the canvas), so
// the author sees what the room sees. It is a preview: it joins with the
// editor's token and reports nothing to the room (see runtime-worker.js).
function onPreview(type, ev) {
  const p = state.preview;
  const me = { runtime_id: 0, who: 'this browser' };
  switch (type) {
    case 'beat':
      p.stats = { ...ev };
      $('screen-note').textContent = `${ev.fps} fps · patch #${ev.committedSeq}${
        ev.restarts ? ` · restarted ${ev.restarts}×` : ''}`;
      break;
    case 'commit': p.commits.push(ev); if (p.commits.length > 200) p.commits.shift(); break;
    case 'trap':
      p.traps.push(ev);
      addLog({ ...me, level: 'trap', seq: ev.seq, var: ev.var, text: `trap, rolled back: ${ev.message}` });
      break;
    case 'restart':
      p.restarts.push(ev);
      addLog({ ...me, level: 'error', seq: ev.seq, var: ev.var, text: ev.message });
      break;
    case 'reject':
      p.rejects.push(ev);
      addLog({ ...me, level: 'error', seq: ev.seq, text: `refused a patch: ${ev.error}` });
      break;
    case 'log': addLog({ ...me, level: ev.level, seq: ev.seq, var: ev.var, text: ev.text }); break;
    case 'scrubbed': scrub?.scrubbed(ev); break;
    case 'expr':
      expressionAnswered(ev.seq, 'preview', ev.ok, ev.ok ? ev.value : `trap in '${ev.var}': ${ev.error}`);
      break;
    case 'state':
      if (ev.state === 'failed') $('screen-note').textContent = `the runtime cannot start: ${ev.detail}`;
      break;
    default: break;
  }
}

// ---- tests on the room's devices ------------------------------------------------------
// Every runtime of the room (not the editor pages' previews) runs the
// room's tests at the current seq; their answers fill a device × test
// matrix, and a cell opens that device's output for that test.
function runTests() {
  const devices = [...state.peers.values()].filter((p) => p.role === 'runtime')
    .sort((a, b) => a.id - b.id)
    .map((p) => ({ id: p.id, label: p.label || p.name, platform: p.platform || p.client || '',
                   canvas_w: p.canvas_w || 0, canvas_h: p.canvas_h || 0 }));
  if (!devices.length) return status('no device in the room to run tests on: open the runtime link on one', 'error');
  const req = ++state.req;
  if (!connection.send('test_req', { req, seq: state.headSeq }))
    return status(`not connected (${state.conn}); nothing was sent`, 'error');
  state.testRun = new TestRun({ req, seq: state.headSeq, devices });
  $('tests-box').open = true;
  renderTests();
  status(`running the tests on ${devices.length} device${devices.length === 1 ? '' : 's'}…`);
}

function renderTests() {
  const run = state.testRun;
  renderMatrix($('tests'), run, showCell);
  const n = run.counts();
  const bad = (n.fail || 0) + (n.trap || 0) + (n.timeout || 0);
  $('tests-count').textContent = `(${run.tests.length} × ${run.devices.length}${bad ? `, ${bad} failing` : ''})`;
  if (run.isComplete) status(bad ? `tests: ${bad} failing` : 'tests: all passed', bad ? 'error' : 'ok');
}

function showCell(i, test) {
  const run = state.testRun;
  const d = run.devices[i];
  const r = run.cells.get(`${i} ${test}`);
  const c = run.cell(i, test);
  const out = outputOf(state.logs, d.id, test);
  $('source-title').textContent = `${test} on ${d.label} · ${c.status}`;
  $('source-text').textContent = [r ? describe(r) : c.title, d.platform && `device: ${d.platform}`,
                                   out.length ? `output:\n${out.join('')}` : 'no output'].filter(Boolean).join('\n\n');
  $('source').showModal();
}

// ---- start ------------------------------------------------------------------------
let connection = { send: () => false };
let scrub = null; // the timeline (src/scrub.js), with the preview runtime
$('lang').onchange = (e) => setLang(e.target.value);
$('run').onclick = () => evaluate(false);
$('run-all').onclick = () => evaluate(true);
$('run-tests').onclick = () => runTests();
$('source-close').onclick = () => $('source').close();
setLang(localStorage.getItem(`patchbay:${state.link.room}:lang`) || 'c');
if (!link) {
  onState('failed', `${linkError}: open the link that patchbay token prints`);
} else {
  $('room').textContent = link.room;
  connection = new EditorConnection({ url: link.url, urls: link.urls, room: link.room, token: link.token, onFrame, onState, buffers: true,
                                      sinceSeq: () => state.headSeq }).start();
  if (typeof OffscreenCanvas === 'function' && typeof Worker === 'function') {
    $('screen-note').textContent = 'starting the runtime…';
    state.previewRuntime = new BrowserRuntime({
      canvas: $('screen'), name: `${link.name || 'editor'} (preview)`, preview: true, onEvent: onPreview, link,
    }).start();
    // the timeline shows the past in this runtime only (src/scrub.js)
    scrub = new EditorScrub({
      els: { timeline: $('timeline'), at: $('timeline-at'), source: $('timeline-source'), live: $('live'),
             restore: $('restore') },
      runtime: state.previewRuntime, send: (t, fields) => connection.send(t, fields), nextReq: () => ++state.req,
      spreadOf: (seq) => state.commitTimes.get(seq), onStatus: status,
    });
    state.scrub = scrub;
  } else {
    $('screen-note').textContent = 'This browser cannot run the room here (no OffscreenCanvas); open the runtime page.';
  }
}
view.focus();
