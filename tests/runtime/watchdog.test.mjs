// watchdog.test.mjs — the headless runtime (patchbay-runtime, the node
// CLI) against a patch that never returns: its main thread notices that the
// runtime thread stopped beating, names the patch, restarts the runtime
// without it (the new one takes the patch back when it commits again, and
// says so to the room), and the next patch runs as usual.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, spawnRuntimeCli, until } from './harness.mjs';

const relay = await new Relay().start();
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
