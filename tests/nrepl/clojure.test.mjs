// clojure.test.mjs — the seed demo through a real nREPL client: Debian's
// libnrepl-clojure (nrepl.core, the library CIDER's and Calva's servers
// and clients are built on) run by Debian's clojure, against
// `patchbay nrepl` in a room with two node runtimes: (defn ggg [v] (+ v
// 48)), (ggg 10) is 58; redefined with 49, 59; a compile error comes back
// as an nREPL error with its line. Skipped where clojure or the library is
// not installed (scripts/setup.sh installs both for the test profile).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Relay, joinRoom, until, CLI } from '../runtime/harness.mjs';

const CLOJURE = ['/usr/bin/clojure', '/usr/bin/clojure1.11'].find((p) => existsSync(p));
const NREPL_JAR = '/usr/share/java/nrepl.jar';
const missing = !CLOJURE || !existsSync(NREPL_JAR);
const SCRIPT = fileURLToPath(new URL('./seed_demo.clj', import.meta.url));
const ROOM = 'seed';
let relay, server;
const runtimes = [];

before(async () => {
  if (missing) return;
  relay = await new Relay().start();
  for (const name of ['node-a', 'node-b']) {
    const rt = await joinRoom(relay.link(ROOM, name), { name });
    await until(() => rt.state === 'live', `${name} live`);
    runtimes.push(rt);
  }
  server = spawn(CLI, ['nrepl', '--url', `ws://127.0.0.1:${relay.port}`, '--port-file', '',
                       '--token', relay.token(ROOM, 'editor', 'clojure')], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.log = '';
  server.stderr.on('data', (d) => { server.log += d; });
  server.port = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /started on port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (c) => reject(new Error(`nrepl exited ${c}: ${out}${server.log}`)));
  });
});

after(async () => {
  for (const rt of runtimes) rt.close();
  if (server) server.kill('SIGKILL');
  await relay?.stop();
});

test('the seed demo through nREPL\'s own client: 58, then 59, and a compile error with its line',
  { skip: missing && `${CLOJURE ? NREPL_JAR : 'clojure'} is not installed` }, async () => {
    const t0 = Date.now();
    const { stdout } = await new Promise((resolve, reject) => {
      // a short-lived JVM starts faster with the first JIT tier only and
      // one GC thread (the 2-core CI machine runs other tests beside it)
      const env = { ...process.env, JAVA_TOOL_OPTIONS: '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto' };
      execFile(CLOJURE, ['-cp', NREPL_JAR, SCRIPT, String(server.port)], { timeout: 240000, env },
               (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${out}\n${errOut}\n${server.log}`))
                                          : resolve({ stdout: out })));
    });
    const lines = Object.fromEntries(stdout.trim().split('\n').map((l) => {
      const i = l.indexOf(' ');
      return [l.slice(0, i), l.slice(i + 1)];
    }));
    console.log(`# the JVM client ran the demo in ${Date.now() - t0} ms (start-up included)`);
    assert.match(lines.describe, /:status #\{"done"\}/);
    assert.match(lines.def48, /:value \["#'user\/ggg"\]/);
    assert.match(lines.call58, /^\{:value \["58"\], :status #\{"done"\}, :ns "user"\}$/);
    assert.match(lines.def49, /:value \["#'user\/ggg"\]/);
    assert.match(lines.call59, /:value \["59"\]/);
    // the error: the line and column of the file, as nREPL reports errors
    assert.match(lines.error, /:err "seed\.cljc:2:8: error: unknown symbol 'zz'\\n"/);
    assert.match(lines.error, /:ex "patchbay\.CompileError"/);
    assert.match(lines.error, /"eval-error"/);
    // response-values reads the value with the Clojure reader: a number
    assert.equal(lines.values, '[50]');
  });
