// connection.js — one client's connection to its room on the relay, the
// same for the runtime host (runtime/host.js, browser worker and node) and
// the editor page (web/src/conn.js): the WebSocket on /r/ROOM with
// sub-protocol "patchbay" (docs/PROTOCOL.md § Transport), and reconnection
// with exponential backoff (0.5 s doubling to 10 s, ±25 % jitter) until the
// relay refuses the token itself (or says a newer connection of this
// runtime replaced this one).
//
// A room reachable through several relays (a join link's &relays=, edges
// of one signer) is tried relay after relay: a lost or refused socket
// moves on to the next, and the backoff grows once per round of them all,
// so a dead relay costs one short wait, not the doubling.
//
// Catch-up after a reconnect is the caller's hello, sent from onOpen: it
// carries since_seq = the last seq the caller has, so the relay sends only
// what it missed (docs/PROTOCOL.md § Catch-up and replay). Frames stay
// bytes here; the caller decodes them (in wasm for the runtime, in JS for
// the page) and tells the connection when it read `welcome` (live) or a
// fatal `error`.
import {
  PB_ERR_AUTH_MALFORMED, PB_ERR_AUTH_BAD_MAC, PB_ERR_AUTH_EXPIRED, PB_ERR_AUTH_WRONG_ROOM,
  PB_ERR_AUTH_UNKNOWN_ROLE, PB_ERR_REPLACED, PB_ERR_AUTH_REVOKED, PB_MAX_FRAME_BYTES, PB_SILENT_US,
} from './pb_protocol.js';

// Error codes after which reconnecting cannot help: the token itself, or
// a newer connection of the same runtime took this one's place (coming
// back would only push that one out in turn).
const FINAL = new Set([PB_ERR_AUTH_MALFORMED, PB_ERR_AUTH_BAD_MAC, PB_ERR_AUTH_EXPIRED,
                       PB_ERR_AUTH_WRONG_ROOM, PB_ERR_AUTH_UNKNOWN_ROLE, PB_ERR_REPLACED,
                       PB_ERR_AUTH_REVOKED]);

// The close code a client uses to leave on purpose and come back at once
// (a private-use code: RFC 6455 § 7.4.2).
const CLOSE_RECONNECT = 4000;
const CLOSE_NORMAL = 1000;
const CLOSE_TOO_BIG = 1009; // the peer sent a message over our limit

// The socket's own limit on one message, where the WebSocket has one (node's
// ws: `maxPayload`, checked from the frame header, before anything is
// buffered). A browser's WebSocket has none and ignores the argument; the
// host then refuses the frame before it reaches wasm (host.js receive).
const SOCKET_OPTIONS = { maxPayload: PB_MAX_FRAME_BYTES };
const TOO_BIG_WHY = `the relay sent a message over the ${PB_MAX_FRAME_BYTES}-byte limit`;

export class Connection {
  // opts:
  //   url            the relay's WebSocket base, ws[s]://HOST:PORT (no path)
  //   urls           or several, tried in turn from the first (parseLink's)
  //   room           joins /r/ROOM
  //   WebSocket      the constructor (the browser's, or node's ws package)
  //   onOpen()       the socket is open: send hello (with since_seq)
  //   onMessage(bytes)         every frame from the relay, as a Uint8Array
  //   onState(state, detail)   connecting, live, waiting (for the next
  //                  attempt; detail says why and when), reconnecting,
  //                  failed (the token was refused: no more attempts), closed
  //   backoffMs      first reconnect delay (500), doubling to maxBackoffMs (10000)
  //   silentMs       a socket that brought nothing for this long is given
  //                  up and replaced (PB_SILENT_US: the relay signs a head
  //                  every PB_HEAD_EVERY_US, so a live one never is)
  //   setTimeout, clearTimeout   default: the globals
  constructor(opts) {
    this.o = opts;
    this.urls = opts.urls?.length ? opts.urls : [opts.url];
    this.at = 0; // the relay tried now: this.urls[this.at]
    this.ws = null;
    this.state = 'new';
    this.hasBeenLive = false;
    this.isClosed = false;
    this.firstBackoffMs = opts.backoffMs || 500;
    this.backoff = this.firstBackoffMs;
    this.timer = null;
    this.watch = null;
    this.heardAt = 0;
    this.silentMs = opts.silentMs || PB_SILENT_US / 1000;
    this.why = '';
    this.setTimeout = opts.setTimeout || globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = opts.clearTimeout || globalThis.clearTimeout.bind(globalThis);
  }

  setState(state, detail = '') {
    this.state = state;
    this.o.onState?.(state, detail);
  }

  // Opens the socket (again); every attempt after a close goes through here.
  open() {
    this.timer = null;
    if (this.isClosed) return this;
    this.setState(this.hasBeenLive ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new this.o.WebSocket(`${this.url}/r/${encodeURIComponent(this.o.room)}`, 'patchbay',
                                SOCKET_OPTIONS);
    } catch (e) {
      this.isClosed = true;
      this.setState('failed', String(e.message || e));
      return this;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.heardAt = Date.now();
      this.watchSilence(ws);
      this.o.onOpen();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.heardAt = Date.now();
      this.o.onMessage(new Uint8Array(ev.data));
    };
    ws.onerror = (ev) => {
      // onclose follows; it says why, except for ws's own payload limit
      // (the close code is then 1006, the reason is on the error)
      if (ev?.error?.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.why = TOO_BIG_WHY;
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.lost(ev.reason || (ev.code === CLOSE_TOO_BIG ? TOO_BIG_WHY : `connection closed (${ev.code})`));
    };
    return this;
  }

  // The socket is gone: try again after the backoff delay.
  lost(reason) {
    this.ws = null;
    if (this.watch) this.clearTimeout(this.watch);
    this.watch = null;
    if (this.isClosed) {
      if (this.state !== 'failed') this.setState('closed');
      return;
    }
    const wait = Math.round(this.backoff * (0.75 + Math.random() * 0.5));
    const from = this.url;
    this.at = (this.at + 1) % this.urls.length;
    if (this.at === 0) this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs || 10000);
    const why = this.why || reason;
    this.why = '';
    const next = this.urls.length > 1 ? ` at ${this.url}` : '';
    this.setState('waiting', `${why}${next ? ` (${from})` : ''}; retrying${next} in ${(wait / 1000).toFixed(1)} s`);
    this.timer = this.setTimeout(() => this.open(), wait);
  }

  // A relay that stops sending (and, likely, reading: a freeze) would keep
  // a socket open for minutes: give it up when it has been silent for
  // silentMs, without waiting for a closing handshake it will not answer.
  watchSilence(ws) {
    this.watch = this.setTimeout(() => {
      this.watch = null;
      if (this.ws !== ws) return;
      const quiet = Date.now() - this.heardAt;
      if (quiet < this.silentMs) {
        this.watchSilence(ws);
        return;
      }
      this.why = `the relay has sent nothing for ${(quiet / 1000).toFixed(0)} s`;
      try { ws.terminate ? ws.terminate() : ws.close(CLOSE_RECONNECT, this.why); } catch { /* gone */ }
      this.lost(this.why);
    }, Math.min(1000, this.silentMs));
  }

  // The caller read `welcome`: the room is joined, the next drop starts
  // the backoff afresh.
  live(detail) {
    this.hasBeenLive = true;
    this.backoff = this.firstBackoffMs;
    this.setState('live', detail);
  }

  // The caller read a fatal `error`: the relay closes next. A refused
  // token ends the connection for good; anything else is the reason given
  // for the reconnect that follows.
  fatal(code, message) {
    this.why = message;
    if (FINAL.has(code)) {
      this.isClosed = true;
      this.setState('failed', message);
    }
  }

  // The relay this connection uses (or tries) now.
  get url() { return this.urls[this.at]; }

  get isOpen() { return !!this.ws && this.ws.readyState === this.ws.OPEN; }

  // Sends bytes if the socket is open; returns whether it did.
  send(bytes) {
    if (!this.isOpen) return false;
    this.ws.send(bytes);
    return true;
  }

  // Leaves and comes back after the first backoff delay (a caller that
  // noticed it missed something: the hello of the new socket says from
  // where). Returns false if there is no socket to leave.
  reconnect(reason) {
    if (!this.ws) return false;
    this.backoff = this.firstBackoffMs;
    this.why = reason;
    try { this.ws.close(CLOSE_RECONNECT, reason); } catch { /* already closing */ }
    return true;
  }

  close(reason = 'closed') {
    this.isClosed = true;
    if (this.timer) this.clearTimeout(this.timer);
    if (this.watch) this.clearTimeout(this.watch);
    this.timer = this.watch = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) try { ws.close(CLOSE_NORMAL, reason); } catch { /* already closing */ }
    if (this.state !== 'failed') this.setState('closed');
  }
}
