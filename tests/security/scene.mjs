// scene.mjs — what the man-in-the-middle tests of tests/security share: a
// real relay with the attacker (attacker.mjs) in front of it for all the
// tests of a file, and runtime pages in Chromium behind the attacker.
// Everything started here is stopped after the file's tests, also when one
// of them fails.
//
//   import { H, relay, mitm, relayBehindMitm, runtimePage } from './scene.mjs';
//   relayBehindMitm();                       // once, at the top of the file
//   const { page, errors, wait } = await runtimePage(mitm.link(relay.link(room, 'page')));
//
// relay and mitm are live bindings: set once the file's before() ran.
import { before, after } from 'node:test';
import { Relay } from '../runtime/harness.mjs';
import { launch } from '../web/harness.mjs';
import { Mitm } from './attacker.mjs';

export const H = '#include <patchbay.h>\n';
export let relay = null;
export let mitm = null;
let browser = null;

// Starts the relay and the attacker in front of it before the file's
// tests, and stops them (and the browser, if a test opened a page) after.
export function relayBehindMitm() {
  before(async () => {
    relay = await new Relay().start();
    mitm = await new Mitm(relay.port).start();
  });
  after(async () => {
    await browser?.close();
    browser = null;
    await mitm?.close();
    await relay?.stop();
  });
}

// A runtime page at link, in a page of its own (480×320) of the file's
// browser. errors collects the page's script errors. wait(fn, arg, what,
// timeout) waits for fn(arg) to hold on the page; when it does not, its
// error says where the page was (window.patchbay: connection, stats,
// staleness, refusals).
export async function runtimePage(link, { polling = 50 } = {}) {
  browser ??= await launch();
  const page = await (await browser.newContext({ viewport: { width: 480, height: 320 } })).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const wait = (fn, arg, what, timeout = 30000) => page.waitForFunction(fn, arg, { timeout, polling })
    .catch(async () => {
      const st = await page.evaluate(() => JSON.stringify({
        conn: window.patchbay.conn, detail: window.patchbay.detail, stats: window.patchbay.stats,
        stale: window.patchbay.staleSinceUs, rejects: window.patchbay.rejects,
      })).catch((e) => `the page cannot say: ${e.message}`);
      throw new Error(`${what}: not reached (${st})`);
    });
  await page.goto(link);
  return { page, errors, wait };
}
