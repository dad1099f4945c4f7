// client.mjs — a small nREPL client for the tests: bencode (written here,
// independently of nrepl/bencode.c) over a TCP socket, messages with ids,
// and the replies of one request gathered until its status says done.
import net from 'node:net';

// ---- bencode ------------------------------------------------------------------
// Strings are decoded as UTF-8 text (nREPL's are), dictionaries as objects.
export function bencode(v) {
  if (typeof v === 'number') return Buffer.from(`i${Math.trunc(v)}e`);
  if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    return Buffer.concat([Buffer.from(`${b.length}:`), b]);
  }
  if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(bencode), Buffer.from('e')]);
  const keys = Object.keys(v).sort();
  return Buffer.concat([Buffer.from('d'), ...keys.flatMap((k) => [bencode(k), bencode(v[k])]), Buffer.from('e')]);
}

// Decodes one value at b[pos]; returns [value, end] or null if b ends first.
export function bdecode(b, pos = 0) {
  if (pos >= b.length) return null;
  const c = String.fromCharCode(b[pos]);
  if (c === 'i') {
    const e = b.indexOf(0x65, pos);
    return e < 0 ? null : [Number(b.subarray(pos + 1, e).toString()), e + 1];
  }
  if (c === 'l' || c === 'd') {
    const out = c === 'l' ? [] : {};
    let p = pos + 1;
    while (p < b.length && b[p] !== 0x65) {
      const k = bdecode(b, p);
      if (!k) return null;
      if (c === 'l') { out.push(k[0]); p = k[1]; continue; }
      const v = bdecode(b, k[1]);
      if (!v) return null;
      out[k[0]] = v[0];
      p = v[1];
    }
    return p < b.length ? [out, p + 1] : null;
  }
  const colon = b.indexOf(0x3a, pos);
  if (colon < 0) return null;
  const n = Number(b.subarray(pos, colon).toString());
  if (colon + 1 + n > b.length) return null;
  return [b.subarray(colon + 1, colon + 1 + n).toString('utf8'), colon + 1 + n];
}

// ---- a connection ---------------------------------------------------------------
export class NreplClient {
  static async connect(port, host = '127.0.0.1') {
    const c = new NreplClient(net.connect(port, host));
    await new Promise((resolve, reject) => {
      c.sock.once('connect', resolve);
      c.sock.once('error', reject);
    });
    return c;
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.messages = []; // every reply, in order
    this.waiters = [];
    this.closed = false;
    this.nextId = 0;
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (let r = bdecode(this.buf); r; r = bdecode(this.buf)) {
        this.messages.push(r[0]);
        this.buf = this.buf.subarray(r[1]);
      }
      this.wake();
    });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => {});
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  // Resolves when cond(messages) is true; rejects after ms.
  async until(cond, what, ms = 20000) {
    const end = Date.now() + ms;
    while (!cond(this.messages)) {
      if (this.closed && !cond(this.messages)) throw new Error(`${what}: the connection closed`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${ms} ms; got ${JSON.stringify(this.messages.slice(-5))}`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(left, 200)); });
    }
  }

  send(msg) { this.sock.write(bencode(msg)); }
  sendRaw(bytes) { this.sock.write(bytes); }

  // Sends msg with a fresh id; resolves with its replies once one says done.
  async request(msg, ms = 20000) {
    const id = `t${++this.nextId}`;
    this.send({ ...msg, id });
    const mine = () => this.messages.filter((m) => m.id === id);
    await this.until(() => mine().some((m) => (m.status || []).includes('done')), `${msg.op} ${id}`, ms);
    return mine();
  }

  close() { this.sock.destroy(); }
}

// The replies of one request combined as nREPL's own client does
// (nrepl.core/combine-responses): values in order, status words as a set,
// strings such as out and err concatenated.
export function combine(replies) {
  const r = { value: [], status: new Set() };
  for (const m of replies)
    for (const [k, v] of Object.entries(m)) {
      if (k === 'value') r.value.push(v);
      else if (k === 'status') v.forEach((s) => r.status.add(s));
      else if (typeof v === 'string' && k !== 'id' && k !== 'session' && k !== 'ns') r[k] = (r[k] || '') + v;
      else r[k] = v;
    }
  return r;
}
