// proto.js — patchbay frames for the pages (docs/PROTOCOL.md): building the
// frames a page sends and reading a statement for display (the join link
// is runtime/link.js). Verification is not done here: the runtime does it
// in wasm with the C protocol library, and an editor only shows what the
// relay says.
import { encode, decode } from './msgpack.js';
import { PB_PROTOCOL_VERSION } from '../../runtime/pb_protocol.js';

export const CLIENT = 'patchbay-web/0.1.0';

export function frame(t, fields) {
  return encode({ v: PB_PROTOCOL_VERSION, t, ...fields });
}

export function parseFrame(bytes) {
  const f = decode(bytes);
  if (!f || typeof f !== 'object' || Array.isArray(f) || typeof f.t !== 'string')
    throw new Error('not a patchbay frame');
  return f;
}

// A statement (msgpack array) as an object; see docs/PROTOCOL.md
// § Statement: 12 elements (definitions), 13 with an expression's kind
// last, 15 with the origin (room, seq) of a replayed patch (version 3).
export function readStatement(stmt) {
  const a = decode(stmt);
  if (!Array.isArray(a) || ![12, 13, 15].includes(a.length)) throw new Error('not a statement');
  return {
    room: a[1], seq: a[2], prevHash: a[3], moduleHash: a[4],
    symbols: (a[5] || []).map(([name, sig]) => ({ name, sig })),
    author: a[6], lang: a[7], sourceHash: a[8],
    createdUs: a[9], applyUs: a[10], key: a[11], kind: a[12] || 'defs',
    origin: a.length === 15 ? { room: a[13], seq: a[14] } : null,
  };
}

export const hex = (b) => Array.from(b || [], (x) => x.toString(16).padStart(2, '0')).join('');

// A wall-clock time in µs as HH:MM:SS.
export function clock(us) {
  const d = new Date(Number(us) / 1000);
  return d.toTimeString().slice(0, 8);
}
