// bench/buffers.mjs — shared buffers (issue 18), in one run against a real
// relay and its SQLite file: an editor types N keystrokes (default 10,000),
// each its own Yjs update, stored and acknowledged one after the other;
// then a late joiner's time from opening its socket to holding the text
// (the relay reads every stored update and sends them; the joiner applies
// them with yjs), p50 over J joins, before and after a compaction (one
// snapshot instead of N updates) — the compacted join is the baseline of
// the ratio. Also printed: the bytes on the wire per keystroke (the
// buffer_update frame the typist sends, and the one each other editor gets)
// and the time from sending a keystroke to its acknowledgement (stored with
// synchronous=FULL), p50/p95.
//
// usage: node bench/buffers.mjs [--patchbay PATH] [--keys 10000] [--joins 5]
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { arg, pct } from './common.mjs';
import { ServedRelay } from '../tests/serve.mjs';
import { Peer } from '../tests/peer.mjs';
import { encode } from '../web/src/msgpack.js';

const here = dirname(fileURLToPath(import.meta.url));
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: node bench/buffers.mjs [--patchbay PATH] [--keys 10000] [--joins 5]');
  process.exit(0);
}
const CLI = resolve(arg('patchbay', join(here, '..', 'build', 'release', 'cli', 'patchbay')));
const KEYS = Number(arg('keys', 10000));
const JOINS = Number(arg('joins', 5));
const ROOM = 'bench';

const relay = new ServedRelay(CLI, 'pb-bench-buffers-');
try {
  await relay.serve(['--quiet', '--buffer-writes-per-second', '100000']);
  const ed = await Peer.join(relay, ROOM, 'editor', 'typist', { buffers: true });
  const other = await Peer.join(relay, ROOM, 'editor', 'reader', { buffers: true });
  ed.send({ t: 'buffer_op', req: 1, op: 'create', name: 'main.c', lang: 'c' });
  const list = await ed.waitFor((f) => f.t === 'buffers' && f.req === 1, 'created');
  const id = list.buffers[0].id;

  // typing: one keystroke, one update, sent when the last is acknowledged
  const doc = new Y.Doc();
  const mirror = new Y.Doc();
  const text = doc.getText('text');
  const line = 'double ggg(double v) { return v + 48; }\n';
  let sentBytes = 0, forwardedBytes = 0, useq = 0;
  const ackMs = [];
  const stop = other.on((f) => { if (f.t === 'buffer_update') forwardedBytes += encode(f).length; });
  for (let i = 0; i < KEYS; i++) {
    let update;
    const grab = (u) => { update = u; };
    doc.on('update', grab);
    text.insert(text.length, line[i % line.length]);
    doc.off('update', grab);
    const f = { v: 1, t: 'buffer_update', buffer: id, req: 100 + i, data: update };
    sentBytes += encode(f).length;
    const t0 = performance.now();
    ed.ws.send(encode(f));
    const ack = await ed.waitFor((x) => x.t === 'buffer_ack' && x.req === 100 + i, 'ack');
    ackMs.push(performance.now() - t0);
    useq = ack.useq;
    Y.applyUpdate(mirror, update);
    ed.frames.length = 0; // keep the search short
  }
  await other.waitFor((f) => f.t === 'buffer_update' && f.useq === useq, 'all forwarded', 60000);
  stop();
  other.close();

  async function joinMs() {
    const times = [];
    let updates = 0;
    for (let j = 0; j < JOINS; j++) {
      const t0 = performance.now();
      const p = await Peer.join(relay, ROOM, 'viewer', `late${j}`, { buffers: true });
      await p.waitFor((f) => f.t === 'buffer_sync' && !f.more, 'synced', 60000);
      const d = new Y.Doc();
      let n = 0;
      for (const f of p.frames) if (f.t === 'buffer_sync') for (const u of f.updates || []) { Y.applyUpdate(d, u.data); n++; }
      if (d.getText('text').toString() !== text.toString()) throw new Error('a join did not converge');
      times.push(performance.now() - t0);
      p.close();
      updates = n;
    }
    return { p50: pct(times, 50), updates };
  }
  const before = await joinMs();
  ed.send({ t: 'buffer_compact', buffer: id, req: 9, useq, data: Y.encodeStateAsUpdate(mirror) });
  await ed.waitFor((f) => f.t === 'buffer_ack' && f.req === 9, 'compacted');
  const after = await joinMs();
  ed.close();

  const ms = (x) => `${x.toFixed(1)} ms`;
  console.log(`shared buffer of ${KEYS} keystrokes (${text.length} characters), ${JOINS} joins each`);
  console.log(`join (socket → text), p50:  ${ms(before.p50)} with ${before.updates} stored updates, ` +
              `${ms(after.p50)} after compaction (${after.updates} update): ratio ${(before.p50 / after.p50).toFixed(2)}`);
  console.log(`bytes per keystroke on the wire: ${(sentBytes / KEYS).toFixed(1)} sent (buffer_update), ` +
              `${(forwardedBytes / KEYS).toFixed(1)} to each other editor`);
  console.log(`keystroke → buffer_ack (stored, synchronous=FULL), p50 / p95: ${ms(pct(ackMs, 50))} / ${ms(pct(ackMs, 95))}`);
} finally {
  await relay.stop();
}
