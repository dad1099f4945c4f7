// timeline.js — a session's patches on a time axis, one mark per patch
// coloured by its author, and a handle to drag through them: the editor
// page's history and the exported player share it. It only draws and
// reports; what a position means (a seek, a restore) is the page's.
//
//   const tl = new Timeline(el, { onSeek(seq), describe(p) });
//   tl.setPatches([{seq, createdUs, author, vars, kind, spread}...]);
//   tl.setPosition(seq);        // where the handle is (0: before the first)
//   tl.setLive(true);           // the handle follows the newest patch

const MARK_W = 2;

// A stable colour per author name.
export function authorColour(name) {
  let h = 0;
  for (const c of String(name)) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 70% 62%)`;
}

function when(us) {
  const d = new Date(Number(us) / 1000);
  return d.toTimeString().slice(0, 8);
}

export class Timeline {
  // el: an element to fill. opts.onSeek(seq): the handle moved to seq (by
  // a drag, a click, the keyboard). opts.describe(p): the hover text.
  constructor(el, opts = {}) {
    this.el = el;
    this.o = opts;
    this.patches = [];
    this.position = 0;
    this.live = true;
    el.classList.add('timeline');
    el.innerHTML = '';
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'timeline-track';
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'slider');
    this.canvas.setAttribute('aria-label', 'position in the session (patch)');
    this.tip = document.createElement('div');
    this.tip.className = 'timeline-tip';
    this.tip.hidden = true;
    el.append(this.canvas, this.tip);
    const at = (ev) => this.seqAtX(ev.offsetX);
    this.canvas.addEventListener('pointerdown', (ev) => {
      this.canvas.setPointerCapture(ev.pointerId);
      this.dragging = true;
      this.move(at(ev));
    });
    this.canvas.addEventListener('pointermove', (ev) => {
      if (this.dragging) this.move(at(ev));
      this.hover(at(ev), ev.offsetX);
    });
    this.canvas.addEventListener('pointerup', () => { this.dragging = false; });
    this.canvas.addEventListener('pointerleave', () => { this.tip.hidden = true; });
    this.canvas.addEventListener('keydown', (ev) => {
      const step = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity }[ev.key];
      if (step === undefined) return;
      ev.preventDefault();
      this.move(Math.max(0, Math.min(this.patches.length, this.position + step)));
    });
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  setPatches(list) {
    this.patches = list;
    if (this.live) this.position = list.length;
    this.draw();
  }

  setPosition(seq) {
    this.position = seq;
    this.draw();
  }

  setLive(live) {
    this.live = live;
    if (live) this.position = this.patches.length;
    this.draw();
  }

  move(seq) {
    if (seq === this.position) return;
    this.position = seq;
    this.live = false;
    this.draw();
    this.o.onSeek?.(seq);
  }

  // The time axis: the first patch's creation to the last's, with a margin.
  span() {
    const p = this.patches;
    if (!p.length) return { t0: 0, t1: 1 };
    const t0 = Number(p[0].createdUs), t1 = Number(p[p.length - 1].createdUs);
    const pad = Math.max((t1 - t0) * 0.02, 1e6);
    return { t0: t0 - pad, t1: t1 + pad };
  }

  xOf(us, w) {
    const { t0, t1 } = this.span();
    return ((Number(us) - t0) / (t1 - t0)) * w;
  }

  // The last patch created at or before the time under x (0: none).
  seqAtX(x) {
    const w = this.canvas.clientWidth || 1;
    const { t0, t1 } = this.span();
    const t = t0 + (x / w) * (t1 - t0);
    let lo = 0, hi = this.patches.length; // patches[lo-1] is the answer
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (Number(this.patches[mid].createdUs) <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  hover(seq, x) {
    const p = this.patches[seq - 1];
    if (!p) { this.tip.hidden = true; return; }
    const words = this.o.describe ? this.o.describe(p)
      : `#${p.seq} ${when(p.createdUs)} ${p.author}: ${p.vars.join(', ') || p.kind}` +
        (p.spread ? ` · ${p.spread}` : '');
    this.tip.textContent = words;
    this.tip.hidden = false;
    this.tip.style.left = `${Math.min(x, (this.canvas.clientWidth || 0) - 160)}px`;
  }

  draw() {
    const c = this.canvas;
    const w = c.clientWidth || 300, h = c.clientHeight || 36;
    const dpr = globalThis.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr)) c.width = Math.round(w * dpr);
    if (c.height !== Math.round(h * dpr)) c.height = Math.round(h * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.fillStyle = '#222a33';
    g.fillRect(0, h / 2 - 1, w, 2);
    for (const p of this.patches) {
      g.fillStyle = authorColour(p.author);
      const x = this.xOf(p.createdUs, w);
      const tall = p.seq <= this.position ? h - 8 : h / 2;
      g.fillRect(x - MARK_W / 2, (h - tall) / 2, MARK_W, tall);
    }
    const at = this.patches[this.position - 1];
    const x = at ? this.xOf(at.createdUs, w) : 0;
    g.fillStyle = this.live ? '#7fd18b' : '#f2c14e';
    g.fillRect(x - 1.5, 0, 3, h);
    c.setAttribute('aria-valuemin', '0');
    c.setAttribute('aria-valuemax', String(this.patches.length));
    c.setAttribute('aria-valuenow', String(this.position));
  }
}
