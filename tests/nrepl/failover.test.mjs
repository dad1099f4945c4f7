// failover.test.mjs — `patchbay nrepl --url A,B` (issue 19; docs/PROTOCOL.md
// § Transport): when the relay it evaluates through dies (kill -9), the
// server's room connection moves to the next relay it was given, and evals
// work again there. The second relay is the same one (same data: key and
// chain) restarted on the second port; a node runtime with a link naming
// both follows it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Relay, joinRoom, until, freePort, CLI } from '../runtime/harness.mjs';
import { NreplClient, combine } from './client.mjs';

const ROOM = 'repl';
let relay, server, rt;

after(async () => {
  rt?.close();
  if (server && server.exitCode === null) server.kill('SIGKILL');
  await relay?.stop();
});

test('nrepl --url A,B: after A is killed, evals go through B', async () => {
  relay = await new Relay().start();
  const first = relay.port, second = await freePort();
  rt = await joinRoom(`${relay.link(ROOM, 'rt')}&relays=127.0.0.1:${second}`,
                      { name: 'rt', backoffMs: 100, maxBackoffMs: 400 });
  await until(() => rt.state === 'live', 'the runtime live');
  server = spawn(CLI, ['nrepl', '--url', `ws://127.0.0.1:${first},ws://127.0.0.1:${second}`,
                       '--token', relay.token(ROOM, 'editor', 'nrepl')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  server.stderr.on('data', (d) => { log += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /started on port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (c) => reject(new Error(`nrepl exited ${c}:\n${out}${log}`)));
  });
  const c = await NreplClient.connect(port);
  const s = combine(await c.request({ op: 'clone' }))['new-session'];
  const value = async (code) => combine(await c.request({ op: 'eval', session: s, code }));
  assert.deepEqual((await value('(defn ggg [v] (+ v 48))')).value, ["#'user/ggg"]);
  assert.deepEqual((await value('(ggg 10)')).value, ['58']);

  await relay.kill();
  relay.port = second; // same data: same key and chain
  await relay.start();
  // the room connection notices, moves to B and evals are answered again
  let r = {};
  const end = Date.now() + 30000;
  while (Date.now() < end) {
    r = await value('(defn ggg [v] (+ v 49))');
    if (r.value) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.deepEqual(r.value, ["#'user/ggg"], `${JSON.stringify(r)}\n${log}`);
  await until(() => rt.state === 'live', 'the runtime live on B');
  assert.deepEqual((await value('(ggg 10)')).value, ['59']);
  c.close();
});
