// attacker.mjs — the attacker of tests/security (issue 15, docs/SECURITY.md
// § Attacks): a man in the middle between a real relay and real runtimes
// (node runtimes and Chromium runtime pages), on the venue's Wi-Fi as it
// were. It forwards the pages over HTTP and every WebSocket message both
// ways, and a test decides, message by message, what goes through:
//
//   const mitm = await new Mitm(relay.port).start();
//   mitm.toClient = (bytes, conn) => [bytes];   // forward (the default)
//   mitm.toClient = () => [];                   // drop
//   mitm.inject(bytes)                          // send to every client
//   rt = await joinRoom(mitm.link(relay.link(room, 'rt1')));
//
// Frames are read and written with the pages' own msgpack codec; a test
// that needs a frame signed with the relay's key takes it from the real
// relay (recorded), since the attacker has no key. Everything started here
// is stopped by close(), also when a test fails.
import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import { decode } from '../../web/src/msgpack.js';

export { decode };

// The frame type of a message, or '' if it is not a frame.
export function typeOf(bytes) {
  try { return decode(bytes).t || ''; } catch { return ''; }
}

export class Mitm {
  constructor(relayPort) {
    this.relayPort = relayPort;
    this.port = 0;
    this.conns = new Set();
    this.toClient = (bytes) => [bytes];
    this.toRelay = (bytes) => [bytes];
    this.seen = []; // {dir: 'client'|'relay', t, bytes} of every message
  }

  async start() {
    this.server = http.createServer((req, res) => {
      // the pages and everything else over HTTP, untouched
      const up = http.request({ host: '127.0.0.1', port: this.relayPort, path: req.url, method: req.method,
                                headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    // no limit of its own on what it relays: the runtimes' limits are tested
    this.wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 * 1024,
                                     handleProtocols: (p) => (p.has('patchbay') ? 'patchbay' : false) });
    this.server.on('upgrade', (req, socket, head) => {
      this.wss.handleUpgrade(req, socket, head, (client) => this.bridge(client, req.url));
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = this.server.address().port;
    return this;
  }

  bridge(client, path) {
    const upstream = new WebSocket(`ws://127.0.0.1:${this.relayPort}${path}`, 'patchbay',
                                   { maxPayload: 256 * 1024 * 1024 });
    const conn = { client, upstream, pending: [] };
    this.conns.add(conn);
    const pass = (dir, bytes) => {
      this.seen.push({ dir, t: typeOf(bytes), bytes });
      const out = (dir === 'client' ? this.toClient : this.toRelay)(bytes, conn) || [];
      for (const b of out) {
        if (dir === 'client') { if (client.readyState === WebSocket.OPEN) client.send(b); }
        else if (upstream.readyState === WebSocket.OPEN) upstream.send(b);
        else conn.pending.push(b);
      }
    };
    upstream.on('open', () => { for (const b of conn.pending.splice(0)) upstream.send(b); });
    upstream.on('message', (d) => pass('client', new Uint8Array(d)));
    client.on('message', (d) => pass('relay', new Uint8Array(d)));
    const end = () => {
      this.conns.delete(conn);
      try { client.close(); } catch { /* gone */ }
      try { upstream.close(); } catch { /* gone */ }
    };
    upstream.on('close', end);
    upstream.on('error', end);
    client.on('close', end);
    client.on('error', end);
  }

  // A join link that goes through this proxy instead of the relay.
  link(link) { return link.replace(`:${this.relayPort}/`, `:${this.port}/`); }

  // Sends bytes to every client, as if the relay had.
  inject(bytes) {
    for (const c of this.conns) if (c.client.readyState === WebSocket.OPEN) c.client.send(bytes);
  }

  // Drops every connection (the clients reconnect through the proxy).
  cut() {
    for (const c of [...this.conns]) c.client.terminate();
  }

  async close() {
    for (const c of [...this.conns]) { c.client.terminate(); c.upstream.terminate(); }
    this.wss?.close();
    await new Promise((r) => (this.server ? this.server.close(r) : r()));
  }
}
