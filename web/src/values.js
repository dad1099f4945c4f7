// values.js — what the editor shows at the end of an evaluated expression
// (docs/PROTOCOL.md § Expressions): every runtime that ran it answered with
// a value or a trap; one value shows as `=> 59`, runtimes that disagree as
// `=> 58 on 2 runtimes, 59 on 8` (in the order the values came), traps as
// `trap on 1 runtime: …`. The same words as `patchbay eval` prints.
// A pure function of the answers, tested in node (tests/web/forms.test.mjs).

// answers: [{ok, text}] in arrival order (text: the value, or the trap).
// Returns {text, kind} with kind 'value', 'mixed' (values and traps) or
// 'trap'; null when nobody answered yet.
export function describeAnswers(answers) {
  if (!answers.length) return null;
  const groups = (ok) => {
    const m = new Map();
    for (const a of answers) if (a.ok === ok) m.set(a.text, (m.get(a.text) || 0) + 1);
    return [...m];
  };
  const values = groups(true), traps = groups(false);
  const nOk = values.reduce((n, [, c]) => n + c, 0);
  const counted = (list, all) => list.map(([text, count], i) =>
    (all ? text : `${text} on ${count}${i === 0 ? ` runtime${count === 1 ? '' : 's'}` : ''}`)).join(', ');
  const parts = [];
  if (values.length) parts.push(`=> ${counted(values, values.length === 1 && !traps.length)}`);
  for (const [text, count] of traps)
    parts.push(`trap on ${count} runtime${count === 1 ? '' : 's'}: ${text}`);
  return { text: parts.join(' · '), kind: !traps.length ? 'value' : nOk ? 'mixed' : 'trap' };
}
