// shared.js — the room's shared buffers on the editor page
// (docs/PROTOCOL.md § Shared buffers): one Yjs document per buffer, synced
// through the relay, with the people's cursors (Yjs awareness).
//
// Each buffer keeps two documents: `doc`, what the page shows and edits,
// and `mirror`, exactly the updates the relay has stored (its sync, the
// others' updates, this page's acknowledged ones). Local changes queue in
// `pending` and go out merged, one update in flight per buffer: so a page
// never sends faster than the relay acknowledges, and while offline the
// queue just grows. After a reconnect the page sends what the relay lacks
// — `doc` against `mirror`'s state — which is how offline edits merge. The
// mirror is also what a compaction sends: a snapshot of the relay's own
// updates, never of edits it has not stored.
import * as Y from 'yjs';
import {
  Awareness, encodeAwarenessUpdate, applyAwarenessUpdate, removeAwarenessStates,
} from 'y-protocols/awareness';

// Presence is sent at most this often (the cursor moves with every key).
const AWARE_EVERY_MS = 50;
// A refused update is tried again after this long (doubling, to 10 s).
const RETRY_MS = 500;
// Updates of one buffer go out at most this often, what is typed meanwhile
// merged into the next: 25 a second, under the relay's default of 50 writes
// a second per token name (serve --buffer-writes-per-second).
const SEND_EVERY_MS = 40;

// A person's colour, the same on every page: from the token name.
export function colourOf(name) {
  let h = 2166136261;
  for (const ch of name || '?') h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  const hue = (h >>> 0) % 360;
  // hsl(hue, 70%, 60%) as #rrggbb (y-codemirror needs a hex colour)
  const f = (n) => {
    const k = (n + hue / 30) % 12;
    const c = 0.6 - 0.7 * Math.min(0.6, 1 - 0.6) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(255 * c).toString(16).padStart(2, '0');
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

export class SharedBuffer {
  constructor(info, hub) {
    this.hub = hub;
    this.id = info.id;
    this.name = info.name;
    this.lang = info.lang;
    this.doc = new Y.Doc();
    this.text = this.doc.getText('text');
    this.mirror = new Y.Doc();
    this.useq = 0;          // the last stored update the mirror holds
    this.synced = false;    // the relay's sync since the last (re)join is in
    this.pending = [];      // local updates not yet sent
    this.inflight = null;   // {req, data}
    this.compacting = 0;    // req of a buffer_compact in flight
    this.retryMs = RETRY_MS;
    this.retryTimer = null;
    this.paceTimer = null;
    this.sentAt = 0;
    this.awareness = new Awareness(this.doc);
    this.awareness.setLocalState({ user: hub.user, peer: hub.clientId });
    this.peerOf = new Map(); // awareness client id -> relay client id
    this.awareTimer = null;
    this.doc.on('update', (update, origin) => {
      if (origin === this) return; // from the relay
      this.pending.push(update);
      this.flush();
    });
    // before y-codemirror draws the carets (its listener comes later): the
    // name shown is the one the relay knows for the sender (origin)
    this.awareness.on('change', ({ added, updated }, origin) => {
      const name = typeof origin === 'number' && hub.o.nameOf?.(origin);
      if (!name) return;
      for (const c of [...added, ...updated]) {
        const st = this.awareness.getStates().get(c);
        if (st && st.user?.name !== name) st.user = { ...st.user, name, color: colourOf(name) };
      }
    });
    this.awareness.on('update', ({ added, updated, removed }, origin) => {
      if (origin === 'local') this.sendAwarenessSoon();
      else if (typeof origin === 'number')
        for (const c of [...added, ...updated]) this.peerOf.set(c, origin);
      if (removed.length) for (const c of removed) this.peerOf.delete(c);
      hub.changed();
    });
  }

  // ---- from the relay
  applySync(f) {
    if (!this.synced && !this.syncing) { // a (re)join: the relay's state anew
      this.mirror.destroy();
      this.mirror = new Y.Doc();
      this.syncing = true;
    }
    for (const u of f.updates || []) this.applyStored(u.data);
    this.useq = f.useq || 0;
    if (f.more) return;
    this.syncing = false;
    this.synced = true;
    if (this.inflight) { // sent before the connection dropped: stored or not, the diff covers it
      this.inflight = null;
    }
    if (this.pending.length || this.hub.offlineEdits.has(this.id)) {
      // what the relay lacks, in one update
      this.pending = [Y.encodeStateAsUpdate(this.doc, Y.encodeStateVector(this.mirror))];
      this.hub.offlineEdits.delete(this.id);
    }
    this.flush();
    if (f.compact) this.compact();
    this.hub.changed();
  }

  // The relay does not read updates: one that is not valid Yjs (a broken
  // or hostile editor) is dropped here, and the page says so.
  applyStored(data) {
    try {
      Y.applyUpdate(this.mirror, data);
      Y.applyUpdate(this.doc, data, this);
    } catch (e) {
      this.hub.problem(`${this.name}: an update that is not Yjs was dropped (${e.message})`);
    }
  }

  applyUpdate(f) {
    if (!this.synced || f.useq <= this.useq) return; // already in the sync
    this.applyStored(f.data);
    this.useq = f.useq;
  }

  onAck(f) {
    if (this.inflight && f.req === this.inflight.req) {
      Y.applyUpdate(this.mirror, this.inflight.data);
      this.useq = f.useq;
      this.inflight = null;
      this.retryMs = RETRY_MS;
      this.hub.stats.acked++;
      if (f.compact) this.compact();
      this.flush();
    } else if (f.req === this.compacting) {
      this.compacting = 0;
      this.hub.stats.compactions++;
    }
  }

  // An error answering one of this buffer's requests.
  onRefused(req, message) {
    if (this.inflight && req === this.inflight.req) {
      // kept, and tried again later: the text stays as the person typed it
      this.pending.unshift(this.inflight.data);
      this.inflight = null;
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.flush(); }, this.retryMs);
      this.retryMs = Math.min(10000, this.retryMs * 2);
      this.hub.problem(`${this.name}: ${message}`);
    } else if (req === this.compacting) {
      this.compacting = 0;
    }
  }

  // ---- to the relay
  flush() {
    if (this.inflight || !this.pending.length || !this.synced || this.retryTimer || this.paceTimer ||
        !this.hub.writable) return;
    const wait = this.sentAt + SEND_EVERY_MS - Date.now();
    if (wait > 0) {
      this.paceTimer = setTimeout(() => { this.paceTimer = null; this.flush(); }, wait);
      return;
    }
    const data = this.pending.length === 1 ? this.pending[0] : Y.mergeUpdates(this.pending);
    const req = this.hub.nextReq();
    if (!this.hub.send('buffer_update', { buffer: this.id, req, data })) return;
    this.pending = [];
    this.inflight = { req, data };
    this.sentAt = Date.now();
    this.hub.stats.sent++;
    this.hub.stats.sentBytes += data.length;
  }

  compact() {
    if (this.compacting || !this.hub.writable || !this.useq) return;
    const req = this.hub.nextReq();
    if (this.hub.send('buffer_compact', { buffer: this.id, req, useq: this.useq,
                                          data: Y.encodeStateAsUpdate(this.mirror) }))
      this.compacting = req;
  }

  sendAwarenessSoon() {
    if (this.awareTimer) return;
    this.awareTimer = setTimeout(() => {
      this.awareTimer = null;
      const me = this.doc.clientID;
      if (this.awareness.getStates().has(me) || this.awareness.meta.has(me))
        this.hub.send('buffer_aware', { buffer: this.id, data: encodeAwarenessUpdate(this.awareness, [me]) });
    }, AWARE_EVERY_MS);
  }

  applyAwareness(f) {
    try {
      applyAwarenessUpdate(this.awareness, f.data, f.peer);
    } catch (e) {
      this.hub.problem(`unreadable presence from client ${f.peer}: ${e.message}`);
      return;
    }
  }

  peerLeft(peer) {
    const gone = [...this.peerOf].filter(([, p]) => p === peer).map(([c]) => c);
    if (gone.length) removeAwarenessStates(this.awareness, gone, 'left');
  }

  // The people whose cursor is in this buffer: relay client ids.
  present() {
    const out = new Set();
    for (const [c, st] of this.awareness.getStates())
      if (c !== this.doc.clientID && st.cursor && this.peerOf.has(c)) out.add(this.peerOf.get(c));
    return out;
  }

  // Yjs relative positions of a range of the text (eval's start and end).
  range(from, to) {
    const enc = (i) => Y.encodeRelativePosition(Y.createRelativePositionFromTypeIndex(this.text, i));
    return { start: enc(from), end: enc(to) };
  }

  resolve(pos) {
    if (!pos) return null;
    const abs = Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(pos), this.doc);
    return abs ? abs.index : null;
  }

  disconnected() {
    this.synced = false;
    this.syncing = false;
    if (this.inflight) {
      this.pending.unshift(this.inflight.data);
      this.inflight = null;
    }
    if (this.pending.length) this.hub.offlineEdits.add(this.id);
    this.compacting = 0;
  }

  destroy() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.paceTimer);
    clearTimeout(this.awareTimer);
    this.awareness.destroy();
    this.doc.destroy();
    this.mirror.destroy();
  }
}

// The page's buffers and what comes from the relay for them.
export class SharedBuffers {
  // opts: {send(t, fields) -> bool, user: {name, color}, onList(buffers,
  // frame), onChange(), onEval(buffer, frame), onProblem(text)}
  constructor(opts) {
    this.o = opts;
    this.user = opts.user;
    this.clientId = 0;
    this.role = '';
    this.buffers = new Map(); // id -> SharedBuffer
    this.order = [];          // ids as the relay lists them
    this.req = 0;
    this.offlineEdits = new Set();
    this.stats = { sent: 0, sentBytes: 0, acked: 0, compactions: 0 };
  }

  get writable() { return this.role === 'owner' || this.role === 'editor'; }

  nextReq() { return ++this.req; }

  send(t, fields) { return this.o.send(t, fields); }

  changed() { this.o.onChange?.(); }

  problem(text) { this.o.onProblem?.(text); }

  welcome(f) {
    this.clientId = f.client_id;
    this.role = f.role;
    for (const b of this.buffers.values()) b.awareness.setLocalStateField('peer', f.client_id);
  }

  disconnected() { for (const b of this.buffers.values()) b.disconnected(); }

  // Handles a frame if it is about buffers; returns whether it was.
  onFrame(f) {
    const b = this.buffers.get(f.buffer);
    switch (f.t) {
      case 'buffers': this.onList(f); return true;
      case 'buffer_sync': b?.applySync(f); return true;
      case 'buffer_update': b?.applyUpdate(f); this.changed(); return true;
      case 'buffer_ack': b?.onAck(f); return true;
      case 'buffer_aware': b?.applyAwareness(f); return true;
      case 'buffer_eval': if (b) this.o.onEval?.(b, f); return true;
      case 'peers':
        if (f.event === 'leave') for (const p of f.peers || []) for (const x of this.buffers.values()) x.peerLeft(p.id);
        return false;
      case 'error':
        if (!f.req) return false;
        for (const x of this.buffers.values())
          if (x.inflight?.req === f.req || x.compacting === f.req) { x.onRefused(f.req, f.message); return true; }
        return false;
      default: return false;
    }
  }

  onList(f) {
    const ids = new Set();
    for (const info of f.buffers || []) {
      ids.add(info.id);
      const b = this.buffers.get(info.id);
      if (b) { b.name = info.name; b.lang = info.lang; } else this.buffers.set(info.id, new SharedBuffer(info, this));
    }
    for (const [id, b] of this.buffers)
      if (!ids.has(id)) { b.destroy(); this.buffers.delete(id); }
    this.order = (f.buffers || []).map((i) => i.id);
    this.o.onList?.(this.order.map((id) => this.buffers.get(id)), f);
  }

  op(op, fields) {
    const req = this.nextReq();
    return this.send('buffer_op', { req, op, ...fields }) ? req : 0;
  }
}
