#!/usr/bin/env node
// patchbay-runtime.mjs — joins a room as a headless runtime and prints one
// line per patch (prepared, committed, rejected, trapped) and the patches'
// output. What CI, load tests and devices without a screen run.
//
// The runtime runs in a worker thread and this (main) thread is its
// watchdog (runtime/watchdog.js, the same as a page's for its browser
// worker): a patch that never returns (an endless loop in pb_init or a
// test) stops the worker's heartbeat; after --watchdog-ms the worker is
// terminated, the var and patch it was stuck in named, and a new worker
// rejoins, catches up and takes that patch back the moment it commits (a
// failed ack saying "watchdog"), before its code runs again.
import { isMainThread, parentPort, workerData, Worker } from 'node:worker_threads';
import { reportTo, Watchdog } from '../watchdog.js';
import { PB_HEAD_STALE_US } from '../pb_protocol.js';
import { joinRoom, newDeviceId, parseLink } from './runtime.mjs';

const USAGE = `usage: patchbay-runtime <link> [--label L] [--width W --height H] [-q]

Joins the room of a join link as a headless runtime: verifies every patch
with the relay key from the link, loads it, and swaps it in at its apply
time; prints one line per patch and the patches' output. It answers the
room's test runs (patchbay test) and, with a canvas, its snapshots.

  <link>       a runtime link printed by \`patchbay token --role runtime\`
               (http://HOST:PORT/runtime.html#room=R&token=T&key=HEX)
  --label L    the device's name in test matrices and snapshot files
               (default: &label= in the link, else the token's name)
  --width W --height H  a canvas of W x H pixels: pb_frame draws on it for
               snapshots and pb_screen() returns it (default: none), so CI
               can stand up devices of any size
  --name N     a name for this runtime, shown to the room's editors
  --ca FILE    for an https:// link (wss): trust this PEM CA, e.g. a
               private one (default $PATCHBAY_CA, else the system's CAs)
  -q, --quiet  print only rejections, traps and connection failures
  --watchdog-ms N  restart the runtime without a patch that has not
               returned after N ms (default 2000)
  -h, --help   this help

The wasm runtime is read from $PB_RUNTIME_JS or ../pb_runtime.cjs.
exit status: 0 stopped by a signal, 1 the token was refused, 2 usage`;

function parseArgs(argv) {
  const o = { link: null, name: '', label: '', width: 0, height: 0, quiet: false, watchdogMs: 2000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return { help: true };
    if (a === '-q' || a === '--quiet') o.quiet = true;
    else if (a === '--ca') {
      if (i + 1 >= argv.length) throw new Error('--ca needs a file');
      o.ca = argv[++i];
    } else if (a === '--name' || a === '--label') {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      o[a.slice(2)] = argv[++i];
      if (a === '--label' && Buffer.byteLength(o.label) > 64) throw new Error('--label is at most 64 bytes');
    } else if (a === '--width' || a === '--height') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1 || v > 8192) throw new Error(`${a} wants a whole number of pixels, 1 to 8192`);
      o[a.slice(2)] = v;
    } else if (a === '--watchdog-ms') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 100) throw new Error('--watchdog-ms wants a whole number of ms, at least 100');
      o.watchdogMs = v;
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (o.link) throw new Error(`one link only (got a second: ${a.slice(0, 60)})`);
    else o.link = a;
  }
  if (!o.link) throw new Error('a join link is required');
  if (!o.width !== !o.height) throw new Error('--width and --height go together');
  // how its lines are tagged: its name, else its label
  let linkLabel = '';
  try { linkLabel = parseLink(o.link).label; } catch { /* joinRoom says what is wrong */ }
  o.tag = o.name || o.label || linkLabel || 'runtime';
  return o;
}

if (isMainThread) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`patchbay-runtime: ${e.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const stopped = [];
  const watchdog = new Watchdog({ limitMs: opts.watchdogMs, now: Date.now });
  let worker = null;
  let resumeTests = null; // the test run a hung test was part of
  // every runtime thread of this process is the same device to the relay:
  // one that takes a hung one's place replaces its connection at once
  const deviceId = newDeviceId();
  const start = () => {
    watchdog.restart();
    const w = new Worker(new URL(import.meta.url), { workerData: { opts, stopped, resumeTests, deviceId } });
    worker = w;
    w.on('message', (m) => {
      if (w !== worker) return; // a terminated thread's last words
      if (watchdog.read(m)) return;
      if (m.t === 'out') console.log(m.line);
      else if (m.t === 'exit') { if (m.error) console.error(m.error); process.exit(m.code); }
    });
    w.on('error', (e) => { console.error(`patchbay-runtime: ${e.stack || e}`); process.exit(3); });
  };
  setInterval(() => {
    const c = watchdog.check();
    if (!c) return;
    console.log(`[${opts.tag}] ` +
                (c.seq ? `seq ${c.seq} ${c.var} did not return within ${opts.watchdogMs} ms (an endless loop?): ` +
                         'restarting the runtime without it'
                       : `the runtime did not respond for ${opts.watchdogMs} ms: restarting it`));
    if (c.seq) stopped.push({ seq: c.seq, var: c.var });
    resumeTests = Watchdog.resume(c, `did not return within ${opts.watchdogMs} ms: the runtime was restarted ` +
                                     `without its patch (seq ${c.seq})`);
    worker.terminate();
    start();
  }, 100);
  for (const sig of ['SIGINT', 'SIGTERM'])
    process.on(sig, () => { worker?.terminate(); process.exit(0); });
  start();
} else {
  await runWorker(workerData.opts);
}

async function runWorker(opts) {
  const ms = (us) => `${(us / 1000).toFixed(1)} ms`;
  const out = (s) => parentPort.postMessage({ t: 'out', line: `[${opts.tag}] ${s}` });
  let rt;
  try {
    rt = await joinRoom(opts.link, {
      name: opts.name,
      deviceId: workerData.deviceId,
      ca: opts.ca,
      device: { label: opts.label || undefined },
      canvas: opts.width ? { width: opts.width, height: opts.height } : null,
      // patches that hung an earlier runtime thread are taken back as they commit
      stopped: workerData.stopped,
      stoppedMessage: `did not return within ${opts.watchdogMs} ms: the runtime was restarted without it`,
      // and the test run it hung in is answered
      resumeTests: workerData.resumeTests,
    });
  } catch (e) {
    parentPort.postMessage({ t: 'exit', code: 2, error: `patchbay-runtime: ${e.message}` });
    await new Promise(() => {}); // the main thread ends the process
  }
  rt.on('state', ({ state, detail }) => {
    if (state === 'failed') {
      parentPort.postMessage({ t: 'exit', code: 1, error: `patchbay-runtime: ${detail}` });
      return;
    }
    if (!opts.quiet) out(`${state}${detail ? `: ${detail}` : ''}`);
  });
  rt.on('patch', (p) => {
    if (p.ok && !opts.quiet)
      out(`seq ${p.seq} prepared (verify ${ms(p.verify_us)}, load ${ms(p.prepare_us)})`);
  });
  rt.on('commit', (c) => {
    if (opts.quiet || c.expr) return; // an expression: its value is the line
    const late = c.commit_at_us - c.apply_us;
    out(`seq ${c.seq} committed ${c.vars.join(' ') || '(no vars)'}` +
        `${c.catchup ? ' (catch-up)' : late > 1000 ? ` (${ms(late)} late)` : ''}`);
  });
  rt.on('reject', (r) => out(`seq ${r.seq} REJECTED: ${r.error} (code ${r.code})`));
  rt.on('trap', (t) => out(`seq ${t.seq} TRAPPED in ${t.var}: ${t.message}; rolled back ${t.vars.join(' ')}`));
  rt.on('expr', (r) => {
    if (r.ok && !opts.quiet) out(`seq ${r.seq} => ${r.value}`);
    else if (!r.ok) out(`seq ${r.seq} TRAPPED in ${r.var}: ${r.error}; the expression changed nothing`);
  });
  rt.on('relay_error', (e) => out(`relay: ${e.message}`));
  // what signed heads say (docs/SECURITY.md § Rollback and freeze): printed
  // even with --quiet, since each means the room may not be what it seems
  rt.on('stale', ({ since_us: since }) => out(since
    ? `STALE since ${new Date(since / 1000).toISOString()}: no fresh signed head from the relay ` +
      `for over ${PB_HEAD_STALE_US / 1e6} s (withheld or cut off?)`
    : 'fresh again: a signed head from the relay arrived'));
  rt.on('reset', (r) => out(`RESET: the relay signed a new epoch of the room (${r.epoch}); ` +
                            `starting afresh from seq 0, this runtime was at seq ${r.from_seq}`));
  rt.on('log', (l) => { if (!opts.quiet) out(`${l.var || '-'}: ${l.text}`); });
  rt.on('tests', ({ results }) => {
    if (opts.quiet) return;
    const bad = results.filter((r) => !r.ok);
    out(`tests: ${results.length - bad.length} of ${results.length} passed` +
        `${bad.length ? ` (not: ${bad.map((r) => r.name).join(' ')})` : ''}`);
  });
  // The watchdog's view: a heartbeat while this thread is free (the first
  // now: the runtime is loaded), and which patch code it enters.
  const report = reportTo(rt, (m) => parentPort.postMessage(m));
  report.beat();
  setInterval(() => report.beat(), 250);
}
