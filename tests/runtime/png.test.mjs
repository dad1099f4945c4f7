// png.test.mjs — runtime/png.js (a canvas as PNG bytes for `patchbay
// snapshot`) read back by an independent decoder: node's zlib for the
// IDAT stream and the PNG rules written out here (chunk layout, CRCs,
// filter bytes), so a mistake in the encoder cannot hide behind the same
// mistake in a shared helper. libpng reads these too, in the farm test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync, crc32 as zcrc } from 'node:zlib';
import { encodePNG, crc32 } from '../../runtime/png.js';

function decodePNG(buf) {
  const b = Buffer.from(buf);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'signature');
  const chunks = [];
  for (let at = 8; at < b.length;) {
    const len = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    const data = b.subarray(at + 8, at + 8 + len);
    const crc = b.readUInt32BE(at + 8 + len);
    assert.equal(crc, zcrc(b.subarray(at + 4, at + 8 + len)), `CRC of ${type}`);
    chunks.push({ type, data });
    at += 12 + len;
  }
  assert.deepEqual(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
  const h = chunks[0].data;
  const width = h.readUInt32BE(0), height = h.readUInt32BE(4);
  assert.deepEqual([...h.subarray(8)], [8, 6, 0, 0, 0], '8-bit RGBA, no interlace');
  const raw = inflateSync(chunks[1].data);
  const stride = width * 4;
  assert.equal(raw.length, (stride + 1) * height);
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    assert.ok(f === 0 || f === 1, `filter ${f}`);
    for (let i = 0; i < stride; i++) {
      const v = raw[y * (stride + 1) + 1 + i];
      out[y * stride + i] = f === 1 && i >= 4 ? (v + out[y * stride + i - 4]) & 0xff : v;
    }
  }
  return { width, height, rgba: out };
}

test('crc32 matches the standard check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
});

test('a gradient with alpha comes back pixel for pixel', async () => {
  const w = 37, h = 11;
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set([i & 255, (i * 7) & 255, 255 - (i & 255), (i * 13) & 255], i * 4);
  const png = await encodePNG(rgba, w, h);
  const back = decodePNG(png);
  assert.equal(back.width, w);
  assert.equal(back.height, h);
  assert.deepEqual(back.rgba, rgba);
});

test('a flat 960x540 picture compresses far below the frame limit', async () => {
  const rgba = new Uint8Array(960 * 540 * 4);
  for (let i = 0; i < rgba.length; i += 4) rgba.set([20, 90, 220, 255], i);
  const png = await encodePNG(rgba, 960, 540);
  assert.ok(png.length < 8192, `${png.length} bytes`);
  assert.deepEqual(decodePNG(png).rgba, rgba);
});

test('a one-pixel image, and bad sizes are refused', async () => {
  assert.deepEqual(decodePNG(await encodePNG(new Uint8Array([1, 2, 3, 4]), 1, 1)).rgba, new Uint8Array([1, 2, 3, 4]));
  await assert.rejects(encodePNG(new Uint8Array(4), 2, 2), /not a 2x2 RGBA image/);
  await assert.rejects(encodePNG(new Uint8Array(0), 0, 0), /not a 0x0/);
});
