// png.js — a runtime's canvas as PNG bytes, for `patchbay snapshot`: 8-bit
// RGBA, one IDAT, every scanline with the Sub filter (the pictures patches
// draw are mostly flat colour and gradients, which Sub turns into runs of
// zeros), compressed with the platform's own zlib through
// CompressionStream('deflate'), which browsers (in a worker too) and node
// (18+) have. No platform imports, like host.js. It runs on the runtime's
// thread, so it never holds it for long: a runtime whose thread does not
// come back is restarted by its watchdog (watchdog.js).

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes, crc = 0) {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// Lets the thread's timers run (a watchdog's heartbeat among them) when
// it has been busy for longer than this: a big canvas takes a while.
const SLICE_MS = 20;
const breathe = () => new Promise((resolve) => setTimeout(resolve, 0));

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  v.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// rgba: width*height*4 bytes (R, G, B, A per pixel, row-major), as the
// runtime's canvas holds them. Resolves with the PNG file's bytes. The
// rows are filtered and compressed a slice at a time, yielding to the
// thread's timers between slices.
export async function encodePNG(rgba, width, height) {
  if (!(width > 0 && height > 0) || rgba.length < width * height * 4)
    throw new Error(`encodePNG: ${rgba.length} bytes are not a ${width}x${height} RGBA image`);
  const stride = width * 4;
  const cs = new CompressionStream('deflate');
  const writer = cs.writable.getWriter();
  const compressed = new Response(cs.readable).arrayBuffer();
  const rows = Math.max(1, Math.floor(65536 / (stride + 1)));
  let since = performance.now();
  for (let y0 = 0; y0 < height; y0 += rows) {
    const n = Math.min(rows, height - y0);
    const raw = new Uint8Array((stride + 1) * n);
    for (let k = 0; k < n; k++) {
      const o = k * (stride + 1), row = (y0 + k) * stride;
      raw[o] = 1; // Sub: each byte minus the same channel of the pixel to its left
      for (let i = 0; i < 4 && i < stride; i++) raw[o + 1 + i] = rgba[row + i];
      for (let i = 4; i < stride; i++) raw[o + 1 + i] = (rgba[row + i] - rgba[row + i - 4]) & 0xff;
    }
    await writer.write(raw);
    if (performance.now() - since > SLICE_MS) {
      await breathe();
      since = performance.now();
    }
  }
  await writer.close();
  const idat = new Uint8Array(await compressed);
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8 bits, RGBA, deflate, adaptive filters, no interlace
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
                 chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
