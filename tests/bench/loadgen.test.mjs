// loadgen.test.mjs — the load generator of bench/fanout.mjs (bench/loadgen.c)
// against a real relay, small: it must join its runtimes, count every
// delivery of every eval (and say so in its JSON), read the relay's CPU
// time, spread runtimes over two relays' addresses, and refuse bad input
// with a clear error and exit status 2. No timing is checked: figures are
// bench/'s business.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { ServedRelay } from '../serve.mjs';

const CLI = process.env.PB_CLI, LOADGEN = process.env.PB_LOADGEN;
if (!CLI || !LOADGEN) throw new Error('set PB_CLI and PB_LOADGEN (ctest does)');
let relay;

after(async () => { await relay?.stop(); });

const run = (args, input) => new Promise((resolve) => {
  const p = execFile(LOADGEN, args, (e, stdout, stderr) => resolve({ code: e ? e.code : 0, stdout, stderr }));
  if (input) p.stdin.end(input);
});

test('20 runtimes and 3 evals: every delivery counted, none missing or repeated', async () => {
  relay = new ServedRelay(CLI, 'pb-loadgen-');
  // (three runs of 4 evals each within a second or so: above the default
  // rate of 10 evals a second per token name)
  await relay.serve(['-q', '--backend', 'process', '--evals-per-second', '1000',
                     '--room-evals-per-second', '1000']);
  const url = `ws://127.0.0.1:${relay.port}`;
  const args = ['--room', 'fan', '--token', relay.token('fan', 'runtime', 'rt'),
                '--editor-token', relay.token('fan', 'editor', 'ed'), '--clients', '20', '--evals', '3',
                '--gap-ms', '0', '--cpu-pid', String(relay.proc.pid), '--json', '-q'];
  const r = await run(['--url', url, ...args]);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.expected, 60);
  assert.equal(j.delivered, 60);
  assert.equal(j.repeats, 0);
  assert.equal(j.closed, 0);
  assert.ok(j.frame_bytes > 100, `a patch frame: ${j.frame_bytes} bytes`);
  assert.equal(j.cpu_ms_each.length, 1);
  // user + system = the whole (each rounded to 4 places)
  assert.ok(Math.abs(j.user_ms_per_1000 + j.sys_ms_per_1000 - j.cpu_ms_per_1000) < 0.001,
            JSON.stringify(j));
  // --wait-go: "joined", then the rounds once a line comes, then "rounds done"
  const go = await run(['--url', url, ...args, '--wait-go'], 'go\n');
  assert.equal(go.code, 0, go.stderr);
  const lines = go.stdout.trim().split('\n');
  assert.deepEqual(lines.slice(0, 2), ['joined', 'rounds done']);
  assert.equal(JSON.parse(lines[2]).delivered, 60);
  // the same relay named twice is one relay; two addresses of it are two
  const two = await run(['--url', `${url},ws://localhost:${relay.port}`, ...args]);
  assert.equal(two.code, 0, two.stderr);
  assert.equal(JSON.parse(two.stdout).delivered, 60);
});

test('a refused token and bad options are named, with exit status 1 and 2', async () => {
  const url = `ws://127.0.0.1:${relay.port}`;
  const bad = await run(['--url', url, '--room', 'fan', '--token', 'pb1.nope', '--editor-token',
                         relay.token('fan', 'editor', 'ed'), '--clients', '2', '--evals', '1', '-q']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /loadgen: client \d+: the relay said: /);
  for (const [args, msg] of [[['--url', url], /needs --token/], [['--url', url, '--clients', '0'], /--clients 0: expected a number from 1/],
                             [['--url', 'ws://:1', '--raw'], /--url ws:\/\/:1: no host name/], [['--bogus'], /--bogus: unknown option/],
                             [['--url', url, '--raw', '--cpu-pid', 'x'], /--cpu-pid x: expected/]]) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
  const help = await run(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: loadgen/);
});
