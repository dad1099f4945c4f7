// serve.mjs — for the node test harnesses: starts `patchbay serve` with the
// given arguments (on --port 0 it picks a free loopback port and prints it)
// and resolves once it listens. Sets relay.proc and relay.port and appends
// everything the relay prints to relay.log.
import { spawn } from 'node:child_process';

export async function startServe(cli, args, relay) {
  const p = spawn(cli, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  relay.proc = p;
  relay.port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`relay did not start:\n${relay.log}`)), 15000);
    p.stdout.on('data', (d) => {
      relay.log += d;
      const m = /127\.0\.0\.1:(\d+)/.exec(relay.log);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    p.stderr.on('data', (d) => { relay.log += d; });
    p.on('exit', (c) => { clearTimeout(t); reject(new Error(`relay exited ${c}:\n${relay.log}`)); });
  });
  p.removeAllListeners('exit');
  return p;
}
