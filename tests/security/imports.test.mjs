// imports.test.mjs — a module reaching past the runtime's API (issue 15,
// hole 8). A hostile relay (here: the attacker with the relay's own key,
// pb_forge) signs a module that imports a function the runtime does not
// offer (env.system). Signed, so it passes verification; the runtime checks
// its imports against its own export list before loading it and refuses it
// (a failed ack, PB_ERR_PREPARE, naming the import): nothing is loaded, the
// chain moves on (the patch is authentic), and the next patch of that chain
// commits. Node runtime and Chromium runtime page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Recorder, joinRoom, until, PB } from '../runtime/harness.mjs';
import { H, mitm, relay, relayBehindMitm, runtimePage } from './scene.mjs';

const FORGE = process.env.PB_FORGE;
if (!FORGE) throw new Error('set PB_FORGE (ctest does)');

// A side module (dylink.0, as the runtime's loader wants it) that imports
// env.system, a function no runtime offers, and defines nothing.
const SYSTEM_MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // custom section dylink.0: memory info, all zero
  0x00, 0x0f, 0x08, 0x64, 0x79, 0x6c, 0x69, 0x6e, 0x6b, 0x2e, 0x30, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
  // type section: () -> ()
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
  // import section: env.system, a function of type 0
  0x02, 0x0e, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x06, 0x73, 0x79, 0x73, 0x74, 0x65, 0x6d, 0x00, 0x00,
]);

// Signs, with the relay's key, a patch that follows prev (a patch frame)
// and is like `like` (its room, vars, author), carrying module if given.
function forge(prev, like, module) {
  const f = (name, bytes) => { const p = join(relay.dir, name); writeFileSync(p, bytes); return p; };
  const args = [relay.data, f('prev', prev), f('like', like)];
  if (module) args.push(f('module.wasm', module));
  return new Uint8Array(execFileSync(FORGE, args));
}

relayBehindMitm();

// Room room's seq 1 (honest, from the real relay), then the forged seq 2
// (imports env.system) and seq 3 (seq 1's module again, signed anew).
async function chain(room) {
  const rec = new Recorder(relay, room);
  await rec.ready;
  await relay.eval(room, `${H}double ggg(double v) { return v + 48; }\n`);
  const p1 = await rec.patch(1);
  rec.close();
  const p2 = forge(p1, p1, SYSTEM_MODULE);
  const p3 = forge(p2, p1);
  return { p2, p3 };
}

test('node runtime: a signed module importing env.system is refused before it loads; the chain goes on', async () => {
  const room = 'imports-node';
  const { p2, p3 } = await chain(room);
  const rt = await joinRoom(mitm.link(relay.link(room, 'node')), { name: 'node' });
  try {
    const rejects = [];
    rt.on('reject', (r) => rejects.push(r));
    await until(() => rt.committedSeq === 1, 'seq 1 committed');
    const modules = rt.modules;
    mitm.inject(p2);
    await until(() => rejects.length > 0, 'seq 2 refused');
    assert.equal(rejects[0].seq, 2);
    assert.equal(rejects[0].code, PB.PB_ERR_PREPARE);
    assert.match(rejects[0].error, /imports env\.system, which this runtime does not offer/);
    assert.equal(rt.modules, modules, 'nothing loaded');
    assert.equal(rt.headSeq, 2, 'authentic: the chain moves on');
    mitm.inject(p3);
    await until(() => rt.committedSeq === 3, 'seq 3 committed');
    assert.equal(rt.call('ggg', 10), 58);
  } finally {
    rt.close();
  }
});

test('Chromium runtime page: the same module is refused, and the next patch of the chain commits', async () => {
  const room = 'imports-page';
  const { p2, p3 } = await chain(room);
  const { page, errors, wait } = await runtimePage(mitm.link(relay.link(room, 'page')));
  await wait(() => window.patchbay.stats.committedSeq === 1, null, 'seq 1 committed');
  mitm.inject(p2);
  await wait(() => window.patchbay.rejects.length > 0, null, 'seq 2 refused');
  const r = await page.evaluate(() => window.patchbay.rejects[0]);
  assert.equal(r.code, PB.PB_ERR_PREPARE);
  assert.match(r.error, /imports env\.system, which this runtime does not offer/);
  mitm.inject(p3);
  await wait(() => window.patchbay.stats.committedSeq === 3, null, 'seq 3 committed');
  assert.deepEqual(errors, []);
});
