#!/usr/bin/env node
// patchbay-runtime.mjs — joins a room as a headless runtime and prints one
// line per patch (prepared, committed, rejected, trapped) and the patches'
// output. What CI, load tests and devices without a screen run.
import { joinRoom } from './runtime.mjs';

const USAGE = `usage: patchbay-runtime <link> [--name N] [-q]

Joins the room of a join link as a headless runtime: verifies every patch
with the relay key from the link, loads it, and swaps it in at its apply
time; prints one line per patch and the patches' output.

  <link>       a runtime link printed by \`patchbay token --role runtime\`
               (http://HOST:PORT/runtime.html#room=R&token=T&key=HEX)
  --name N     a name for this runtime, shown to the room's editors
  -q, --quiet  print only rejections, traps and connection failures
  -h, --help   this help

The wasm runtime is read from $PB_RUNTIME_JS or ../pb_runtime.cjs.
exit status: 0 stopped by a signal, 1 the token was refused, 2 usage`;

function parseArgs(argv) {
  const o = { link: null, name: '', quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return { help: true };
    if (a === '-q' || a === '--quiet') o.quiet = true;
    else if (a === '--name') {
      if (i + 1 >= argv.length) throw new Error('--name needs a value');
      o.name = argv[++i];
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (o.link) throw new Error(`one link only (got a second: ${a.slice(0, 60)})`);
    else o.link = a;
  }
  if (!o.link) throw new Error('a join link is required');
  return o;
}

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

const ms = (us) => `${(us / 1000).toFixed(1)} ms`;
const out = (s) => console.log(`[${opts.name || 'runtime'}] ${s}`);
let rt;
try {
  rt = await joinRoom(opts.link, { name: opts.name });
} catch (e) {
  console.error(`patchbay-runtime: ${e.message}`);
  process.exit(2);
}
rt.on('state', ({ state, detail }) => {
  if (state === 'failed') {
    console.error(`patchbay-runtime: ${detail}`);
    process.exit(1);
  }
  if (!opts.quiet) out(`${state}${detail ? `: ${detail}` : ''}`);
});
rt.on('patch', (p) => {
  if (p.ok && !opts.quiet)
    out(`seq ${p.seq} prepared (verify ${ms(p.verify_us)}, load ${ms(p.prepare_us)})`);
});
rt.on('commit', (c) => {
  if (opts.quiet) return;
  const late = c.commit_at_us - c.apply_us;
  out(`seq ${c.seq} committed ${c.vars.join(' ') || '(no vars)'}` +
      `${c.catchup ? ' (catch-up)' : late > 1000 ? ` (${ms(late)} late)` : ''}`);
});
rt.on('reject', (r) => out(`seq ${r.seq} REJECTED: ${r.error} (code ${r.code})`));
rt.on('trap', (t) => out(`seq ${t.seq} TRAPPED in ${t.var}: ${t.message}; rolled back ${t.vars.join(' ')}`));
rt.on('relay_error', (e) => out(`relay: ${e.message}`));
rt.on('log', (l) => { if (!opts.quiet) out(`${l.var || '-'}: ${l.text}`); });
for (const sig of ['SIGINT', 'SIGTERM'])
  process.on(sig, () => { rt.close(); process.exit(0); });
