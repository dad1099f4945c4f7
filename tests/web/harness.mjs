// harness.mjs — for the browser tests: a real relay (`patchbay serve`) on a
// free loopback port with its own data folder, tokens from `patchbay
// token`, and Debian's Chromium through playwright-core with the flags of
// DESIGN.md and a fresh profile. Everything started here is stopped by
// stop(), also when a test fails.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ServedRelay } from '../serve.mjs';

export const CLI = process.env.PB_CLI;
export const WEB = process.env.PB_WEB;
export const CHROMIUM = process.env.PB_CHROMIUM || '/usr/bin/chromium';
if (!CLI || !WEB) throw new Error('set PB_CLI and PB_WEB (ctest does)');
if (!existsSync(join(WEB, 'editor.js')))
  throw new Error(`${WEB}/editor.js is missing: the pages were not built (npm ci, then build)`);
if (!existsSync(CHROMIUM))
  throw new Error(`${CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh test does)`);

export class Relay extends ServedRelay {
  constructor() {
    super(CLI, 'pb-web-');
  }
  // Starts (or restarts, on the same port) the relay.
  async start() {
    // the relay as users run it: the default (warm) compiler
    await this.serve(['--web', WEB]);
    return this;
  }
  link(page, room, role, name) {
    return `http://127.0.0.1:${this.port}/${page}#room=${room}&token=${this.token(room, role, name)}&key=${this.key()}`;
  }
  // `patchbay eval` from the command line, as another editor would.
  eval(room, name, file, source) {
    const f = join(this.dir, file);
    writeFileSync(f, source);
    return execFileSync(CLI, ['eval', '--url', `ws://127.0.0.1:${this.port}`, '--room', room,
                              '--token', this.token(room, 'editor', name), f]).toString();
  }
  // The same without blocking this process (runtimes in it keep running).
  evalAsync(room, name, file, source) {
    const f = join(this.dir, file);
    writeFileSync(f, source);
    return new Promise((resolve, reject) => {
      execFile(CLI, ['eval', '--url', `ws://127.0.0.1:${this.port}`, '--room', room,
                     '--token', this.token(room, 'editor', name), f], (e, out, err) => {
        if (e) reject(new Error(`patchbay eval ${file}: ${err || e.message}`));
        else resolve(String(out));
      });
    });
  }
}

// Playwright gives every launch a fresh temporary profile (its own
// --user-data-dir, removed on close); it refuses the flag from us.
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Replaces the editor's text (CodeMirror) and puts the cursor at marker.
export async function setCode(page, text, marker) {
  await page.evaluate(([t, m]) => {
    const view = window.patchbay.view;
    const at = m ? t.indexOf(m) : t.length;
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: t }, selection: { anchor: at } });
    view.focus();
  }, [text, marker || '']);
}
