// freshness.js — what the host knows of where its room is, from signed
// statements only (docs/SECURITY.md § Rollback and freeze; the checks are
// in runtime/head.c):
//
// - the floor: the highest head a runtime of this (relay key, room) has
//   verified, kept by a store (node: a file, runtime/node/store.mjs; a page:
//   localStorage) and handed to every new instance, so that no restart, and
//   no unsigned claim, takes the runtime backwards;
// - staleness: the relay signs the room's head at least every
//   PB_HEAD_EVERY_US; a head is fresh when it names the runtime's own head
//   (head.c), or once the runtime has reached it. When no fresh head with a newer signed time was received for
//   PB_HEAD_STALE_US on this runtime's own monotonic clock (counted from the
//   first welcome, if none came; a later, unsigned, welcome changes
//   nothing), the runtime may be starved, and says since when. The room
//   clock is not used: pongs are not signed.
import { PB_HEAD_STALE_US } from './pb_protocol.js';

export class Freshness {
  // store: {load(key, room) -> {epoch, seq, hash} | null, save(key, room,
  // head)}, or null (nothing persists); onStale(sinceUs): called when the
  // runtime becomes stale (sinceUs: the signed time of its freshest head)
  // and when it is fresh again (0).
  // nowMs: the local monotonic clock (default performance.now).
  constructor({ store, key, room, onStale, nowMs = () => performance.now() }) {
    this.nowMs = nowMs;
    this.store = store || null;
    this.key = key;
    this.room = room;
    this.onStale = onStale;
    this.saved = null;
    try {
      this.saved = this.store?.load(key, room) || null;
    } catch { /* an unreadable store is an empty one */ }
    this.freshUs = 0;      // signed time of the freshest fresh head
    this.freshAtMs = 0;    // when it was received (nowMs)
    this.joinedUs = 0;     // room time of the first welcome
    this.joinedAtMs = 0;   // when it was received (nowMs)
    this.staleSinceUs = 0; // 0: fresh
  }

  // The floor to give a new instance (null: none known).
  get floor() { return this.saved; }

  // The session's verified head ({epoch, seq, hash, epoch_known}); kept
  // when it is further than the floor.
  persist(head) {
    if (!head.epoch_known) return;
    const s = this.saved;
    if (s && (head.epoch < s.epoch || (head.epoch === s.epoch && head.seq <= s.seq))) return;
    this.saved = { epoch: head.epoch, seq: head.seq, hash: head.hash };
    try {
      this.store?.save(this.key, this.room, this.saved);
    } catch { /* the floor lives on in memory */ }
  }

  // A later epoch, signed: the floor of the old one no longer binds.
  newEpoch(epoch) {
    this.saved = { epoch, seq: 0, hash: '' };
    try {
      this.store?.save(this.key, this.room, this.saved);
    } catch { /* the floor lives on in memory */ }
  }

  // The first welcome (nowUs: the room time): the base while no fresh head
  // came. Only once: welcome is not signed.
  joined(nowUs) {
    if (this.joinedAtMs) return;
    this.joinedUs = nowUs;
    this.joinedAtMs = this.nowMs();
  }

  // A fresh signed head (it names the runtime's own head, or one the
  // runtime has since reached), signed at timeUs and received at atMs
  // (nowMs); one not newer than the freshest is a replay: it changes nothing.
  heard(timeUs, atMs = this.nowMs()) {
    if (timeUs <= this.freshUs) return;
    this.freshUs = timeUs;
    this.freshAtMs = atMs;
  }

  // Called often (the host's housekeeping): stale or fresh again?
  check() {
    const at = this.freshAtMs || this.joinedAtMs;
    const isStale = at > 0 && this.nowMs() - at > PB_HEAD_STALE_US / 1000;
    const sinceUs = isStale ? this.freshUs || this.joinedUs : 0;
    if (sinceUs !== this.staleSinceUs) {
      this.staleSinceUs = sinceUs;
      this.onStale(sinceUs);
    }
  }
}
