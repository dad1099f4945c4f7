// link.js — the join link, as `patchbay token` prints it:
// http://HOST:PORT/runtime.html#room=R&token=T&key=HEX (or editor.html).
// The one reader of it, for the node runtime and for the pages (which
// read their own location.href): the fragment carries room, token and key
// (browsers never send a fragment to the server), the part before it says
// where the relay is. The key is the relay's ed25519 public key: runtimes
// pin it from here and never take one from the socket (docs/SECURITY.md).
// A link may name more relays of the same room and key to fail over to
// (&relays=HOST:PORT,wss://HOST:PORT; docs/PROTOCOL.md § Transport): a
// client tries them in turn, the link's own first.
import { PB_PUBLICKEY_BYTES } from './pb_protocol.js';

const MAX_RELAYS = 8; // as client/pbc.h's PBC_MAX_RELAYS
const KEY_HEX = new RegExp(`^[0-9a-f]{${2 * PB_PUBLICKEY_BYTES}}$`);

// Returns {url, urls, room, token, key, name, label}; url is the relay's
// WebSocket base (ws:// or wss://, no path), urls that one and then the
// link's other relays; label names the device in the room's test matrices
// (&label=pixel-7). Throws an Error naming what is wrong.
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
                   !KEY_HEX.test(key) && `key (${2 * PB_PUBLICKEY_BYTES} hex digits)`].filter(Boolean);
  if (missing.length)
    throw new Error(`join link lacks ${missing.join(', ')} in its #fragment`);
  // as relay/token.c: C (rt_session_open) would read a room only up to a
  // NUL, and the floor would be kept under another name than the one
  // verified (docs/SECURITY.md § Rollback and freeze)
  if (/[\u0000-\u001f\u007f]/.test(room))
    throw new Error(`join link room ${JSON.stringify(room)} has a control character; room names have none`);
  const url = `${scheme}//${u.host}`;
  const urls = [url];
  for (const r of (p.get('relays') || '').split(',').filter(Boolean)) {
    const other = relayUrl(r, scheme);
    // a TLS link names TLS relays only: failing over to plain text would
    // send the token in clear to whoever made the first unreachable
    if (url.startsWith('wss:') && !other.startsWith('wss:'))
      throw new Error(`join link to a TLS relay names a plain-text one (${other}), which would get its token in clear: name wss:// relays only`);
    if (!urls.includes(other)) urls.push(other);
  }
  if (urls.length > MAX_RELAYS)
    throw new Error(`join link names ${urls.length} relays; at most ${MAX_RELAYS} (its own and &relays=)`);
  return { url, urls, room, token, key, name: p.get('name') || '', label: p.get('label') || '' };
}

// One entry of &relays=: HOST:PORT (the link's own scheme), or
// http(s)://HOST:PORT, ws(s)://HOST:PORT; its WebSocket base.
function relayUrl(entry, scheme) {
  const withScheme = /^[a-z]+:\/\//i.test(entry) ? entry : `${scheme}//${entry}`;
  let u;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(`join link: relays entry "${entry.slice(0, 80)}" is not HOST:PORT or a ws(s)/http(s) address`);
  }
  const s = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' }[u.protocol];
  if (!s || !u.host || (u.pathname !== '/' && u.pathname !== ''))
    throw new Error(`join link: relays entry "${entry.slice(0, 80)}" is not HOST:PORT or a ws(s)/http(s) address`);
  return `${s}//${u.host}`;
}
