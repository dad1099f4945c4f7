// peer.mjs — for the node tests: a client of a relay that speaks the frames
// by hand (msgpack over the `ws` package) and keeps every frame it gets,
// so a test can play an editor, a viewer, or a runtime that answers (or
// misbehaves) exactly as the test says.
//
//   const rt = await Peer.join(relay, 'jam', 'runtime', 'rt1', { label: 'phone' });
//   const q = await rt.waitFor((f) => f.t === 'test_req', 'a test request');
//   rt.send({ t: 'test_result', req: q.req, seq: q.seq, results: [] });
//   rt.close();
import WebSocket from 'ws';
import { encode, decode } from '../web/src/msgpack.js';

export class Peer {
  // relay: a ServedRelay (tests/serve.mjs); extra: more hello fields.
  static async join(relay, room, role, name, extra = {}) {
    const c = new Peer();
    c.ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${encodeURIComponent(room)}`, 'patchbay');
    c.closed = new Promise((resolve) => c.ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    c.ws.on('message', (d) => {
      const f = decode(new Uint8Array(d));
      c.frames.push(f);
      for (const fn of [...c.listeners]) fn(f);
      for (const w of [...c.waiters]) w();
    });
    await new Promise((resolve, reject) => { c.ws.once('open', resolve); c.ws.once('error', reject); });
    c.send({ t: 'hello', token: relay.token(room, role, name), client: `test ${name}`, ...extra });
    c.welcome = await c.waitFor((f) => f.t === 'welcome', `${name} welcomed`);
    return c;
  }

  constructor() {
    this.frames = [];
    this.waiters = new Set();
    this.listeners = new Set();
  }

  send(f) { this.ws.send(encode({ v: 1, ...f })); }

  // Calls fn(frame) for every frame from now on; returns a function that
  // stops it.
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // The first frame (received so far or later) for which pred holds.
  waitFor(pred, what, ms = 10000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const f = this.frames.find(pred);
        if (!f) return false;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(f);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${what}: not within ${ms} ms; got ${JSON.stringify(this.frames.map((f) => f.t))}`));
      }, ms);
      if (!check()) this.waiters.add(check);
    });
  }

  close() { this.ws.close(); }
}
