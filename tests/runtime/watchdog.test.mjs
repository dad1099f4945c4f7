// watchdog.test.mjs — the headless runtime (patchbay-runtime, the node
// CLI) against a patch that never returns: its main thread notices that the
// runtime thread stopped beating, names the patch, restarts the runtime
// without it (the new one takes the patch back when it commits again, and
// says so to the room), and the next patch runs as usual.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import WebSocket from 'ws';
import { Relay, spawnRuntimeCli, until, frame, decode } from './harness.mjs';

// a patch of 256 vars takes more than the default 2 s to compile in the
// sanitizer build on a busy machine
const relay = await new Relay({ args: ['--compile-timeout-ms', '20000'] }).start();
after(() => relay.stop());

test('an endless pb_init: restarted without it, named, and the next patch commits', async () => {
  const cli = spawnRuntimeCli([relay.link('loop', 'headless'), '--name', 'headless', '--watchdog-ms', '500']);
  try {
    const text = () => cli.lines.join('\n');
    await until(() => /live/.test(text()), `the runtime live:\n${cli.stderrText}`);
    const { seq: good } = await relay.eval('loop', '#include <patchbay.h>\ndouble ok(double v) { return v; }\n');
    await until(() => new RegExp(`seq ${good} committed ok`).test(text()), 'the first patch committed');
    const { seq: bad } = await relay.eval('loop', '#include <patchbay.h>\nPB_STATE(int, spins, 0);\n' +
                                                  'void pb_init(void) {\n    for (;;) spins++;\n}\n');
    await until(() => new RegExp(`seq ${bad} pb_init did not return within 500 ms`).test(text()),
                `the watchdog names seq ${bad}:\n${text()}`);
    // the new runtime takes it back as it commits in the catch-up
    await until(() => new RegExp(`seq ${bad} TRAPPED in pb_init: did not return`).test(text()),
                `seq ${bad} taken back:\n${text()}`);
    const { seq: next } = await relay.eval('loop', '#include <patchbay.h>\ndouble after(double v) { return v + 1; }\n');
    await until(() => new RegExp(`seq ${next} committed after`).test(text()), `the next patch committed:\n${text()}`);
    assert.equal(text().match(/restarting the runtime without it/g).length, 1, 'restarted once');
  } finally {
    cli.kill('SIGTERM');
    await cli.exited;
  }
});

// Issue 22, item 9: the commits of one tick went to the host as JSON in a
// 16 KiB buffer; a patch of 256 vars with long names overflowed it, the
// host got "null" and never took the endless pb_init back (failed before:
// no "TRAPPED in pb_init").
test('a patch of 256 vars with long names that never returns from pb_init is taken back', async () => {
  const cli = spawnRuntimeCli([relay.link('wide', 'headless'), '--name', 'headless', '--watchdog-ms', '500']);
  try {
    const text = () => cli.lines.join('\n');
    await until(() => /live/.test(text()), `the runtime live:\n${cli.stderrText}`);
    const name = (i) => `v${String(i).padStart(3, '0')}_${'x'.repeat(58)}`; // 63 bytes
    let src = '#include <patchbay.h>\nPB_STATE(int, spins, 0);\n';
    for (let i = 0; i < 255; i++) src += `double ${name(i)}(double v) { return v + ${i}; }\n`;
    src += 'void pb_init(void) {\n    for (;;) spins++;\n}\n';
    const { seq: bad } = await relay.eval('wide', src);
    await until(() => new RegExp(`seq ${bad} pb_init did not return within 500 ms`).test(text()),
                `the watchdog names seq ${bad}:\n${text()}`);
    await until(() => new RegExp(`seq ${bad} TRAPPED in pb_init: did not return`).test(text()),
                `seq ${bad} taken back:\n${text()}`);
    const { seq: next } = await relay.eval('wide', '#include <patchbay.h>\ndouble after(double v) { return v + 1; }\n');
    await until(() => new RegExp(`seq ${next} committed after`).test(text()), `the next patch committed:\n${text()}`);
  } finally {
    cli.kill('SIGTERM');
    await cli.exited;
  }
});

test('an expression that never returns: named, not run again, and its failure reaches the editor', async () => {
  const cli = spawnRuntimeCli([relay.link('hang', 'headless'), '--name', 'headless', '--watchdog-ms', '500']);
  try {
    const text = () => cli.lines.join('\n');
    await until(() => /live/.test(text()), `the runtime live:\n${cli.stderrText}`);
    // patchbay eval waits for the runtime's answer, which comes from the
    // restarted runtime
    const r = await new Promise((resolve) => execFile(relay.cli, ['eval', '--url', `ws://127.0.0.1:${relay.port}`,
      '--token', relay.token('hang', 'editor', 'ed'), '--lang', 'lisp', '-e', '(loop [] (recur))'],
    (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /^failed: .*did not return within 500 ms/);
    assert.match(text(), /seq \d+ pb_expr did not return within 500 ms/);
    const { seq: next } = await relay.eval('hang', '#include <patchbay.h>\ndouble after(double v) { return v + 1; }\n');
    await until(() => new RegExp(`seq ${next} committed after`).test(text()), `the next patch committed:\n${text()}`);
    assert.equal(text().match(/restarting the runtime without it/g).length, 1, 'restarted once');
  } finally {
    cli.kill('SIGTERM');
    await cli.exited;
  }
});

// Asks every runtime of room to run its tests, as an editor does.
async function requestTests(room, filter) {
  const ws = new WebSocket(`ws://127.0.0.1:${relay.port}/r/${room}`, 'patchbay');
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => {
    ws.onopen = () => ws.send(frame('hello', { token: relay.token(room, 'editor', 'tester') }));
    ws.onerror = (e) => reject(e.error || new Error('editor socket failed'));
    ws.onmessage = (ev) => {
      if (decode(new Uint8Array(ev.data)).t !== 'welcome') return;
      ws.send(frame('test_req', { req: 1, filter }));
      resolve();
    };
  });
  return ws;
}

test('a test that never returns is blamed on its own patch, not on the patch committed last', async () => {
  const cli = spawnRuntimeCli([relay.link('tests', 'headless'), '--name', 'headless', '--watchdog-ms', '500']);
  let editor = null;
  try {
    const text = () => cli.lines.join('\n');
    await until(() => /live/.test(text()), `the runtime live:\n${cli.stderrText}`);
    const { seq: spin } = await relay.eval('tests', '#include <patchbay.h>\n' +
                                                    'PB_TEST(spins) { for (volatile int i = 0;; i++) { } }\n');
    const { seq: later } = await relay.eval('tests', '#include <patchbay.h>\ndouble later(double v) { return v; }\n');
    await until(() => new RegExp(`seq ${later} committed later`).test(text()), 'the later patch committed');
    editor = await requestTests('tests', 'spins');
    await until(() => /did not return within 500 ms/.test(text()), `the watchdog fires:\n${text()}`);
    assert.match(text(), new RegExp(`seq ${spin} pb_test__spins did not return within 500 ms`), text());
    // the restarted runtime takes the test's patch back, and only that one
    await until(() => new RegExp(`seq ${spin} TRAPPED in pb_test__spins: did not return`).test(text()),
                `seq ${spin} taken back:\n${text()}`);
    assert.doesNotMatch(text(), new RegExp(`seq ${later} TRAPPED`));
    await until(() => (text().match(new RegExp(`seq ${later} committed later`, 'g')) || []).length === 2,
                `the restarted runtime has the later patch:\n${text()}`);
  } finally {
    editor?.close();
    cli.kill('SIGTERM');
    await cli.exited;
  }
});
