// serve.mjs — for the node test harnesses: a relay (`patchbay serve`) in a
// fresh temporary folder of its own, on a free loopback port, with the
// commands that read its data folder (tokens, the relay key). The browser
// and runtime harnesses each extend it with what their tests need.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Node runtimes keep the highest head they verified per (key, room) in a
// folder (runtime/node/store.mjs); a test process keeps its own, not the
// user's, and the runtimes and CLIs it starts inherit it.
if (!process.env.PATCHBAY_STATE_DIR) {
  const dir = mkdtempSync(join(tmpdir(), 'pb-state-'));
  process.env.PATCHBAY_STATE_DIR = dir;
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}

// Starts `patchbay serve` with the given arguments (on --port 0 it picks a
// free loopback port and prints it) and resolves once it listens. Sets
// relay.proc and relay.port and appends everything the relay prints to
// relay.log.
// A loopback port nothing listens on now (for a relay started later).
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startServe(cli, args, relay) {
  const p = spawn(cli, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  relay.proc = p;
  relay.port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`relay did not start:\n${relay.log}`)), 15000);
    let out = ''; // this start's: a restart on another port prints another
    p.stdout.on('data', (d) => {
      relay.log += d;
      out += d;
      const m = /127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    p.stderr.on('data', (d) => { relay.log += d; });
    p.on('exit', (c) => { clearTimeout(t); reject(new Error(`relay exited ${c}:\n${relay.log}`)); });
  });
  p.removeAllListeners('exit');
  return p;
}

export class ServedRelay {
  // cli: the patchbay binary; prefix: of the temporary folder (this.dir),
  // which is also the data folder unless a subclass sets this.data.
  constructor(cli, prefix) {
    this.cli = cli;
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.data = this.dir;
    this.port = 0;
    this.proc = null;
    this.log = '';
  }

  // Starts (or restarts, on the same port) the relay on this.data with the
  // further serve arguments; resolves with its process.
  serve(args) {
    return startServe(this.cli, ['--port', String(this.port), '--data', this.data, ...args], this);
  }

  token(room, role, name) {
    return execFileSync(this.cli, ['token', '--data', this.data, '--room', room, '--role', role,
                                   '--name', name, '-q'], { stdio: ['ignore', 'pipe', 'pipe'] })
      .toString().trim();
  }

  key() {
    return execFileSync(this.cli, ['keygen', '--data', this.data], { stdio: ['ignore', 'pipe', 'pipe'] })
      .toString().match(/[0-9a-f]{64}/)[0];
  }

  // Kills the relay (SIGKILL) and waits until it is gone; resolves with the
  // process it was, or null if none ran.
  async kill() {
    if (!this.proc) return null;
    const p = this.proc;
    this.proc = null;
    if (p.exitCode !== null || p.signalCode !== null) return p; // it exited by itself
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    return p;
  }

  async stop() {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
