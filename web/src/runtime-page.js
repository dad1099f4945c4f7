// runtime-page.js — the runtime page (runtime.html): a full-screen canvas
// for projectors and phones that joins the room with a runtime token (from
// the link `patchbay token --role runtime` prints) and runs the room's
// program in a Web Worker (src/browser-runtime.js). A small overlay shows
// the room, the connection, the clock and the last patch; a tap or H hides
// it (remembered per device).
//
// The canvas keeps the screen's aspect at a low resolution (width 480 by
// default; `&width=N` in the link's fragment changes it) and is scaled up
// with crisp pixels. `&label=pixel-7` names the device in the room's test
// matrices and snapshots. For tests, state is readable as window.patchbay.
import { takeJoinUrl } from './fragment.js';
import { BrowserRuntime } from './browser-runtime.js';
import { parseLink } from '../../runtime/link.js';

const $ = (id) => document.getElementById(id);
// The join link (runtime/link.js); without a whole one the page says what
// is missing instead of joining.
const joinUrl = takeJoinUrl(); // the fragment, then cleared from view
let link = null, linkError = '';
try {
  link = parseLink(joinUrl);
} catch (e) {
  linkError = e.message;
}
const params = new URLSearchParams(new URL(joinUrl).hash.replace(/^#/, ''));
const width = Math.max(16, Math.min(1920, Number(params.get('width')) || 480));
const height = Math.max(16, Math.round((width * innerHeight) / Math.max(1, innerWidth)));

const state = {
  link, conn: 'connecting', detail: '', width, height, staleSinceUs: 0, resets: [],
  commits: [], prepared: [], rejects: [], traps: [], restarts: [], logs: [], tests: [], stats: {},
};
window.patchbay = state;

function setConn(s, detail = '') {
  state.conn = s;
  state.detail = detail;
  const c = $('conn');
  c.className = `conn ${s}`;
  c.textContent = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', waiting: 'offline',
                    failed: 'cannot join', closed: 'closed' }[s] || s;
  c.title = detail;
  if (detail && s !== 'live') $('last').textContent = detail;
}

function last(text, cls = '') {
  const l = $('last');
  l.textContent = text;
  l.className = `line ${cls}`;
}

const overlay = $('overlay');
const hideKey = 'patchbay:overlay-hidden';
const setHidden = (h) => {
  overlay.classList.toggle('hidden', h);
  localStorage.setItem(hideKey, h ? '1' : '');
};
setHidden(!!localStorage.getItem(hideKey));
addEventListener('keydown', (e) => { if (e.key === 'h' || e.key === 'H') setHidden(!overlay.classList.contains('hidden')); });
document.body.addEventListener('click', () => setHidden(!overlay.classList.contains('hidden')));

function onEvent(type, ev) {
  switch (type) {
    case 'state': setConn(ev.state, ev.detail); break;
    case 'welcome': $('room').textContent = link.label ? `${link.room} · ${link.label}` : link.room; break;
    case 'commit':
      state.commits.push(ev);
      if (state.commits.length > 200) state.commits.shift();
      last(`#${ev.seq} ${(ev.vars || []).join(' ')} committed${ev.late_us > 1000 ? ` ${(ev.late_us / 1000).toFixed(1)} ms late` : ''}`, 'ok');
      break;
    case 'patch':
      if (ev.ok) { state.prepared.push(ev); if (state.prepared.length > 200) state.prepared.shift(); }
      break;
    case 'reject':
      state.rejects.push(ev);
      last(`refused a patch${ev.seq ? ` #${ev.seq}` : ''}: ${ev.error}`, 'error');
      break;
    case 'trap':
      state.traps.push(ev);
      last(`trap in ${ev.var} (#${ev.seq}), rolled back: ${ev.message}`, 'error');
      break;
    case 'restart':
      state.restarts.push(ev);
      last(ev.message, 'error');
      break;
    case 'log':
      state.logs.push(ev);
      if (state.logs.length > 200) state.logs.shift();
      break;
    case 'relay_error':
      last(`relay: ${ev.message}`, 'error');
      break;
    case 'stale': {
      // no fresh signed head for PB_HEAD_STALE_US: the relay (or someone
      // between) may be withholding patches (docs/SECURITY.md § Freeze)
      state.staleSinceUs = ev.since_us;
      const s = $('stale');
      s.hidden = !ev.since_us;
      s.textContent = ev.since_us ? `stale since ${new Date(ev.since_us / 1000).toLocaleTimeString()}` : '';
      break;
    }
    case 'reset':
      state.resets.push(ev);
      last(`the relay began the room again (signed epoch ${ev.epoch}): started afresh`, 'error');
      break;
    case 'tests': {
      state.tests.push(ev);
      if (state.tests.length > 50) state.tests.shift();
      const bad = ev.results.filter((r) => !r.ok).length;
      last(`tests: ${ev.results.length - bad} of ${ev.results.length} passed`, bad ? 'error' : 'ok');
      break;
    }
    case 'beat':
      state.stats = { ...ev };
      $('line').textContent = `${ev.fps} fps · patch #${ev.committedSeq} · clock ±${
        Number.isFinite(ev.uncertaintyUs) ? (ev.uncertaintyUs / 1000).toFixed(1) : '?'} ms · ${width}×${height}${
        ev.tempo ? ` · ${ev.tempo} BPM${ev.quantum ? `/${ev.quantum}` : ''}` : ''}`;
      break;
    default:
      break;
  }
}

if (!link) {
  setConn('failed', `${linkError}: open the runtime link that patchbay token prints`);
} else {
  $('room').textContent = link.room;
  const canvas = $('screen');
  canvas.width = width;
  canvas.height = height;
  state.runtime = new BrowserRuntime({
    canvas, width, height, name: link.name || navigator.userAgent.slice(0, 120), label: link.label, link, onEvent,
  }).start();
}
