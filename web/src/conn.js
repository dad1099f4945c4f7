// conn.js — one page's connection to the relay: the WebSocket on /r/ROOM
// with sub-protocol "patchbay", hello with the token from the join link,
// and reconnection with exponential backoff (0.5 s doubling to 10 s, with
// jitter). A reconnect says since_seq = the last seq the page has, so the
// relay sends only what it missed (docs/PROTOCOL.md § Catch-up). A fatal
// error for the token itself (expired, bad MAC, wrong room) stops retrying:
// retrying cannot fix it.
import { frame, parseFrame, CLIENT } from './proto.js';
import {
  PB_ERR_AUTH_MALFORMED, PB_ERR_AUTH_BAD_MAC, PB_ERR_AUTH_EXPIRED, PB_ERR_AUTH_WRONG_ROOM,
  PB_ERR_AUTH_UNKNOWN_ROLE, PB_MAX_CLIENT_BYTES,
} from '../../runtime/pb_protocol.js';

// Error codes after which a reconnect cannot succeed: the token itself.
const FINAL = new Set([PB_ERR_AUTH_MALFORMED, PB_ERR_AUTH_BAD_MAC, PB_ERR_AUTH_EXPIRED,
                       PB_ERR_AUTH_WRONG_ROOM, PB_ERR_AUTH_UNKNOWN_ROLE]);

export class Connection {
  // opts: {url, room, token, onFrame(f), onState(state, detail), sinceSeq()}
  constructor(opts) {
    this.o = opts;
    this.ws = null;
    this.backoff = 500;
    this.timer = null;
    this.closed = false;
    this.state = 'connecting';
    this.welcome = null;
  }

  start() { this.open(); return this; }

  setState(s, detail = '') {
    this.state = s;
    this.o.onState?.(s, detail);
  }

  open() {
    if (this.closed) return;
    this.setState(this.welcome ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(`${this.o.url}/r/${encodeURIComponent(this.o.room)}`, 'patchbay');
    } catch (e) {
      this.setState('failed', String(e.message || e));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      ws.send(frame('hello', { token: this.o.token, client: `${CLIENT} ${navigator.userAgent}`.slice(0, PB_MAX_CLIENT_BYTES),
                               since_seq: this.o.sinceSeq?.() || undefined }));
    };
    ws.onmessage = (ev) => {
      let f;
      try {
        f = parseFrame(new Uint8Array(ev.data));
      } catch (e) {
        this.o.onFrame?.({ t: 'local_error', message: `unreadable frame from the relay: ${e.message}` });
        return;
      }
      if (f.t === 'welcome') {
        this.welcome = f;
        this.backoff = 500;
        this.setState('live', `${f.role} ${f.name} in ${f.room}`);
      } else if (f.t === 'error' && f.fatal) {
        this.fatal = f;
        if (FINAL.has(f.code)) {
          this.closed = true;
          this.setState('failed', f.message);
        }
      }
      this.o.onFrame?.(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) {
        if (this.state !== 'failed') this.setState('closed');
        return;
      }
      const wait = Math.round(this.backoff * (0.75 + Math.random() * 0.5));
      this.backoff = Math.min(this.backoff * 2, 10000);
      const why = this.fatal ? this.fatal.message : ev.reason || `connection closed (${ev.code})`;
      this.fatal = null;
      this.setState('waiting', `${why}; retrying in ${(wait / 1000).toFixed(1)} s`);
      this.timer = setTimeout(() => this.open(), wait);
    };
  }

  send(t, fields) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || this.state !== 'live') return false;
    this.ws.send(frame(t, fields));
    return true;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'page closed');
  }
}
