// common.mjs — what the node benchmarks share: reading --name VALUE
// options and percentiles.

// The value after --name on the command line, or dflt.
export function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

// The p-th percentile (nearest rank, rounding down) of xs; NaN if empty.
export function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}
