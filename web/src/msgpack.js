// msgpack.js — the msgpack subset the patchbay protocol uses, for the pages:
// maps with string keys, arrays, str, bin (Uint8Array), unsigned and signed
// integers (as numbers; beyond 2^53 as BigInt), float64, bool and nil.
// Decoding is strict: truncated input, trailing bytes and unsupported types
// throw, so a bad frame is reported instead of half-read. The relay and the
// runtime check frames with the C protocol library; this code only has to
// read what they produce and write what they accept.

const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

export class Writer {
  constructor() { this.buf = new Uint8Array(256); this.len = 0; }
  need(n) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  byte(b) { this.need(1); this.buf[this.len++] = b; }
  bytes(a) { this.need(a.length); this.buf.set(a, this.len); this.len += a.length; }
  be(v, n) { // unsigned big-endian, n bytes, v a number or BigInt
    this.need(n);
    let x = BigInt(v);
    for (let i = n - 1; i >= 0; i--) { this.buf[this.len + i] = Number(x & 0xffn); x >>= 8n; }
    this.len += n;
  }
  value(v) {
    if (v === null || v === undefined) return this.byte(0xc0);
    if (v === true) return this.byte(0xc3);
    if (v === false) return this.byte(0xc2);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) return this.int(BigInt(v));
      this.byte(0xcb);
      this.need(8);
      new DataView(this.buf.buffer).setFloat64(this.len, v);
      this.len += 8;
      return;
    }
    if (typeof v === 'string') {
      const b = te.encode(v);
      if (b.length < 32) this.byte(0xa0 | b.length);
      else if (b.length < 256) { this.byte(0xd9); this.byte(b.length); }
      else if (b.length < 65536) { this.byte(0xda); this.be(b.length, 2); }
      else { this.byte(0xdb); this.be(b.length, 4); }
      return this.bytes(b);
    }
    if (v instanceof Uint8Array) {
      if (v.length < 256) { this.byte(0xc4); this.byte(v.length); }
      else if (v.length < 65536) { this.byte(0xc5); this.be(v.length, 2); }
      else { this.byte(0xc6); this.be(v.length, 4); }
      return this.bytes(v);
    }
    if (Array.isArray(v)) {
      this.header(v.length, 0x90, 0xdc);
      for (const x of v) this.value(x);
      return;
    }
    if (typeof v === 'object') {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      this.header(keys.length, 0x80, 0xde);
      for (const k of keys) { this.value(k); this.value(v[k]); }
      return;
    }
    throw new TypeError(`msgpack: cannot encode ${typeof v}`);
  }
  header(n, fix, wide) {
    if (n < 16) this.byte(fix | n);
    else if (n < 65536) { this.byte(wide); this.be(n, 2); }
    else { this.byte(wide + 1); this.be(n, 4); }
  }
  int(x) { // shortest encoding, as msgpack-c writes it
    if (x >= 0n) {
      if (x < 128n) return this.byte(Number(x));
      if (x < 256n) { this.byte(0xcc); return this.be(x, 1); }
      if (x < 65536n) { this.byte(0xcd); return this.be(x, 2); }
      if (x < 4294967296n) { this.byte(0xce); return this.be(x, 4); }
      this.byte(0xcf); return this.be(x, 8);
    }
    if (x >= -32n) return this.byte(Number(x) & 0xff);
    if (x >= -128n) { this.byte(0xd0); return this.be(x & 0xffn, 1); }
    if (x >= -32768n) { this.byte(0xd1); return this.be(x & 0xffffn, 2); }
    if (x >= -2147483648n) { this.byte(0xd2); return this.be(x & 0xffffffffn, 4); }
    this.byte(0xd3); return this.be(x & 0xffffffffffffffffn, 8);
  }
  result() { return this.buf.slice(0, this.len); }
}

export function encode(v) {
  const w = new Writer();
  w.value(v);
  return w.result();
}

class Reader {
  constructor(bytes) {
    this.b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    this.dv = new DataView(this.b.buffer, this.b.byteOffset, this.b.byteLength);
    this.p = 0;
    this.depth = 0;
  }
  take(n) {
    if (this.p + n > this.b.length) throw new Error('msgpack: truncated');
    const p = this.p;
    this.p += n;
    return p;
  }
  uint(n) {
    const p = this.take(n);
    if (n === 1) return this.dv.getUint8(p);
    if (n === 2) return this.dv.getUint16(p);
    if (n === 4) return this.dv.getUint32(p);
    const v = this.dv.getBigUint64(p);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  sint(n) {
    const p = this.take(n);
    if (n === 1) return this.dv.getInt8(p);
    if (n === 2) return this.dv.getInt16(p);
    if (n === 4) return this.dv.getInt32(p);
    const v = this.dv.getBigInt64(p);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  str(n) { const p = this.take(n); return td.decode(this.b.subarray(p, p + n)); }
  bin(n) { const p = this.take(n); return this.b.slice(p, p + n); }
  array(n) {
    if (++this.depth > 32) throw new Error('msgpack: nested too deep');
    const a = [];
    for (let i = 0; i < n; i++) a.push(this.value());
    this.depth--;
    return a;
  }
  map(n) {
    if (++this.depth > 32) throw new Error('msgpack: nested too deep');
    const m = {};
    for (let i = 0; i < n; i++) {
      const k = this.value();
      if (typeof k !== 'string') throw new Error('msgpack: map key is not a string');
      m[k] = this.value();
    }
    this.depth--;
    return m;
  }
  value() {
    const c = this.uint(1);
    if (c < 0x80) return c;
    if (c >= 0xe0) return c - 256;
    if ((c & 0xf0) === 0x80) return this.map(c & 15);
    if ((c & 0xf0) === 0x90) return this.array(c & 15);
    if ((c & 0xe0) === 0xa0) return this.str(c & 31);
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.uint(1));
      case 0xc5: return this.bin(this.uint(2));
      case 0xc6: return this.bin(this.uint(4));
      case 0xca: { const p = this.take(4); return this.dv.getFloat32(p); }
      case 0xcb: { const p = this.take(8); return this.dv.getFloat64(p); }
      case 0xcc: return this.uint(1);
      case 0xcd: return this.uint(2);
      case 0xce: return this.uint(4);
      case 0xcf: return this.uint(8);
      case 0xd0: return this.sint(1);
      case 0xd1: return this.sint(2);
      case 0xd2: return this.sint(4);
      case 0xd3: return this.sint(8);
      case 0xd9: return this.str(this.uint(1));
      case 0xda: return this.str(this.uint(2));
      case 0xdb: return this.str(this.uint(4));
      case 0xdc: return this.array(this.uint(2));
      case 0xdd: return this.array(this.uint(4));
      case 0xde: return this.map(this.uint(2));
      case 0xdf: return this.map(this.uint(4));
      default: throw new Error(`msgpack: unsupported type 0x${c.toString(16)}`);
    }
  }
}

export function decode(bytes) {
  const r = new Reader(bytes);
  const v = r.value();
  if (r.p !== r.b.length) throw new Error('msgpack: bytes after the value');
  return v;
}

// Values stored back to back (a bundle file: docs/PROTOCOL.md § Bundle
// files), each with where it starts and ends: [{value, at, end}].
export function decodeSequence(bytes) {
  const r = new Reader(bytes);
  const out = [];
  while (r.p < r.b.length) {
    const at = r.p;
    const value = r.value();
    out.push({ value, at, end: r.p });
  }
  return out;
}
