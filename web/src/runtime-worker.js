// runtime-worker.js — the room's runtime in a Web Worker (bundled as a
// classic worker script, runtime-worker.js in <build>/www): the wasm main
// module (runtime/pb_runtime.js, loaded with importScripts), the JS host
// shared with node (runtime/host.js) and an OffscreenCanvas it draws every
// frame to. The page (src/browser-runtime.js) only starts it, watches it
// (runtime/watchdog.js) and shows what it reports; a worker stuck in a
// patch is terminated from there and a new one started.
//
// Messages in:  {t:'start', link, name, canvas (OffscreenCanvas), width,
//                height, preview, stopped: [{seq, var}], device (what
//                hello says: label, platform, screen, dpr, memory),
//                deviceId (hello's device_id: the page's, the same for
//                each worker), resumeTests (the run a hung test was part
//                of), floor (the highest head verified before, from
//                localStorage)}
//               {t:'inject', bytes}  a frame as if the relay had sent it
//                                    (tests: tampered frames must be refused)
//               {t:'resize', width, height}
//               {t:'probe', id, points: [[x, y]...]}  the last frame's pixels
//               {t:'history', frames}  the room's patch frames from seq 1,
//                                    more of them later (appended), for
//                                    the timeline (src/worker-scrub.js)
//               {t:'scrub', seq}     show the room as it was at patch seq,
//                                    in a player of its own: the live
//                                    runtime keeps running, undrawn
//               {t:'live'}           back to drawing the live runtime
// Messages out: {t:'beat', frames, fps, committedSeq, headSeq, memBytes
//                (the wasm memory), offsetUs, uncertaintyUs, synced, tempo,
//                quantum} every 250 ms while
//                frames are drawn (the watchdog's heartbeat),
//               {t:'call', var, seq} as patch code is entered (once per
//                beat for the same call: which code a hang is in),
//               {t:'event', type, ev} for host events (state, welcome,
//                patch, commit, expr, trap, reject, log, clock,
//                relay_error, tests, head, stale, reset),
//               {t:'floor', head} the verified head to keep (localStorage),
//               {t:'injected', ev} the session's account of an inject,
//               {t:'probe', id, rgba: [0xAABBGGRR...]} (pixels as pb_rgba
//                packs them; 0 outside the canvas or before a frame),
//               {t:'scrubbed', seq, ms, error} a scrub is drawn (ms: from
//                the request to the drawn frame),
//               {t:'indexed', done, total} the timeline's checkpoints,
//               {t:'fatal', message} if the runtime cannot start.
import { RuntimeHost } from '../../runtime/host.js';
import { reportTo } from '../../runtime/watchdog.js';
import { decode } from './msgpack.js';
import { WorkerScrub } from './worker-scrub.js';

/* global importScripts, createPatchbayRuntime */
let host = null;
let report = null; // to the page's watchdog
let ctx2d = null;
let frames = 0;
let lastBeat = 0;
let fpsFrames = 0;
let fpsAt = 0;
let fps = 0;
const post = (m) => self.postMessage(m);
let scrub = null; // the timeline's player (src/worker-scrub.js)

// The editor page's own runtime joins with the editor's token: it draws the
// room's program for its author but speaks for no device, so it sends the
// relay only what any role may send (hello, ping). A real runtime page
// sends everything.
function previewSocket(Base) {
  return class extends Base {
    send(bytes) {
      let t = '';
      try { t = decode(new Uint8Array(bytes)).t; } catch { /* not ours */ }
      if (t === 'hello' || t === 'ping') super.send(bytes);
    }
  };
}

// The canvas shows the live runtime, or, while the timeline shows a past
// patch, that (drawn once per seek). Frames count either way: they are
// the watchdog's heartbeat.
function draw() {
  if (!host) return;
  if (scrub.isActive) {
    scrub.draw(ctx2d);
  } else {
    const r = host.frame();
    if (r.ok && host.canvas) {
      const c = host.canvas;
      ctx2d.putImageData(new ImageData(c.pixels(), c.width, c.height), 0, 0);
    }
  }
  frames++;
  fpsFrames++;
  const now = performance.now();
  if (now - fpsAt >= 1000) {
    fps = Math.round((fpsFrames * 1000) / (now - fpsAt));
    fpsFrames = 0;
    fpsAt = now;
  }
  if (now - lastBeat >= 250) {
    lastBeat = now;
    report.beat({ frames, fps, committedSeq: host.committedSeq, headSeq: host.headSeq,
                  memBytes: host.M.HEAPU8.length,
                  offsetUs: host.clock.offsetUs, uncertaintyUs: host.clock.uncertaintyUs,
                  synced: host.clock.isSynced, tempo: host.room.tempo_bpm || 0, quantum: host.room.quantum || 0 });
  }
  schedule();
}

const schedule = () =>
  (self.requestAnimationFrame ? self.requestAnimationFrame(draw) : setTimeout(draw, 16));

async function start(m) {
  importScripts('runtime/pb_runtime.js');
  host = new RuntimeHost({
    // patches that hung an earlier worker are taken back as they commit
    stopped: m.stopped,
    stoppedMessage: 'did not return within the watchdog limit: the worker was restarted',
    createRuntime: createPatchbayRuntime,
    moduleArgs: { locateFile: (f) => `runtime/${f}` },
    WebSocket: m.preview ? previewSocket(self.WebSocket) : self.WebSocket,
    link: m.link,
    name: m.name,
    device: m.device,
    deviceId: m.deviceId,
    canvas: { width: m.width, height: m.height },
    resumeTests: m.resumeTests,
    // the page keeps the floor in localStorage (src/browser-runtime.js)
    store: { load: () => m.floor || null, save: (key, room, head) => post({ t: 'floor', head }) },
  });
  for (const type of ['state', 'welcome', 'patch', 'commit', 'expr', 'trap', 'reject', 'log', 'clock',
                      'relay_error', 'tests', 'head', 'stale', 'reset'])
    host.on(type, (ev) => post({ t: 'event', type, ev: plain(ev) }));
  report = reportTo(host, post);
  scrub = new WorkerScrub({
    post, link: host.link, size: { width: m.width, height: m.height }, tempo: () => host.room,
    epoch: () => JSON.parse(host.V.UTF8ToString(host.V._rt_session_head())).epoch,
  });
  ctx2d = m.canvas.getContext('2d');
  await host.start();
  fpsAt = performance.now();
  schedule();
}

// Events go through structured clone: keep them plain data.
function plain(ev) {
  try { return JSON.parse(JSON.stringify(ev ?? null)); } catch { return { text: String(ev) }; }
}

self.onmessage = (e) => {
  const m = e.data;
  if (m.t === 'start') {
    start(m).catch((err) => post({ t: 'fatal', message: String(err && err.message || err) }));
  } else if (m.t === 'inject' && host) {
    const ev = host.receive(new Uint8Array(m.bytes));
    post({ t: 'injected', ev: plain(ev) });
  } else if (m.t === 'history' && scrub) {
    scrub.history(m.frames);
  } else if (m.t === 'scrub' && scrub) {
    scrub.scrub(m.seq);
  } else if (m.t === 'live' && scrub) {
    scrub.live();
  } else if (m.t === 'probe') {
    const c = scrub?.canvas || (host && host.canvas);
    const px = c ? new Uint32Array(c.pixels().buffer, c.pixels().byteOffset, c.width * c.height) : null;
    const rgba = (m.points || []).map(([x, y]) =>
      (px && x >= 0 && y >= 0 && x < c.width && y < c.height ? px[y * c.width + x] : 0));
    post({ t: 'probe', id: m.id, rgba });
  } else if (m.t === 'resize' && host) {
    ctx2d.canvas.width = m.width;
    ctx2d.canvas.height = m.height;
    host.attachCanvas(m.width, m.height);
  }
};
