// link.js — the join link a runtime starts from, as `patchbay token` prints
// it: http://HOST:PORT/runtime.html#room=R&token=T&key=HEX (the fragment is
// what web/src/proto.js parseLink reads; the part before it says where the
// relay is). The key is the relay's ed25519 public key: the runtime pins it
// from here and never takes one from the socket (docs/SECURITY.md).

// Returns {url, room, token, key, name}; url is the relay's WebSocket base
// (ws:// or wss://, no path). Throws an Error naming what is wrong.
export function parseLink(link) {
  let u;
  try {
    u = new URL(String(link));
  } catch {
    throw new Error(`not a join link: "${String(link).slice(0, 80)}" (expected ` +
                    'http://HOST:PORT/runtime.html#room=R&token=T&key=HEX, as printed by patchbay token)');
  }
  const scheme = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[u.protocol];
  if (!scheme)
    throw new Error(`join link scheme ${u.protocol} is not http, https, ws or wss`);
  const p = new URLSearchParams(u.hash.replace(/^#/, ''));
  const room = p.get('room') || '', token = p.get('token') || '';
  const key = (p.get('key') || '').toLowerCase();
  const missing = [!room && 'room', !token && 'token',
                   !/^[0-9a-f]{64}$/.test(key) && 'key (64 hex digits)'].filter(Boolean);
  if (missing.length)
    throw new Error(`join link lacks ${missing.join(', ')} in its #fragment`);
  return { url: `${scheme}//${u.host}`, room, token, key, name: p.get('name') || '' };
}
