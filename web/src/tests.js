// tests.js — the editor page's "Run tests": the room's tests on every
// device of the room at the current seq, shown as a device × test matrix
// (the same as `patchbay test` prints; docs/PROTOCOL.md § Device testing).
// A cell opens what that device said about that test: the failed check
// with its file:line, the trap with its var and patch, and the device's
// console lines from the test.
//
//   const run = new TestRun({ req, seq, devices: [{id, label, platform}] });
//   run.take(testResultFrame, peers)   run.gone(id)   renderMatrix(box, run, onCell)

const TEST_VAR = 'pb_test__';

export class TestRun {
  constructor({ req, seq, devices }) {
    this.req = req;
    this.seq = seq;
    this.devices = devices.map((d) => ({ ...d, answered: false, gone: false, seq: 0 }));
    this.tests = [];
    this.cells = new Map(); // `${deviceIndex} ${test}` -> result
    this.startedMs = performance.now();
    this.lastMs = 0;
  }

  // The run's device a result from runtime id belongs to: itself, or one
  // that came back under a new id (its watchdog restarted it; the old
  // connection may not have closed yet), known by its label.
  deviceOf(id, peers) {
    let i = this.devices.findIndex((d) => d.id === id);
    if (i >= 0) return i;
    const p = peers.get(id);
    const label = p && (p.label || p.name);
    i = this.devices.findIndex((d) => d.gone && !d.answered && d.label === label);
    if (i < 0) i = this.devices.findIndex((d) => !d.answered && d.label === label);
    if (i >= 0) {
      this.devices[i].id = id;
      this.devices[i].gone = false;
    }
    return i;
  }

  // A test_result frame; true if it was this run's.
  take(f, peers) {
    if (f.req !== this.req) return false;
    const i = this.deviceOf(f.runtime_id, peers);
    if (i < 0) return false;
    const d = this.devices[i];
    d.answered = true;
    d.seq = f.seq || 0;
    for (const r of f.results || []) {
      if (!this.tests.includes(r.name)) this.tests.push(r.name);
      this.cells.set(`${i} ${r.name}`, { ...r, status: r.status || (r.ok ? 'pass' : 'fail') });
    }
    this.tests.sort();
    this.lastMs = performance.now();
    return true;
  }

  gone(id) {
    const d = this.devices.find((x) => x.id === id);
    if (d && !d.answered) d.gone = true;
  }

  get isComplete() { return this.devices.every((d) => d.answered || d.gone); }

  // {status, text, title} of one cell, as the matrix shows it.
  cell(i, test) {
    const d = this.devices[i];
    if (d.answered && d.seq < this.seq) return { status: 'stale', text: 'stale', title: `answered from seq ${d.seq}` };
    const r = this.cells.get(`${i} ${test}`);
    if (!r) {
      if (d.answered) return { status: 'notrun', text: '–', title: 'this device has no such test' };
      return d.gone ? { status: 'gone', text: 'gone', title: 'left the room before answering' }
                    : { status: 'pending', text: '…', title: 'waiting for an answer' };
    }
    const us = r.us >= 1000 ? `${(r.us / 1000).toFixed(1)} ms` : `${r.us || 0} µs`;
    const text = { pass: `pass ${us}`, fail: `FAIL ${us}`, trap: `TRAP ${us}`, timeout: 'TIMEOUT' }[r.status] || r.status;
    return { status: r.status, text, title: describe(r) };
  }

  counts() {
    const n = {};
    for (let i = 0; i < this.devices.length; i++)
      for (const t of this.tests) {
        const s = this.cell(i, t).status;
        n[s] = (n[s] || 0) + 1;
      }
    return n;
  }
}

// What a device said about a test, in one line.
export function describe(r) {
  if (r.status === 'fail') return `${r.file ? `${r.file}:${r.line}: ` : r.line ? `line ${r.line}: ` : ''}${r.message || ''}`;
  if (r.status === 'trap') return `trap in ${r.var || 'the test'} (patch #${r.var_seq || '?'}): ${r.message || ''}`;
  if (r.status === 'timeout') return r.message || 'did not return';
  return 'passed';
}

// The matrix into box: a table, one row per test and one column per
// device, and a line of totals. onCell(deviceIndex, test) on a click.
export function renderMatrix(box, run, onCell) {
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const table = el('table', 'matrix');
  const head = el('tr');
  head.append(el('th', '', 'test'));
  for (const d of run.devices) {
    const th = el('th', 'device', d.label);
    th.title = [d.platform, d.canvas_w ? `canvas ${d.canvas_w}×${d.canvas_h}` : 'no canvas'].filter(Boolean).join(' · ');
    head.append(th);
  }
  const thead = el('thead');
  thead.append(head);
  table.append(thead);
  const body = el('tbody');
  for (const t of run.tests) {
    const tr = el('tr');
    tr.append(el('th', 'test', t));
    run.devices.forEach((d, i) => {
      const c = run.cell(i, t);
      const td = el('td', `cell ${c.status}`, c.text);
      td.title = c.title;
      td.dataset.device = d.label;
      td.dataset.test = t;
      td.onclick = () => onCell(i, t);
      tr.append(td);
    });
    body.append(tr);
  }
  if (!run.tests.length) {
    const tr = el('tr');
    tr.append(el('td', 'note', run.isComplete ? 'no tests in the room' : 'waiting for the devices…'));
    body.append(tr);
  }
  table.append(body);
  const n = run.counts();
  const secs = ((run.lastMs || performance.now()) - run.startedMs) / 1000;
  const words = [['pass', 'passed'], ['fail', 'failed'], ['trap', 'trapped'], ['timeout', 'timed out'],
                 ['notrun', 'not run'], ['gone', 'gone'], ['stale', 'stale'], ['pending', 'waiting']];
  const summary = el('p', 'note',
    `seq ${run.seq} · ${run.tests.length} test${run.tests.length === 1 ? '' : 's'} on ${run.devices.length} ` +
    `device${run.devices.length === 1 ? '' : 's'} in ${secs.toFixed(2)} s: ` +
    (words.filter(([k]) => n[k]).map(([k, w]) => `${n[k]} ${w}`).join(', ') || 'nothing yet'));
  box.replaceChildren(table, summary);
}

// A device's console lines from one test (its var is the test's).
export function outputOf(logs, runtimeId, test) {
  return logs.filter((l) => l.runtime_id === runtimeId && l.var === `${TEST_VAR}${test}`).map((l) => l.text);
}
