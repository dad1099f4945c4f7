// freshness.js — what the host knows of where its room is, from signed
// statements only (docs/SECURITY.md § Rollback and freeze; the checks are
// in runtime/head.c):
//
// - the floor: the highest head a runtime of this (relay key, room) has
//   verified, kept by a store (node: a file, runtime/node/store.mjs; a page:
//   localStorage) and handed to every new instance, so that no restart, and
//   no unsigned claim, takes the runtime backwards;
// - staleness: the relay signs the room's head at least every
//   PB_HEAD_EVERY_US; when the freshest signed head is older than
//   PB_HEAD_STALE_US on the room clock (counted from the moment the runtime
//   joined, if none came), the runtime may be starved, and says since when.
import { PB_HEAD_STALE_US } from './pb_protocol.js';

export class Freshness {
  // store: {load(key, room) -> {epoch, seq, hash} | null, save(key, room,
  // head)}, or null (nothing persists); onStale(sinceUs): called when the
  // runtime becomes stale (sinceUs: the signed time of its freshest head)
  // and when it is fresh again (0).
  constructor({ store, key, room, onStale }) {
    this.store = store || null;
    this.key = key;
    this.room = room;
    this.onStale = onStale;
    this.saved = null;
    try {
      this.saved = this.store?.load(key, room) || null;
    } catch { /* an unreadable store is an empty one */ }
    this.freshUs = 0;      // signed time of the freshest head
    this.joinedUs = 0;     // room time the current connection was welcomed
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

  joined(nowUs) { this.joinedUs = nowUs; }

  // A fresh signed head, signed at timeUs.
  heard(timeUs) {
    if (timeUs > this.freshUs) this.freshUs = timeUs;
  }

  // Called often (the host's housekeeping): stale or fresh again?
  check(nowUs) {
    const since = Math.max(this.freshUs, this.joinedUs);
    const isStale = since > 0 && nowUs - since > PB_HEAD_STALE_US;
    const sinceUs = isStale ? this.freshUs || this.joinedUs : 0;
    if (sinceUs !== this.staleSinceUs) {
      this.staleSinceUs = sinceUs;
      this.onStale(sinceUs);
    }
  }
}
