// firefox.mjs — Debian's Firefox ESR for the browser tests, driven over
// WebDriver BiDi: the W3C protocol Firefox speaks natively on
// `--remote-debugging-port`, a WebSocket carrying JSON commands. No
// geckodriver and no downloaded browser: playwright-core drives only its
// own patched Firefox builds, so this is the few lines that a stock
// Firefox needs (session.new, navigate, script.evaluate, screenshots,
// console errors).
//
//   const ff = await Firefox.launch();
//   const page = await ff.open(url, { width: 390, height: 844 });
//   await page.waitFor(() => window.patchbay.conn === 'live');
//   const v = await page.evaluate((a) => a + 1, 41);
//   await ff.close();   // always (kills the process, removes the profile)
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

export const FIREFOX = process.env.PB_FIREFOX || '/usr/bin/firefox-esr';

// A profile for a closed network and a machine shared with other tests:
// nothing phones home, nothing updates, no first-run pages, and a page in
// the background keeps its timers (the runtime draws in a worker).
const PREFS = {
  'app.update.disabledForTesting': true,
  'app.normandy.enabled': false,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.startup.page': 0,
  'browser.newtabpage.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'browser.safebrowsing.downloads.enabled': false,
  'browser.safebrowsing.blockedURIs.enabled': false,
  'browser.search.update': false,
  'browser.aboutwelcome.enabled': false,
  'browser.tabs.remote.separatePrivilegedContentProcess': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'datareporting.healthreport.uploadEnabled': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.server': '',
  'extensions.update.enabled': false,
  'extensions.getAddons.cache.enabled': false,
  'extensions.blocklist.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.http.speculative-parallel-limit': 0,
  'services.settings.server': 'http://127.0.0.1:9/',
  'dom.min_background_timeout_value': 10,
  'dom.timeout.enable_budget_timer_throttling': false,
  'widget.windows.window_occlusion_tracking.enabled': false,
};

class Bidi {
  constructor(ws) {
    this.ws = ws;
    this.next = 1;
    this.pending = new Map();
    this.listeners = new Set();
    ws.on('message', (data) => {
      let m;
      try { m = JSON.parse(String(data)); } catch { return; }
      if (m.id && this.pending.has(m.id)) {
        const { resolve, reject, method } = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.type === 'error') reject(new Error(`firefox ${method}: ${m.error}: ${m.message}`));
        else resolve(m.result);
      } else if (m.type === 'event') {
        for (const fn of this.listeners) fn(m);
      }
    });
    ws.on('close', () => {
      for (const { reject, method } of this.pending.values())
        reject(new Error(`firefox ${method}: the connection closed`));
      this.pending.clear();
    });
  }

  send(method, params = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }
}

// One tab. evaluate(fn, arg) runs fn(arg) in the page and returns its
// JSON-serialisable result (awaiting a promise).
class FirefoxPage {
  constructor(ff, context) {
    this.ff = ff;
    this.context = context;
    this.errors = [];
  }

  async goto(url) {
    await this.ff.bidi.send('browsingContext.navigate', { context: this.context, url, wait: 'complete' });
  }

  async evaluate(fn, arg) {
    const expression = `(async () => JSON.stringify(await (${fn})(${JSON.stringify(arg ?? null)}) ?? null))()`;
    const r = await this.ff.bidi.send('script.evaluate', {
      expression, target: { context: this.context }, awaitPromise: true, resultOwnership: 'none',
    });
    if (r.type === 'exception')
      throw new Error(`in Firefox: ${r.exceptionDetails?.text || 'exception'}`);
    return JSON.parse(r.result.value);
  }

  // Polls fn(arg) until it is truthy; throws after timeoutMs naming what.
  async waitFor(fn, arg, { timeoutMs = 30000, what = String(fn).slice(0, 80) } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      let v = null;
      try { v = await this.evaluate(fn, arg); } catch (e) { if (Date.now() > until) throw e; }
      if (v) return v;
      if (Date.now() > until) throw new Error(`Firefox: ${what}: not reached within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // A PNG of the viewport.
  async screenshot() {
    const r = await this.ff.bidi.send('browsingContext.captureScreenshot', { context: this.context });
    return Buffer.from(r.data, 'base64');
  }
}

export class Firefox {
  // Starts firefox-esr headless with a fresh profile and a BiDi session.
  static async launch() {
    if (!existsSync(FIREFOX))
      throw new Error(`${FIREFOX} is missing: apt-get install firefox-esr (scripts/setup.sh test does)`);
    const ff = new Firefox();
    ff.profile = mkdtempSync(join(tmpdir(), 'pb-firefox-'));
    writeFileSync(join(ff.profile, 'user.js'),
                  Object.entries(PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(''));
    ff.log = '';
    ff.proc = spawn(FIREFOX, ['--headless', '--no-remote', '--remote-debugging-port', '0',
                              '--profile', ff.profile, 'about:blank'],
                    { stdio: ['ignore', 'pipe', 'pipe'], detached: true,
                      env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1' } });
    try {
      const url = await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`firefox did not offer WebDriver BiDi within 60 s:\n${ff.log.slice(-2000)}`)), 60000);
        const onData = (d) => {
          ff.log += d;
          if (ff.log.length > 200000) ff.log = ff.log.slice(-100000);
          const m = /WebDriver BiDi listening on (ws:\/\/[^\s]+)/.exec(ff.log);
          if (m) { clearTimeout(t); resolve(m[1]); }
        };
        ff.proc.stdout.on('data', onData);
        ff.proc.stderr.on('data', onData);
        ff.proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`firefox exited (${c}):\n${ff.log.slice(-2000)}`)); });
      });
      const ws = new WebSocket(`${url}/session`);
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      ff.bidi = new Bidi(ws);
      await ff.bidi.send('session.new', { capabilities: { alwaysMatch: { acceptInsecureCerts: true } } });
      await ff.bidi.send('session.subscribe', { events: ['log.entryAdded'] });
      ff.bidi.listeners.add((m) => {
        if (m.method !== 'log.entryAdded') return;
        const e = m.params;
        if (e.level !== 'error') return;
        const page = ff.pages.find((p) => p.context === e.source?.context);
        page?.errors.push(`${e.type === 'javascript' ? 'pageerror' : 'console'}: ${e.text}`);
      });
    } catch (e) {
      await ff.close();
      throw e;
    }
    return ff;
  }

  constructor() {
    this.pages = [];
  }

  // Opens url in a new tab whose viewport is width × height CSS pixels.
  async open(url, { width = 960, height = 540 } = {}) {
    const { context } = await this.bidi.send('browsingContext.create', { type: 'tab' });
    const page = new FirefoxPage(this, context);
    this.pages.push(page);
    await this.bidi.send('browsingContext.setViewport', { context, viewport: { width, height } });
    await page.goto(url);
    return page;
  }

  // Ends the session, kills the process and removes the profile; safe to
  // call twice and after a failed launch.
  async close() {
    const p = this.proc;
    this.proc = null;
    try { this.bidi?.ws.close(); } catch { /* gone */ }
    if (p && p.exitCode === null && p.signalCode === null) {
      // its own process group (detached): the content processes go too
      const gone = new Promise((r) => p.once('exit', r));
      try { process.kill(-p.pid, 'SIGKILL'); } catch { p.kill('SIGKILL'); }
      await gone;
    }
    if (this.profile) rmSync(this.profile, { recursive: true, force: true });
    this.profile = null;
  }
}
