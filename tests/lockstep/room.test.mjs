// room.test.mjs — lockstep in a room of 10 node runtimes on loopback,
// against the real relay and compiler: 100 patches, each committed by
// every runtime, in seq order, none before its apply time on that
// runtime's room clock; with a tempo, apply times land on quantum
// boundaries; `patchbay room` shows and sets the settings (owner only);
// `patchbay log` shows how many runtimes committed each patch and the
// spread of their commit times. Prints the spread it saw (no threshold:
// bench/lockstep.mjs measures it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { Relay, joinRoom, until, encode, decode, CLI } from '../runtime/harness.mjs';

const run = promisify(execFile);
const ROOM = 'lockstep';
const N_RUNTIMES = 10;
const N_PATCHES = 100;
let relay, runtimes = [], editor;

// An editor on one socket, sending evals one after the other.
class Editor {
  constructor(token) {
    this.req = 0;
    this.waiting = new Map();
    this.committed = new Map(); // seq -> committed acks forwarded by the relay
    this.ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${ROOM}`, 'patchbay');
    this.ws.binaryType = 'arraybuffer';
    this.ready = new Promise((resolve, reject) => {
      this.ws.onopen = () => this.ws.send(encode({ v: 1, t: 'hello', token, client: 'lockstep.test' }));
      this.ws.onerror = (e) => reject(e.error || new Error('editor socket failed'));
      this.ws.onmessage = (ev) => {
        const f = decode(new Uint8Array(ev.data));
        if (f.t === 'welcome') resolve();
        if (f.t === 'ack' && f.state === 'committed')
          this.committed.set(f.seq, (this.committed.get(f.seq) || 0) + 1);
        if ((f.t === 'diag' || f.t === 'error') && this.waiting.has(f.req)) {
          this.waiting.get(f.req)(f);
          this.waiting.delete(f.req);
        }
      };
    });
  }
  async eval(source) {
    const req = ++this.req;
    const answer = new Promise((resolve) => this.waiting.set(req, resolve));
    this.ws.send(encode({ v: 1, t: 'eval', req, lang: 'c', name: `p${req}.c`, source }));
    const f = await Promise.race([answer, new Promise((_, rej) =>
      setTimeout(() => rej(new Error(`eval ${req}: no answer`)), 30000))]);
    if (f.t === 'error' && f.code === 47) { // PB_ERR_RATE_LIMITED: back off and resend
      await new Promise((r) => setTimeout(r, 200));
      return this.eval(source);
    }
    assert.ok(f.t === 'diag' && f.ok, `eval ${req} refused: ${JSON.stringify(f)}`);
    return f.seq;
  }
  close() { this.ws.close(); }
}

before(async () => {
  relay = await new Relay().start();
  for (let i = 0; i < N_RUNTIMES; i++) {
    const rt = await joinRoom(relay.link(ROOM, `rt${i}`), { name: `rt${i}` });
    rt.commits = [];
    rt.on('commit', (c) => rt.commits.push(c));
    runtimes.push(rt);
  }
  await until(() => runtimes.every((r) => r.state === 'live'), 'every runtime live');
  editor = new Editor(relay.token(ROOM, 'owner', 'conductor'));
  await editor.ready;
});

after(async () => {
  editor?.close();
  for (const r of runtimes) r.close();
  await relay?.stop();
});

test(`${N_PATCHES} patches: every runtime commits each, in order, none early`, async () => {
  const seqs = [];
  for (let i = 0; i < N_PATCHES; i++)
    seqs.push(await editor.eval(`double v${i % 7}(double x) { return x + ${i}; }\n`));
  const last = seqs.at(-1);
  await until(() => runtimes.every((r) => r.commits.some((c) => c.seq === last)), 'the last patch everywhere', 60000);
  const spreads = [];
  for (const [i, r] of runtimes.entries()) {
    const live = r.commits.filter((c) => seqs.includes(c.seq));
    assert.deepEqual(live.map((c) => c.seq), seqs, `runtime ${i} committed every patch, in order`);
    for (const c of live) {
      assert.ok(!c.catchup, `runtime ${i} got seq ${c.seq} live`);
      assert.ok(c.commit_at_us >= c.apply_us,
                `runtime ${i} committed seq ${c.seq} ${(c.apply_us - c.commit_at_us) / 1000} ms early: ${JSON.stringify(c)}`);
    }
  }
  for (const s of seqs) {
    const at = runtimes.map((r) => r.commits.find((c) => c.seq === s).commit_at_us);
    spreads.push(Math.max(...at) - Math.min(...at));
  }
  spreads.sort((a, b) => a - b);
  console.log(`# commit spread across ${N_RUNTIMES} runtimes in one node process: ` +
              `p50 ${(spreads[spreads.length >> 1] / 1000).toFixed(2)} ms, ` +
              `max ${(spreads.at(-1) / 1000).toFixed(2)} ms`);
  // the values of the last definitions
  assert.equal(runtimes[3].call(`v${(N_PATCHES - 1) % 7}`, 1), N_PATCHES);
});

test('patchbay room shows and sets the tempo; apply times land on quantum boundaries', async () => {
  const url = `ws://127.0.0.1:${relay.port}`;
  const show = await run(CLI, ['room', '--url', url, '--token', relay.token(ROOM, 'viewer', 'v')]);
  assert.match(show.stdout, /room lockstep: no tempo, patches apply after the lead, lead 50\.0 ms|lead adaptive/);
  // an editor may not change the room
  await assert.rejects(run(CLI, ['room', '--url', url, '--token', relay.token(ROOM, 'editor', 'e'), '--tempo', '120']),
                       (e) => e.code === 3 && /owner/.test(e.stderr));
  await assert.rejects(run(CLI, ['room', '--url', url, '--token', relay.token(ROOM, 'owner', 'o'), '--tempo', 'fast']),
                       (e) => e.code === 2 && /--tempo wants a number/.test(e.stderr));
  // 600 BPM, 1 beat: a boundary every 100 ms
  const set = await run(CLI, ['room', '--url', url, '--token', relay.token(ROOM, 'owner', 'o'),
                              '--tempo', '600', '--quantum', '1']);
  assert.match(set.stdout, /tempo 600 BPM, patches apply every 1 beats \(0\.100 s\)/);
  await until(() => runtimes.every((r) => r.room && r.room.tempo_bpm === 600), 'runtimes see the tempo');
  const seqs = [];
  for (let i = 0; i < 5; i++) seqs.push(await editor.eval(`double beat${i}(double x) { return x * ${i}; }\n`));
  await until(() => runtimes.every((r) => r.commits.some((c) => c.seq === seqs.at(-1))), 'tempo patches everywhere');
  for (const r of runtimes)
    for (const s of seqs) {
      const c = r.commits.find((x) => x.seq === s);
      assert.equal(c.apply_us % 100000, 0, `seq ${s} applies on a 100 ms boundary (${c.apply_us})`);
      assert.ok(c.commit_at_us >= c.apply_us);
    }
  await run(CLI, ['room', '--url', url, '--token', relay.token(ROOM, 'owner', 'o'), '--tempo', '0', '--quantum', '0']);
});

test('patchbay runtime LINK joins as a headless runtime and commits what the room evaluates', async () => {
  const { spawn } = await import('node:child_process');
  const p = spawn(CLI, ['runtime', relay.link(ROOM, 'cli-runtime'), '--name', 'cli-runtime'],
                  { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { out += d; });
  try {
    await until(() => /live/.test(out), 'the runtime live');
    const seq = await editor.eval('double from_cli(double x) { return x - 1; }\n');
    await until(() => new RegExp(`seq ${seq} committed from_cli`).test(out), `seq ${seq} committed:\n${out}`);
    // its ack has reached the relay (the line is printed before the ack is
    // sent; stopping the runtime at once could lose it)
    await until(() => editor.committed.get(seq) === N_RUNTIMES + 1, `${N_RUNTIMES + 1} committed acks for seq ${seq}`);
  } finally {
    p.kill('SIGTERM');
  }
});

test('patchbay log shows, per patch, how many runtimes committed it and their spread', async () => {
  // a clean stop records every patch's figures (running, they are written
  // once a patch has settled)
  const p = relay.proc;
  relay.proc = null;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await gone;
  const { stdout } = await run(CLI, ['log', '--data', relay.data, '--room', ROOM]);
  const rows = stdout.split('\n').filter((l) => /^\s+\d+\s/.test(l));
  assert.equal(rows.length, N_PATCHES + 5 + 1);
  // the last one also had the command-line runtime
  const withAll = rows.filter((l) => new RegExp(`\\s${l.includes('from_cli') ? N_RUNTIMES + 1 : N_RUNTIMES} in \\d+\\.\\d\\d ms\\s`).test(l));
  assert.deepEqual(rows.filter((l) => !withAll.includes(l)), [], `every patch committed by ${N_RUNTIMES}`);
  assert.match(stdout.split('\n')[0], /lockstep/);
});
