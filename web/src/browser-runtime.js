// browser-runtime.js — the page's side of the in-browser runtime: starts
// runtime-worker.js with an OffscreenCanvas taken from a <canvas>, relays
// its events, and is its watchdog (runtime/watchdog.js, the same as the
// node runtime's). A worker that draws no frame for `stallMs` (1 s) is
// stuck in patch code (an endless loop): it is terminated, the var and
// patch it was stuck in are named, and a new worker (on a fresh canvas: a
// canvas hands its control to one worker only) rejoins the room, catches
// up and takes that patch back as soon as it commits again.
//
//   const rt = new BrowserRuntime({ canvas, link, name, label, preview, onEvent });
//   rt.start();  rt.state  rt.stats  rt.inject(bytes)  rt.stop()
//   rt.history(frames)  rt.scrub(seq)  rt.live()   the editor's timeline
//
// onEvent(type, ev): the host's events (runtime/host.js: state, welcome,
// commit, trap, reject, log, clock, relay_error, tests, head, stale,
// reset), plus 'beat'
// (frames drawn, fps, clock) and 'restart' {seq, var, message}.
import { newDeviceId } from '../../runtime/farm.js';
import { Watchdog } from '../../runtime/watchdog.js';

const STOPPED_KEY = 'patchbay:stopped';
// The highest head verified per (relay key, room): what no restart and no
// unsigned claim may take this device below (runtime/freshness.js). The
// worker has no localStorage: the page loads it for each new worker and
// saves what the worker reports.
const floorKey = (link) => `patchbay:head:${link.key}:${link.room}`;

export class BrowserRuntime {
  constructor({ canvas, link, name = '', label = '', preview = false, width, height, stallMs = 1000, onEvent }) {
    this.canvas = canvas;
    this.link = link;
    this.name = name;
    this.label = label;
    this.preview = preview;
    this.width = width || canvas.width;
    this.height = height || canvas.height;
    this.onEvent = onEvent || (() => {});
    this.worker = null;
    this.watchdog = new Watchdog({ limitMs: stallMs });
    this.stats = { frames: 0, fps: 0, committedSeq: 0, restarts: 0, offsetUs: 0, uncertaintyUs: Infinity };
    this.state = 'starting';
    this.stopped = loadStopped(link);
    this.resumeTests = null; // the test run a hung test was part of
    this.watch = null;
    // hello's device_id, the same for every worker of this page: a worker
    // that takes a hung one's place replaces its connection at once (the
    // browser closes a terminated worker's socket only later)
    this.deviceId = newDeviceId();
    this.historyFrames = []; // the timeline's, handed again to a new worker
  }

  // What the runtime says about this device in hello (docs/PROTOCOL.md
  // § Device testing); the worker adds its wasm features and the canvas.
  device() {
    return {
      label: this.label, platform: navigator.userAgent,
      screen_w: screen.width, screen_h: screen.height, dpr: devicePixelRatio,
      ram_bytes: (navigator.deviceMemory || 0) * 2 ** 30, cores: navigator.hardwareConcurrency || 0,
    };
  }

  start() {
    const w = new Worker('runtime-worker.js');
    this.worker = w;
    this.watchdog.restart();
    const off = this.canvas.transferControlToOffscreen();
    w.onmessage = (e) => this.onMessage(e.data);
    w.onerror = (e) => this.emit('log', { level: 'error', text: `runtime worker: ${e.message}` });
    w.postMessage({ t: 'start', link: this.link, name: this.name, canvas: off, width: this.width,
                    height: this.height, preview: this.preview, stopped: [...this.stopped.values()],
                    device: this.device(), deviceId: this.deviceId, resumeTests: this.resumeTests,
                    floor: loadFloor(this.link) },
                  [off]);
    if (this.historyFrames.length) w.postMessage({ t: 'history', frames: this.historyFrames });
    clearInterval(this.watch);
    this.watch = setInterval(() => this.check(), 200);
    return this;
  }

  emit(type, ev) {
    try { this.onEvent(type, ev); } catch (e) { queueMicrotask(() => { throw e; }); }
  }

  onMessage(m) {
    if (this.watchdog.read(m) && m.t === 'call') return;
    switch (m.t) {
      case 'beat':
        Object.assign(this.stats, m);
        this.emit('beat', this.stats);
        break;
      case 'event':
        if (m.type === 'state') this.state = m.ev.state;
        // a worker that hangs before its first frame is caught too
        if (m.type === 'welcome') this.watchdog.arm();
        this.emit(m.type, m.ev);
        break;
      case 'probe': {
        const done = this.probes?.get(m.id);
        this.probes?.delete(m.id);
        done?.(m.rgba);
        break;
      }
      case 'injected':
        this.emit('injected', m.ev);
        break;
      case 'floor':
        try { localStorage.setItem(floorKey(this.link), JSON.stringify(m.head)); } catch { /* disabled or full */ }
        break;
      case 'scrubbed':
      case 'indexed':
        this.emit(m.t, m);
        break;
      case 'fatal':
        this.state = 'failed';
        this.emit('state', { state: 'failed', detail: m.message });
        break;
      default:
        break;
    }
  }

  // The watchdog: no frame for stallMs (after the first one) means the
  // worker is stuck, in the patch code it last said it entered.
  check() {
    const culprit = this.worker && this.watchdog.check();
    if (!culprit) return;
    const quiet = (culprit.quietMs / 1000).toFixed(1);
    const message = culprit.seq
      ? `${culprit.var} of patch #${culprit.seq} did not return within ${quiet} s (an endless loop?): ` +
        'the runtime was restarted without it'
      : `the runtime did not respond for ${quiet} s: it was restarted`;
    if (culprit.seq) {
      this.stopped.set(culprit.seq, { seq: culprit.seq, var: culprit.var });
      saveStopped(this.link, this.stopped);
    }
    this.resumeTests = Watchdog.resume(culprit, `did not return within ${quiet} s: the runtime was restarted ` +
                                                `without its patch (#${culprit.seq})`);
    this.worker.terminate();
    this.worker = null;
    this.stats.restarts++;
    this.emit('restart', { seq: culprit.seq, var: culprit.var, message });
    // a canvas gives its control away once: continue on a fresh one
    const fresh = this.canvas.cloneNode(false);
    this.canvas.replaceWith(fresh);
    this.canvas = fresh;
    this.start();
  }

  inject(bytes) { this.worker?.postMessage({ t: 'inject', bytes }); }

  // The timeline (src/scrub.js): the room's patch frames, from seq 1 and
  // in order, appended; the room as it was at patch seq (in a player of
  // the worker's own: the live runtime keeps running); back to live.
  history(frames) {
    this.historyFrames.push(...frames);
    this.worker?.postMessage({ t: 'history', frames });
  }

  scrub(seq) { this.worker?.postMessage({ t: 'scrub', seq }); }

  live() { this.worker?.postMessage({ t: 'live' }); }

  // The last frame's pixels at points [[x, y]...], packed as pb_rgba does.
  probe(points) {
    if (!this.worker) return Promise.resolve(points.map(() => 0));
    this.probes ??= new Map();
    const id = (this.probeId = (this.probeId || 0) + 1);
    return new Promise((resolve) => {
      this.probes.set(id, resolve);
      this.worker.postMessage({ t: 'probe', id, points });
    });
  }

  stop() {
    clearInterval(this.watch);
    this.worker?.terminate();
    this.worker = null;
  }
}

// Patches that hung this tab's runtime stay stopped across reloads of the
// tab (per room), so a reload does not hang on them again.
function loadFloor(link) {
  try {
    const h = JSON.parse(localStorage.getItem(floorKey(link)) || 'null');
    return h && Number.isSafeInteger(h.epoch) && Number.isSafeInteger(h.seq) && typeof h.hash === 'string' ? h : null;
  } catch { return null; }
}

function loadStopped(link) {
  try {
    const all = JSON.parse(sessionStorage.getItem(STOPPED_KEY) || '{}');
    return new Map((all[link.room || ''] || []).map((s) => [s.seq, s]));
  } catch { return new Map(); }
}

function saveStopped(link, map) {
  try {
    const all = JSON.parse(sessionStorage.getItem(STOPPED_KEY) || '{}');
    all[link.room || ''] = [...map.values()].slice(-50);
    sessionStorage.setItem(STOPPED_KEY, JSON.stringify(all));
  } catch { /* storage full or disabled: only this worker generation knows */ }
}
