// forms.test.mjs — what Ctrl-Enter evaluates (web/src/forms.js): the form or
// definition under the cursor, with state and private helpers, positions
// kept line for line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formAt, lispForms, cChunks } from '../../web/src/forms.js';

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
