// player-page.js — the page `patchbay export` writes: a recorded session
// that plays in any browser, from file:// too, with nothing but itself.
// The page carries the session as a bundle (docs/PROTOCOL.md § Bundle
// files) and the wasm runtime, both in base64, and this script.
//
// Before anything runs, every patch is verified in a runtime instance of
// its own — signature, statement, hashes, chain: a verifier instance
// (runtime/verifier.c), where no patch code is ever loaded — with
// the relay key the bundle names, shown on the page. A file someone
// edited is played up to the patch before the first one that does not
// verify, and the page says which one and why. Then the player
// (src/player.js) indexes the session and shows its last frame; the
// timeline scrubs through it and "play" plays it at its own pace.
import { HistoryPlayer } from './player.js';
import { Timeline } from './timeline.js';
import { decodeSequence } from './msgpack.js';

/* global createPatchbayRuntime */
const $ = (id) => document.getElementById(id);
const hex = (b) => Array.from(b || [], (x) => x.toString(16).padStart(2, '0')).join('');

// What the tests read: where the player is and what it found.
const status = { state: 'loading', verified: 0, count: 0, seq: 0, tUs: 0, problem: '', key: '' };
window.patchbayPlayer = status;

function embedded(type) {
  const el = document.querySelector(`script[type="${type}"]`);
  if (!el) return null;
  const bin = atob(el.textContent.replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function problem(text) {
  status.problem = text;
  $('problem').textContent = text;
  $('problem').hidden = false;
}

// The bundle's head and its patch frames (bytes), or throws saying where
// the file is damaged.
function readBundle(bytes) {
  let values;
  try {
    values = decodeSequence(bytes);
  } catch (e) {
    throw new Error(`the session in this file is damaged (${e.message})`);
  }
  const head = values[0]?.value;
  if (!head || head.t !== 'bundle') throw new Error('this file carries no patchbay session');
  return { head, frames: values.slice(1).map((v) => bytes.subarray(v.at, v.end)) };
}

async function main() {
  const bundle = embedded('application/x-patchbay-bundle');
  const wasm = embedded('application/x-patchbay-wasm');
  if (!bundle || !wasm) throw new Error('this file is missing its session or its runtime');
  const { head, frames } = readBundle(bundle);
  status.key = hex(head.key);
  status.count = frames.length;
  $('room').textContent = head.room;
  const canvas = $('screen');
  const player = new HistoryPlayer({
    createRuntime: createPatchbayRuntime, moduleArgs: { wasmBinary: wasm },
    room: head.room, key: status.key, epoch: Number(head.epoch || 0), tempo: { tempo_bpm: head.tempo_bpm || 0, quantum: head.quantum || 0 },
    canvas: { width: canvas.width, height: canvas.height },
  });

  // 1. every signature and link, before anything runs
  status.state = 'verifying';
  const v = await player.verify(frames, (n) => { $('verdict').textContent = `verifying ${n}/${frames.length}…`; });
  status.verified = v.good;
  if (v.failure) {
    const f = v.failure;
    problem(`Patch ${f.index} of this file does not verify: ${f.error} (code ${f.code}). ` +
            `The session stops before it${v.good ? `, at patch ${v.good}` : ''}.`);
  } else if (frames.length !== Number(head.count)) {
    problem(`This file announces ${head.count} patches but holds ${frames.length}: it was cut or added to.`);
  } else if (frames.length && v.headHash !== hex(head.head_hash)) {
    problem('The last patch is not the one this file announces: it was cut or added to.');
  }
  $('verdict').textContent = `${v.good} patch${v.good === 1 ? '' : 'es'} verified · relay key ${status.key.slice(0, 16)}…`;
  $('verdict').title = `every signature and link checked with the relay key ${status.key}`;
  $('verdict').classList.toggle('bad', !!status.problem);
  player.setPatches(frames.slice(0, v.good));

  // 2. the timeline, and the session's last frame
  const info = player.info.slice(1);
  const ctx = canvas.getContext('2d');
  let playing = false;
  let speed = 1;
  let last = 0;
  const draw = () => {
    const r = player.drawAt(status.tUs / 1e6);
    if (r.ok && player.host?.canvas) {
      const c = player.host.canvas;
      ctx.putImageData(new ImageData(c.pixels().slice(), c.width, c.height), 0, 0);
    }
  };
  const show = (n) => {
    status.seq = n;
    const p = info[n - 1];
    $('patch-title').textContent = p ? `patch ${n} of ${info.length}` : 'before the first patch';
    $('patch-meta').textContent = p
      ? `${new Date(p.createdUs / 1000).toLocaleString()} · ${p.author} · ${p.kind === 'expr' ? 'expression' : p.vars.join(', ')}`
      : '';
    $('patch-source').textContent = p ? p.source : '';
    timeline.setPosition(n);
  };
  const seek = async (n) => {
    playing = false;
    $('play').textContent = 'play';
    await player.seek(n);
    status.tUs = n ? info[n - 1].applyUs : (info[0]?.createdUs || 0);
    show(n);
    draw();
  };
  // one seek at a time, in the order asked (a drag or held arrow key asks
  // many): each starts from where the last one left the player
  let seeking = Promise.resolve();
  const timeline = new Timeline($('timeline'), { onSeek: (n) => { seeking = seeking.then(() => seek(n)).catch(fail); } });
  timeline.setPatches(info);
  status.state = 'indexing';
  await player.index((n, total) => { $('patch-meta').textContent = `indexing ${n}/${total}…`; });
  await seek(info.length);
  status.state = 'ready';
  $('play').disabled = !info.length;

  $('speed').onchange = () => { speed = Number($('speed').value); };
  $('play').onclick = async () => {
    if (playing) {
      playing = false;
      $('play').textContent = 'play';
      return;
    }
    if (status.seq >= info.length) await seek(0); // from the start again
    playing = true;
    $('play').textContent = 'pause';
    last = performance.now();
    requestAnimationFrame(tick);
  };
  const tick = (now) => {
    if (!playing) return;
    status.tUs += (now - last) * 1000 * speed;
    last = now;
    const n = player.playUntil(status.tUs);
    if (n !== status.seq) show(n);
    draw();
    if (n >= info.length && status.tUs > info[info.length - 1].applyUs + 3e6) {
      playing = false;
      $('play').textContent = 'play';
      return;
    }
    requestAnimationFrame(tick);
  };
}

function fail(e) {
  status.state = 'failed';
  problem(String(e && e.message || e));
  $('verdict').textContent = 'not played';
  $('verdict').classList.add('bad');
}

main().catch(fail);
