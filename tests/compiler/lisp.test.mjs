// lisp.test.mjs — the Lisp front end end to end without a browser: .cljc
// patches compiled by `patchbay compile` are loaded into the runtime main
// module in node and their vars called through the registry, next to C
// patches in the same room. The diagnostics tests check Lisp positions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Room, makeRuntime } from './harness.mjs';

const lisp = (room, src) => room.compile(src, { ext: 'cljc' });

function applyOk(rt, r) {
  assert.ok(r.ok, r.stderr);
  assert.deepEqual(rt.apply(r.module), { ok: true });
}

test('the seed demo in Lisp: (ggg 10) is 58, then 59', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, lisp(room, '(defn ggg [v] (+ v 48))\n'));
  assert.equal(rt.call('ggg', 10), 58);
  applyOk(rt, lisp(room, '(defn ggg [v] (+ v 49))\n'));
  assert.equal(rt.call('ggg', 10), 59);
  room.dispose();
});

test('redefining a Lisp var changes what an older Lisp caller calls', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, lisp(room, '(defn helper [x] (* x 2))\n(defn frame [x] (+ (helper x) 1))\n'));
  assert.equal(rt.call('frame', 3), 7);
  applyOk(rt, lisp(room, '(defn helper [x] (* x 10))'));
  assert.equal(rt.call('frame', 3), 31);
  room.dispose();
});

test('Lisp and C patches call each other through the registry', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, room.compile('#include <patchbay.h>\ndouble twice(double x) { return 2 * x; }\n'));
  applyOk(rt, lisp(room, '(defn quad [x] (twice (twice x)))\n(defn small? [x] (< x 10))'));
  assert.equal(rt.call('quad', 3), 12);
  applyOk(rt, room.compile('#include <patchbay.h>\nint count_small(double a, double b) { return small_p(a) + small_p(b); }\n'));
  assert.equal(rt.call('count_small', 3, 30), 1);
  room.dispose();
});

test('recursion, loop/recur, let, cond, mod and multiple arities', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, lisp(room, `
(defn fact [n] (if (<= n 1) 1 (* n (fact (dec n)))))
(defn sum-to [n] (loop [i 0 acc 0] (if (> i n) acc (recur (inc i) (+ acc i)))))
(defn count-down [n acc] (if (zero? n) acc (recur (dec n) (+ acc 2))))
(defn sgn [x] (cond (neg? x) -1 (zero? x) 0 :else 1))
(defn hyp [a b] (let [a2 (* a a) b2 (* b b)] (sqrt (+ a2 b2))))
(defn wrap [x] (mod x 3))
(defn area ([r] (area r r)) ([w h] (* w h)))
(defn between? [a b c] (< a b c))
(defn twice-fn [x] (let [f (fn [y] (* 2 y))] (f (f x))))
(def speed 2.5)
(defn faster [] (* speed 2))
`));
  assert.equal(rt.call('fact', 5), 120);
  assert.equal(rt.call('sum_to', 100), 5050);
  assert.equal(rt.call('count_down', 100000, 0), 200000); // recur: no stack growth
  assert.equal(rt.call('sgn', -4), -1);
  assert.equal(rt.call('sgn', 0), 0);
  assert.equal(rt.call('sgn', 9), 1);
  assert.equal(rt.call('hyp', 3, 4), 5);
  assert.equal(rt.call('wrap', -1), 2); // Clojure's mod: the sign of the divisor
  assert.equal(rt.call('area__1', 3), 9);
  assert.equal(rt.call('area__2', 3, 4), 12);
  assert.equal(rt.call('between_p', 1, 2, 3), 1);
  assert.equal(rt.call('between_p', 1, 3, 2), 0);
  assert.equal(rt.call('twice_fn', 5), 20);
  assert.equal(rt.call('faster'), 5);
  assert.equal(rt.call('speed'), 2.5);
  room.dispose();
});

test('a defonce counter survives redefinitions of the code that uses it', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, lisp(room, '(defonce counter (atom 0))\n(defn tick [] (swap! counter inc))'));
  rt.call('tick');
  rt.call('tick');
  assert.equal(rt.call('tick'), 3);
  applyOk(rt, lisp(room, '(defonce counter (atom 0))\n(defn tick [] (swap! counter + 10))'));
  assert.equal(rt.call('tick'), 13);
  applyOk(rt, lisp(room, '(defonce counter 0)\n(defn peek-counter [] @counter)\n(defn zero! [] (reset! counter 0))'));
  assert.equal(rt.call('peek_counter'), 13);
  rt.call('zero_bang');
  assert.equal(rt.call('tick'), 10);
  room.dispose();
});

test('println output reaches the runtime console', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, lisp(room, '(defn hello [x] (println "x is" x "and" (> x 1) nil "50%") x)'));
  assert.equal(rt.call('hello', 2.5), 2.5);
  assert.ok(rt.logs.includes('x is 2.5 and true nil 50%'), JSON.stringify(rt.logs));
  room.dispose();
});

test('a visual in Lisp draws on the canvas', async () => {
  const room = new Room();
  const rt = await makeRuntime();
  applyOk(rt, lisp(room, `
(defonce frames 0)
(defn pb-frame [t c]
  (swap! frames inc)
  (pb-clear c (pb-rgb 0 0 255))
  (pb-rect c 0 0 (/ (pb-width c) 2) (pb-height c) (pb-rgb 255 0 0))
  (when (> t 1e30) (pb-clear c 0)))
(defn frames-drawn [] frames)
`));
  const M = rt.M, w = 8, h = 4;
  const px = M._malloc(w * h * 4), canvas = M._malloc(12);
  M.HEAP32[canvas >> 2] = w;
  M.HEAP32[(canvas >> 2) + 1] = h;
  M.HEAP32[(canvas >> 2) + 2] = px;
  rt.call('pb_frame', 1.0, canvas);
  rt.call('pb_frame', 2.0, canvas);
  const pixels = new Uint32Array(M.HEAPU8.buffer, px, w * h);
  assert.equal(pixels[0], 0xff0000ff);     // red, left half
  assert.equal(pixels[w - 1], 0xffff0000); // blue, right half
  assert.equal(rt.call('frames_drawn'), 2);
  M._free(px);
  M._free(canvas);
  room.dispose();
});

// [source, line, col, part of the message]
const errors = [
  ['(defn ggg [v] (+ v 48)', 1, 1, "'(' is never closed"],
  ['(defn ggg [v] (+ v 48)))', 1, 24, "unexpected ')'"],
  ['(defn f [x]\n  (+ x [1 2)))', 2, 12, "closed by ']'"],
  ['(defn f [x] "abc)', 1, 13, 'string is never closed'],
  ['(defn f [x] 1/2)', 1, 13, 'ratios'],
  ['(defn f [x]\n  (+ x y))', 2, 8, "unknown symbol 'y'"],
  ['(defn f [x]\n   (nope x))', 2, 5, "unknown function 'nope'"],
  ['(defn f [x] (if x 1 2))', 1, 17, 'always true'],
  ['(defn f [x] (recur))', 1, 13, 'recur takes 1 argument'],
  ['(defn f [x] (+ 1 (recur x)))', 1, 18, 'tail position'],
  ['(defn f [x] (let [y] y))', 1, 18, 'pairs'],
  ['(defn f [x] (fn [y] (+ x y)))', 1, 24, 'closures'],
  ['(defn f [x] x)\n(+ 1 2)', 2, 1, 'also defines vars'], // expressions: on their own
  ['(+ 1 2) (+ 3 4)', 1, 9, 'one expression per eval'],
  ['(defn sin [x] x)', 1, 7, 'builtin'],
  ['(defn f [x] (sin x x))', 1, 13, 'sin takes 1 argument'],
  ['(defn f [x] (if (> x 1) 1 true))', 1, 27, 'every branch must agree'],
  ['(defn f [x] (+ 1 (if (> x 1) 1 true)))', 1, 18, 'must agree'],
  ['(defn f [x] x)\n\n  (defn printf [x] (+ x 1))', 3, 3, "conflicting types for 'printf'"],
  ['(defn f [x] {:a 1})', 1, 13, 'maps are not supported'],
  ['(defn pb-frame [t] t)', 1, 16, 'pb-frame takes [t canvas]'],
  ['(defn f [x] (is (> x 1)))', 1, 13, 'only allowed inside deftest'],
  ['(defn f [x] (swap! nothing inc))', 1, 20, 'defonce'],
  ['(defn f [x] x)\n(defn f [y] y)', 2, 7, 'defined twice'],
  ['(defn f [x] #_(ignored) `x)', 1, 25, 'syntax-quote'],
];

test('reader and compile errors point at the Lisp line and column', async () => {
  const room = new Room();
  for (const [src, line, col, what] of errors) {
    const r = lisp(room, src);
    assert.equal(r.ok, false, `accepted: ${src}`);
    assert.equal(r.status, 1, src);
    const m = /:(\d+):(\d+): error: (.*)/.exec(r.stderr);
    assert.ok(m, `no diagnostic for ${src}: ${r.stderr}`);
    assert.deepEqual([Number(m[1]), Number(m[2])], [line, col], `${src}: ${m[3]}`);
    assert.ok(m[3].includes(what), `${src}: "${m[3]}" lacks "${what}"`);
    assert.ok(!/p__|l__|pbl_/.test(r.stderr), `generated names leak: ${r.stderr}`);
  }
  room.dispose();
});

test('a wrong call to a room var is reported at the Lisp call', async () => {
  const room = new Room();
  assert.ok(room.compile('#include <patchbay.h>\ndouble twice(double x) { return 2 * x; }\n').ok);
  const r = lisp(room, '(defn f [x]\n  (twice x x))');
  assert.equal(r.ok, false);
  assert.match(r.stderr, /:2:3: error: 'twice' takes 1 argument \(double twice\(double x\)\), given 2/);
  room.dispose();
});
