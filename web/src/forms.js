// forms.js — what Ctrl/Cmd-Enter evaluates: the top-level definition under
// the cursor, as a source that keeps every line and column of the buffer
// (the rest is blanked to spaces, newlines kept), so the relay's
// diagnostics land on the right place without any mapping.
//
// Lisp: the form under the cursor, plus every (defonce …) and (defn- …) of
// the buffer (state and private helpers must be declared in each eval).
// C: the definition under the cursor, plus every preprocessor line, every
// declaration that is not a function definition (types, PB_STATE, globals)
// and every static function (private helpers). Other vars are reached
// through the room's registry, so they are not re-sent.
// An expression under the cursor — a Lisp form that is not a definition,
// such as (ggg 10), or a C call on a line of its own, such as ggg(10); —
// is sent alone (Lisp: with the defonce forms), marked expr: it runs once
// on every runtime, which answers with its value (docs/PROTOCOL.md
// § Expressions).
// Pure functions of text, tested in node (tests/web/forms.test.mjs).

// Top-level chunks of Lisp source: [{from, to}] for each form.
export function lispForms(text) {
  const out = [];
  let depth = 0, start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ';') { while (i < text.length && text[i] !== '\n') i++; continue; }
    if (c === '"') {
      if (depth === 0) start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (depth === 0) out.push({ from: start, to: i + 1 });
      continue;
    }
    if (c === '\\') { i++; continue; }
    if (c === '(' || c === '[' || c === '{') {
      if (depth === 0) {
        start = i;
        // a prefix such as ' @ #_ #{ belongs to the form
        while (start > 0 && "'@#_`~^".includes(text[start - 1])) start--;
      }
      depth++;
    } else if (c === ')' || c === ']' || c === '}') {
      if (depth > 0 && --depth === 0) out.push({ from: start, to: i + 1 });
    } else if (depth === 0 && !/\s|,/.test(c)) {
      let j = i;
      while (j < text.length && !/[\s,()[\]{}";]/.test(text[j])) j++;
      out.push({ from: i, to: j });
      i = j - 1;
    }
  }
  if (depth > 0 && start >= 0) out.push({ from: start, to: text.length, open: true });
  return out;
}

// Top-level chunks of C source: [{from, to, kind}] with kind 'pp'
// (preprocessor line), 'fn' (function definition), 'static' (static
// function definition) or 'decl' (anything ending in ';' at depth 0).
export function cChunks(text) {
  const out = [];
  let depth = 0, start = -1, i = 0;
  const n = text.length;
  const atLineStart = (k) => { let j = k - 1; while (j >= 0 && (text[j] === ' ' || text[j] === '\t')) j--; return j < 0 || text[j] === '\n'; };
  for (; i < n; i++) {
    const c = text[i];
    if (c === '/' && text[i + 1] === '/') { while (i < n && text[i] !== '\n') i++; continue; }
    if (c === '/' && text[i + 1] === '*') { const e = text.indexOf('*/', i + 2); i = e < 0 ? n : e + 1; continue; }
    if (c === '"' || c === "'") { for (i++; i < n && text[i] !== c && text[i] !== '\n'; i++) if (text[i] === '\\') i++; continue; }
    if (c === '#' && depth === 0 && atLineStart(i) && start < 0) {
      let j = i;
      while (j < n && text[j] !== '\n') { if (text[j] === '\\' && text[j + 1] === '\n') j++; j++; }
      out.push({ from: i, to: j, kind: 'pp' });
      i = j;
      continue;
    }
    if (/\s/.test(c)) continue;
    if (start < 0 && depth === 0) start = i;
    if (c === '{' || c === '(' || c === '[') depth++;
    else if (c === '}' || c === ')' || c === ']') {
      depth = Math.max(0, depth - 1);
      if (c === '}' && depth === 0 && start >= 0) {
        // a function body ends here unless a ';' follows (struct, initialiser)
        let j = i + 1;
        while (j < n && /[ \t]/.test(text[j])) j++;
        if (text[j] !== ';' && !/=\s*$/.test(text.slice(start, i).split('{')[0])) {
          const head = text.slice(start, i);
          const isFn = /\)\s*$/.test(head.split('{')[0]);
          const kind = !isFn ? 'decl' : /^\s*(static|inline\s+static)\b/.test(head) ? 'static' : 'fn';
          out.push({ from: start, to: i + 1, kind });
          start = -1;
        }
      }
    } else if (c === ';' && depth === 0 && start >= 0) {
      out.push({ from: start, to: i + 1, kind: 'decl' });
      start = -1;
    }
  }
  if (start >= 0) out.push({ from: start, to: n, kind: 'decl', open: true });
  return out;
}

// The chunk under pos, or the nearest one before it (the cursor is often
// just after the closing paren), or the first after it.
function pick(chunks, pos) {
  let best = null;
  for (const c of chunks) {
    if (c.from <= pos && pos <= c.to) return c;
    if (c.to <= pos) best = c;
  }
  return best || chunks.find((c) => c.from >= pos) || null;
}

// Every UTF-16 unit outside the kept ranges becomes a space (newlines
// stay), so line numbers and UTF-16 columns are the buffer's.
function blank(text, keep) {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    out += c === '\n' || keep.some((r) => i >= r.from && i < r.to) ? c : ' ';
  }
  return out.replace(/[ \t]+$/gm, '').replace(/\s+$/, '\n');
}

// A Lisp form that defines (or is ignored by the compiler); any other
// top-level form is an expression.
const LISP_DEFINITION = /^\((def|defn|defn-|defonce|deftest|ns|comment|declare)[\s)]/;
// A C declaration chunk that is a call, not a declaration: ggg(10); or
// printf("x"). A macro in capitals (PB_STATE(…);) declares.
const C_CALL = /^\s*(?![A-Z0-9_]+\s*\()[A-Za-z_]\w*\s*\([^;{}]*\)\s*;?\s*$/;

// What to evaluate for the cursor at pos: {source, from, to, expr} or null
// when the buffer has nothing there.
export function formAt(text, pos, lang) {
  if (lang === 'lisp') {
    const forms = lispForms(text);
    const f = pick(forms, pos);
    if (!f) return null;
    const expr = !LISP_DEFINITION.test(text.slice(f.from, f.from + 12));
    // an expression comes with the state it may use, not with definitions
    const extra = forms.filter((g) => g !== f &&
      (expr ? /^\(defonce[\s)]/ : /^\((defonce|defn-|ns)[\s)]/).test(text.slice(g.from, g.from + 10)));
    return { source: blank(text, [f, ...extra]), from: f.from, to: f.to, expr };
  }
  const chunks = cChunks(text);
  const defs = chunks.filter((c) => c.kind === 'fn' || c.kind === 'static' || c.kind === 'decl');
  const f = pick(defs, pos);
  if (!f) return null;
  if (f.kind === 'decl' && C_CALL.test(text.slice(f.from, f.to)))
    return { source: blank(text, [f]), from: f.from, to: f.to, expr: true };
  const keep = chunks.filter((c) => c === f || c.kind === 'pp' || c.kind === 'static' ||
                                    (c.kind === 'decl' && !c.open && !C_CALL.test(text.slice(c.from, c.to))));
  return { source: blank(text, keep), from: f.from, to: f.to, expr: false };
}
