// conn.js — the editor page's connection to its room: the shared
// reconnecting connection (runtime/connection.js: backoff, no retry after
// a refused token) with the page's own frames, read and written in JS. A
// reconnect's hello says since_seq = the last seq the page has, so the
// relay sends only what it missed (docs/PROTOCOL.md § Catch-up).
import { Connection } from '../../runtime/connection.js';
import { PB_MAX_CLIENT_BYTES } from '../../runtime/pb_protocol.js';
import { frame, parseFrame, CLIENT } from './proto.js';

export class EditorConnection {
  // opts: {url, urls (the link's relays, tried in turn), room, token, onFrame(f), onState(state, detail), sinceSeq(),
  // buffers (the room's shared buffers: docs/PROTOCOL.md § Shared buffers)}
  constructor(opts) {
    this.o = opts;
    this.conn = new Connection({
      url: opts.url, urls: opts.urls, room: opts.room, WebSocket,
      onOpen: () => this.conn.send(frame('hello', {
        token: opts.token, client: `${CLIENT} ${navigator.userAgent}`.slice(0, PB_MAX_CLIENT_BYTES),
        since_seq: opts.sinceSeq?.() || undefined,
        buffers: opts.buffers || undefined,
      })),
      onMessage: (bytes) => this.onMessage(bytes),
      onState: (s, detail) => opts.onState?.(s, detail),
    });
  }

  start() { this.conn.open(); return this; }

  get state() { return this.conn.state; }

  onMessage(bytes) {
    let f;
    try {
      f = parseFrame(bytes);
    } catch (e) {
      this.o.onFrame?.({ t: 'local_error', message: `unreadable frame from the relay: ${e.message}` });
      return;
    }
    if (f.t === 'welcome') this.conn.live(`${f.role} ${f.name} in ${f.room}`);
    else if (f.t === 'error' && f.fatal) this.conn.fatal(f.code, f.message);
    this.o.onFrame?.(f);
  }

  // Sends a frame once the room is joined; returns whether it did.
  send(t, fields) {
    return this.conn.state === 'live' && this.conn.send(frame(t, fields));
  }

  close() { this.conn.close('page closed'); }
}
