// commit.js — when the host's patch instance commits: a timer armed a
// little before the next queued patch's apply time, then a precise sleep
// and a short busy wait on the room clock, so the swap lands within tens
// of µs of the apply time; and every host of this JS realm that is due at
// about the same time commits in the same pass.

// How early the commit timer fires before the last stretch (ms).
const SPIN_MS = 3;

// The last stretch before a commit: a precise sleep where the platform
// allows one (node: Atomics.wait, which takes fractions of a millisecond
// and leaves the CPU to other runtimes), else a busy wait (a browser worker
// without cross-origin isolation has no SharedArrayBuffer).
const sleepMs = (() => {
  try {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    Atomics.wait(cell, 0, 0, 0); // throws where a thread may not block
    return (ms) => { Atomics.wait(cell, 0, 0, ms); };
  } catch {
    return null;
  }
})();

// Every started host of this JS realm on the real clock (a test's own
// clock does not join). A node process may run many runtimes (a test
// farm); when one's commit is due, every other one due within
// COMMIT_GROUP_US swaps in the same pass — each at its own apply time on
// its own clock — before any of them does the slower rest (acks, pb_init,
// output), so they do not queue behind each other's work.
export const hosts = new Set();
const COMMIT_GROUP_US = (SPIN_MS + 1) * 1000;

function waitUntil(h, at, stop) {
  for (;;) {
    const left = (at - h.clock.roomNowUs()) / 1000;
    if (left <= 0 || performance.now() >= stop) return;
    if (sleepMs && left > 0.25) sleepMs(left - 0.15); // then spin the rest
  }
}

function commitTogether(first) {
  const stop = performance.now() + SPIN_MS + 2;
  const group = [];
  for (const h of hosts.has(first) ? hosts : [first]) {
    const at = h.nextApplyUs();
    if (at && (h === first || at - h.clock.roomNowUs() <= COMMIT_GROUP_US))
      group.push({ h, at, left: at - h.clock.roomNowUs() });
  }
  group.sort((a, b) => a.left - b.left);
  for (const g of group) {
    waitUntil(g.h, g.at, stop);
    g.h.M._rt_session_tick(g.h.clock.roomNowUs());
  }
  for (const g of group) g.h.afterTick();
}

// A timer for the next queued patch's apply time, armed SPIN_MS early:
// timers fire late by a millisecond or more, so the last stretch is a
// precise sleep and a short busy wait on the room clock, bounded in real
// time. A tick re-checks the room time, so a patch never commits early
// even if the clock moved meanwhile.
export function armTick(h) {
  if (h.timers.tick) h.clearTimeout(h.timers.tick);
  h.timers.tick = null;
  const next = h.nextApplyUs();
  if (!next) return;
  const ms = Math.max(0, Math.floor((next - h.clock.roomNowUs()) / 1000) - SPIN_MS);
  h.timers.tick = h.setTimeout(() => {
    h.timers.tick = null;
    commitTogether(h);
  }, ms);
}
