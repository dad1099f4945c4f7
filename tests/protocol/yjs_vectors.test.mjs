// The shared-buffer vectors carry real Yjs bytes (docs/PROTOCOL.md § Shared
// buffers): checked here with npm's yjs and y-protocols, the implementation
// a compatible client would use, so a vector that stops being a valid
// update, snapshot, position or awareness state fails.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import * as awareness from 'y-protocols/awareness';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'vectors');
const vector = (n) => JSON.parse(fs.readFileSync(path.join(dir, `${n}.json`), 'utf8')).value;
const bin = (x) => Uint8Array.from(Buffer.from(x.$bin, 'hex'));
const textOf = (doc) => doc.getText('text').toString();

test('stored updates, then a live one, give the buffer text', () => {
  const doc = new Y.Doc();
  for (const u of vector('buffer_sync').updates) Y.applyUpdate(doc, bin(u.data));
  assert.equal(textOf(doc), 'double ggg(double v) { return v + 4; }\n');
  Y.applyUpdate(doc, bin(vector('buffer_update').data));
  assert.equal(textOf(doc), 'double ggg(double v) { return v + 49; }\n');
});

test('the compaction snapshot is the same text as updates 1 to 3', () => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, bin(vector('buffer_compact').data));
  assert.equal(textOf(doc), 'double ggg(double v) { return v + 49; }\n');
});

test('the evaluated range is the whole line', () => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, bin(vector('buffer_compact').data));
  for (const name of ['eval_buffer', 'buffer_eval']) {
    const v = vector(name);
    const at = (b) => Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(bin(b)), doc).index;
    assert.deepEqual([at(v.start), at(v.end)], [0, 39], name);
  }
});

test('the awareness update is ada\'s state as client 7', () => {
  const a = new awareness.Awareness(new Y.Doc());
  try {
    awareness.applyAwarenessUpdate(a, bin(vector('buffer_aware').data), 'relay');
    assert.deepEqual(a.getStates().get(7), { user: { name: 'ada', color: '#e0803a' }, peer: 7 });
  } finally {
    a.destroy();
  }
});
