// forms.test.mjs — what Ctrl-Enter evaluates (web/src/forms.js): the form or
// definition under the cursor, with state and private helpers, positions
// kept line for line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formAt, lispForms, cChunks } from '../../web/src/forms.js';
import { describeAnswers } from '../../web/src/values.js';

const at = (text, marker) => text.indexOf(marker);

test('Lisp: the form under the cursor, with defonce and defn- forms', () => {
  const text = '(defonce n (atom 0))\n(defn- sq [x] (* x x))\n\n(defn a [x] (+ x 1))\n(defn b [x]\n  (sq (a x)))\n';
  const r = formAt(text, at(text, '(sq (a'), 'lisp');
  assert.equal(r.source.split('\n').length, text.split('\n').length);
  assert.match(r.source, /^\(defonce n \(atom 0\)\)\n\(defn- sq \[x\] \(\* x x\)\)\n\n\n\(defn b \[x\]\n  \(sq \(a x\)\)\)\n$/);
  // the cursor just after a closing paren picks that form
  const r2 = formAt(text, at(text, '(defn b') - 1, 'lisp');
  assert.ok(r2.source.includes('(defn a [x] (+ x 1))'));
  assert.ok(!r2.source.includes('(defn b'));
});

test('Lisp: strings, comments and characters do not confuse the nesting', () => {
  const text = '(defn f [x] (println ")(" \\( x)) ; ) (\n(defn g [] 1)';
  const forms = lispForms(text);
  assert.equal(forms.length, 2);
  assert.equal(text.slice(forms[1].from, forms[1].to), '(defn g [] 1)');
});

test('C: the definition under the cursor, with includes, state, statics and types', () => {
  const text = [
    '#include <patchbay.h>',
    'PB_STATE(int, frames, 0);',
    'struct p { int x; };',
    'static double sq(double x) { return x * x; }',
    'double a(double x) { return x + 1; }',
    'double b(double x) {',
    '    if (x > 0) { return sq(a(x)); }',
    '    return "}"[0];',
    '}',
    '',
  ].join('\n');
  const r = formAt(text, at(text, 'if (x'), 'c');
  const lines = r.source.split('\n');
  assert.equal(lines.length, text.split('\n').length);
  assert.equal(lines[0], '#include <patchbay.h>');
  assert.equal(lines[1], 'PB_STATE(int, frames, 0);');
  assert.equal(lines[2], 'struct p { int x; };');
  assert.equal(lines[3], 'static double sq(double x) { return x * x; }');
  assert.equal(lines[4], ''); // another var: blanked
  assert.equal(lines[5], 'double b(double x) {');
  assert.equal(lines[8], '}');
  const kinds = cChunks(text).map((c) => c.kind);
  assert.deepEqual(kinds, ['pp', 'decl', 'decl', 'static', 'fn', 'fn']);
});

test('an empty buffer has nothing to evaluate', () => {
  assert.equal(formAt('', 0, 'lisp'), null);
  assert.equal(formAt('  \n', 1, 'c'), null);
});

test('Lisp: an expression under the cursor is sent alone, with the state it may use', () => {
  const text = '(defonce n (atom 0))\n(defn- sq [x] (* x x))\n(defn a [x] x)\n(a 10)\n(reset! n 0)\n';
  const r = formAt(text, at(text, '(a 10)') + 2, 'lisp');
  assert.equal(r.expr, true);
  assert.equal(r.source, '(defonce n (atom 0))\n\n\n(a 10)\n');
  assert.equal(text.slice(r.from, r.to), '(a 10)');
  assert.equal(formAt(text, at(text, '(reset!'), 'lisp').expr, true);
  // a definition is not an expression, and still brings its helpers
  const d = formAt(text, at(text, '(defn a') + 2, 'lisp');
  assert.equal(d.expr, false);
  assert.ok(d.source.includes('(defn- sq'));
});

test('C: a call on its own is an expression, never part of a definition\'s eval', () => {
  const text = '#include <patchbay.h>\nPB_STATE(int, n, 0);\ndouble a(double x) { return x; }\n  a(10);\nprintf("%d", n)\n';
  const e = formAt(text, at(text, 'a(10)'), 'c');
  assert.equal(e.expr, true);
  assert.equal(e.source, '\n\n\n  a(10);\n'); // alone, on its own line
  assert.equal(formAt(text, at(text, 'printf'), 'c').expr, true);
  const d = formAt(text, at(text, 'double a'), 'c');
  assert.equal(d.expr, false);
  assert.ok(d.source.includes('PB_STATE(int, n, 0);') && !d.source.includes('a(10)'), d.source);
  assert.equal(formAt(text, at(text, 'PB_STATE'), 'c').expr, false); // a macro in capitals declares
});

test('values: one value, disagreeing runtimes counted, traps', () => {
  assert.equal(describeAnswers([]), null);
  assert.deepEqual(describeAnswers([{ ok: true, text: '59' }, { ok: true, text: '59' }]),
                   { text: '=> 59', kind: 'value' });
  const split = [58, 59, 59, 58, 59, 59, 59, 59, 59, 59].map((v) => ({ ok: true, text: String(v) }));
  assert.equal(describeAnswers(split).text, '=> 58 on 2 runtimes, 59 on 8');
  assert.deepEqual(describeAnswers([{ ok: true, text: '2' }, { ok: false, text: "trap in 'f': boom" }]),
                   { text: "=> 2 on 1 runtime · trap on 1 runtime: trap in 'f': boom", kind: 'mixed' });
  assert.equal(describeAnswers([{ ok: false, text: 'x' }, { ok: false, text: 'x' }]).kind, 'trap');
});
