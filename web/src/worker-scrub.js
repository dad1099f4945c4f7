// worker-scrub.js — the editor's timeline inside the runtime worker
// (runtime-worker.js): the room as it was at a patch, in a history player
// of its own (src/player.js), so the live runtime keeps running and the
// room and its devices are never touched. The page hands it the room's
// patch frames from seq 1 in order (asked for once, src/scrub.js), then
// the patches that follow; while a scrub is shown, the worker's canvas
// draws the player's frame at that patch's apply time instead of the live
// one, once per seek.
import { HistoryPlayer } from './player.js';

export class WorkerScrub {
  // opts: post (to the page), link {room, key}, size {width, height},
  // epoch() and tempo() (the live host's: the room's epoch and settings).
  constructor(opts) {
    this.o = opts;
    this.frames = [];     // the room's patch frames, seq 1..
    this.player = null;   // made at the first scrub
    this.wanted = null;   // the seq to show; null: live
    this.seq = -1;        // the seq the player is at
    this.isBusy = false;
    this.isDirty = false; // a seek is done, its frame not drawn yet
    this.startedAt = 0;
    this.indexing = null;
  }

  get isActive() { return this.wanted !== null; }

  // The player's canvas while a scrub is shown (the page probes it).
  get canvas() { return this.isActive ? this.player?.host?.canvas || null : null; }

  history(frames) {
    const more = frames.map((b) => new Uint8Array(b));
    this.frames.push(...more);
    if (this.player) {
      this.player.append(more);
      this.indexMore();
    }
    this.seekWanted();
  }

  scrub(seq) {
    this.wanted = seq;
    this.startedAt = performance.now();
    if (seq === this.seq && this.player) this.isDirty = true;
    this.seekWanted();
  }

  live() {
    this.wanted = null;
    this.seq = -1;
  }

  // Draws the shown patch's frame once after a seek; tells the page.
  draw(ctx2d) {
    if (!this.isDirty || !this.player?.host) return;
    this.isDirty = false;
    const p = this.player;
    const at = p.info[this.seq];
    const r = p.drawAt(at ? at.applyUs / 1e6 : 0);
    const c = p.host.canvas;
    if (r.ok && c) ctx2d.putImageData(new ImageData(c.pixels(), c.width, c.height), 0, 0);
    else ctx2d.clearRect(0, 0, ctx2d.canvas.width, ctx2d.canvas.height);
    this.o.post({ t: 'scrubbed', seq: this.seq, ms: Math.round(performance.now() - this.startedAt), drawn: !!r.ok });
  }

  // Seeks to the latest wanted patch once the frames up to it are here; a
  // drag sends many, and only the last one still wanted is shown.
  async seekWanted() {
    if (this.isBusy) return;
    this.isBusy = true;
    try {
      while (this.wanted !== null && this.wanted !== this.seq && this.wanted <= this.frames.length) {
        const n = this.wanted;
        if (!this.player) this.player = await this.newPlayer();
        await this.player.seek(n);
        this.seq = n;
        this.isDirty = true;
      }
    } catch (e) {
      this.o.post({ t: 'scrubbed', seq: this.wanted, error: String((e && e.message) || e) });
    } finally {
      this.isBusy = false;
    }
  }

  async newPlayer() {
    const wasm = new Uint8Array(await (await fetch('runtime/pb_runtime.wasm')).arrayBuffer());
    /* global createPatchbayRuntime */
    const p = new HistoryPlayer({
      createRuntime: createPatchbayRuntime, moduleArgs: { wasmBinary: wasm },
      room: this.o.link.room, key: this.o.link.key, epoch: this.o.epoch(), tempo: this.o.tempo(),
      canvas: this.o.size,
    });
    p.append(this.frames);
    this.player = p;
    this.indexMore();
    return p;
  }

  // Checkpoints in the background as frames come: seeks get fast.
  indexMore() {
    const p = this.player;
    if (!p || this.indexing || p.indexed >= p.length) return;
    this.indexing = p.index((done, total) => this.o.post({ t: 'indexed', done, total }))
      .catch((e) => this.o.post({ t: 'indexed', error: String((e && e.message) || e) }))
      .finally(() => {
        this.indexing = null;
        this.indexMore();
      });
  }
}
