// expr.test.mjs — expressions end to end (docs/PROTOCOL.md § Expressions,
// issue 17): a real relay, node runtimes on real sockets, `patchbay eval
// -e` as the editor. An expression runs once on every runtime, which acks
// its value and output; the CLI prints `=> 59` or counts disagreeing
// values; a trap is reported per runtime and changes nothing; a late joiner
// does not run old expressions; in a catch-up an expression runs in its
// place in the order of patches.
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Relay, Recorder, joinRoom, until, bareRuntime, closeBareRuntimes, decode, frame,
         statementSeq, CLI } from './harness.mjs';

const run = promisify(execFile);
const H = '#include <patchbay.h>\n';
const ROOM = 'repl';
let relay, recorder;
const runtimes = [];

async function join(name) {
  const rt = await joinRoom(relay.link(ROOM, name), { name, backoffMs: 100 });
  rt.exprs = [];
  rt.commits = [];
  rt.on('expr', (e) => rt.exprs.push(e));
  rt.on('commit', (c) => rt.commits.push(c));
  await until(() => rt.state === 'live', `${name} live`);
  return rt;
}

// `patchbay eval -e EXPR` (or a FILE with --expr): {stdout, stderr, code}.
async function evalExpr(expr, { lang = 'c', runtimes: n } = {}) {
  const args = ['eval', '--url', `ws://127.0.0.1:${relay.port}`, '--room', ROOM,
                '--token', relay.token(ROOM, 'editor', 'ed'), '--lang', lang, '-e', expr];
  if (n) args.push('--runtimes', String(n));
  try {
    const { stdout, stderr } = await run(CLI, args);
    return { stdout, stderr, code: 0 };
  } catch (e) {
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

// The value runtime rt reported for the last expression it ran.
const lastExpr = (rt) => rt.exprs[rt.exprs.length - 1];

before(async () => {
  relay = await new Relay().start();
  recorder = new Recorder(relay, ROOM);
  await recorder.ready;
  runtimes.push(await join('rt1'), await join('rt2'));
});

after(async () => {
  recorder?.close();
  for (const r of runtimes) r.close();
  await relay?.stop();
});

afterEach(() => closeBareRuntimes());

test('(ggg 10) runs once on every runtime: 58, then 59 after redefining ggg', async () => {
  await relay.eval(ROOM, '(defn ggg [v] (+ v 48))', { lang: 'lisp', runtimes: 2 });
  let r = await evalExpr('(ggg 10)', { lang: 'lisp' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '=> 58\n');
  for (const rt of runtimes) {
    assert.equal(rt.exprs.length, 1, `${rt.o.name} ran it once`);
    assert.deepEqual([lastExpr(rt).ok, lastExpr(rt).value], [true, '58']);
  }
  await relay.eval(ROOM, '(defn ggg [v] (+ v 49))', { lang: 'lisp', runtimes: 2 });
  r = await evalExpr('ggg(10)'); // the same var from C
  assert.equal(r.stdout, '=> 59\n');
  for (const rt of runtimes) assert.equal(lastExpr(rt).value, '59');
  // an expression is not a var: nothing of it stays in the registry
  for (const rt of runtimes) assert.equal(rt.varFn('pb_expr'), 0);
  // the history lists it by its text
  const { stdout: log } = await run(CLI, ['log', '--room', ROOM, '--data', relay.data]);
  assert.match(log, /= \(ggg 10\)\n/);
  assert.match(log, /= ggg\(10\)\n/);
});

test('values are printed as Clojure prints them, with what the expression printed', async () => {
  const cases = [
    ['(< (ggg 1) 100)', 'lisp', '=> true\n'],
    ['(println "hello" (ggg 1))', 'lisp', 'hello 50\n=> nil\n'],
    ['(/ 1 4)', 'lisp', '=> 0.25\n'],
    ['"tab\\there \\"q\\""', 'c', '=> "tab\\there \\"q\\""\n'],
    ['(long long)ggg(1) * 1000000000000', 'c', '=> 50000000000000\n'],
    ['1.0 / 0', 'c', '=> ##Inf\n'],
  ];
  for (const [src, lang, want] of cases) {
    const r = await evalExpr(src, { lang });
    assert.equal(r.stdout, want, `${src}: ${r.stderr}`);
  }
  // the output also comes back in each runtime's ack and event
  const r = await evalExpr('(do (println "x") (println "y") 1)', { lang: 'lisp' });
  assert.equal(r.stdout, 'x\ny\n=> 1\n');
  for (const rt of runtimes) assert.equal(lastExpr(rt).out, 'x\ny\n');
});

test('a trap is reported per runtime, and the expression changes nothing', async () => {
  await relay.eval(ROOM, H + 'PB_STATE(int, counter, 0);\n' +
    'int bump(int x) { counter += 1; return 10 / x; }\n' +
    'int get_counter(void) { return counter; }\n', { runtimes: 2 });
  assert.equal((await evalExpr('bump(5)')).stdout, '=> 2\n');
  const r = await evalExpr('bump(0)');
  assert.equal(r.code, 4, 'a trap is exit status 4');
  // the same trap on both runtimes: said once, without a count
  assert.match(r.stderr, /^failed: trap in 'bump': RuntimeError: divide by zero \(the expression changed nothing\)\n$/);
  for (const rt of runtimes) {
    const e = lastExpr(rt);
    assert.deepEqual([e.ok, e.var], [false, 'bump']);
  }
  // the counter it incremented before the trap is back; bump is still the var
  assert.equal((await evalExpr('get_counter()')).stdout, '=> 1\n');
  assert.equal((await evalExpr('bump(2)')).stdout, '=> 5\n');
  assert.equal((await evalExpr('get_counter()')).stdout, '=> 2\n');
});

test('an expression resets the state of the room by its name', async () => {
  await relay.eval(ROOM, '(defonce level (atom 5))\n(defn level-up [] (swap! level inc))',
                   { lang: 'lisp', runtimes: 2 });
  assert.equal((await evalExpr('(level-up)', { lang: 'lisp' })).stdout, '=> 6\n');
  assert.equal((await evalExpr('(reset! level 0)', { lang: 'lisp' })).stdout, '=> 0\n');
  assert.equal((await evalExpr('(level-up)', { lang: 'lisp' })).stdout, '=> 1\n');
  assert.equal((await evalExpr('PB_STATE_OF(double, level) += 10')).stdout, '=> 11\n');
  // a name no state has ends the expression with that error, on each runtime
  const r = await evalExpr('(reset! levle 0)', { lang: 'lisp' });
  assert.equal(r.code, 4);
  assert.match(r.stderr, /^failed: .*there is no state 'levle' on this runtime/);
  assert.equal((await evalExpr('@level', { lang: 'lisp' })).stdout, '=> 11\n');
});

test('runtimes that disagree are counted, and a late joiner does not run old expressions', async () => {
  await relay.eval(ROOM, H + 'PB_STATE(int, n, 0);\nint next_n(void) { return ++n; }\n', { runtimes: 2 });
  assert.equal((await evalExpr('next_n()')).stdout, '=> 1\n');
  const late = await join('late');
  runtimes.push(late);
  await until(() => late.committedSeq === runtimes[0].committedSeq, 'the late joiner caught up');
  assert.equal(late.exprs.length, 0, 'the catch-up ran no expression');
  // rt1 and rt2 kept n = 1; the late joiner's n starts at 0
  const r = await evalExpr('next_n()');
  assert.match(r.stdout, /^=> (2 on 2 runtimes, 1 on 1|1 on 1 runtime, 2 on 2)\n$/, r.stdout);
  assert.equal(lastExpr(late).value, '1');
});

test('in a catch-up, an expression runs in its place among the patches', async () => {
  // three recorded, signed patches: ggg + 48, (ggg 10), ggg + 49
  const a = (await relay.eval(ROOM, '(defn ggg [v] (+ v 48))', { lang: 'lisp', runtimes: 3 })).seq;
  await evalExpr('(ggg 10)', { lang: 'lisp' });
  const c = (await relay.eval(ROOM, '(defn ggg [v] (+ v 49))', { lang: 'lisp', runtimes: 3 })).seq;
  const items = [];
  for (let seq = 1; seq <= c; seq++) {
    const p = decode(await recorder.patch(seq));
    items.push({ stmt: p.stmt, sig: p.sig, module: p.module, source: p.source });
  }
  assert.equal(statementSeq(items[a].stmt), a + 1);
  const rt = await bareRuntime(ROOM, relay.key(), { head: recorder.heads[0] }); // the head names the epoch
  rt.exprs = [];
  rt.on('expr', (e) => rt.exprs.push(e));
  rt.receive(frame('history', { req: 0, head_seq: c, more: false, items }));
  assert.equal(rt.committedSeq, c);
  // every expression of the history ran, each in its place: the one of
  // seq a + 1 saw ggg + 48, not the ggg + 49 that came after it
  const last = rt.exprs[rt.exprs.length - 1];
  assert.equal(last.seq, c - 1);
  assert.equal(last.value, '58');
  // a catch-up is acked once, at its end (a definition here): no values
  assert.deepEqual(rt.acks().map((f) => [f.seq, f.state, f.value]), [[c, 'committed', undefined]]);
});
