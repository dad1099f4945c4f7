// clock.js — the room clock as one runtime sees it (docs/PROTOCOL.md
// § Clock sync). Each ping/pong gives one sample: the round trip
// (t3 − t0) − (t2 − t1) and the relay clock's offset
// ((t1 − t0) + (t2 − t3)) / 2. A sample is only as good as its round trip
// is short (queueing delays are one-sided), so the clock uses the sample
// with the smallest round trip among the recent ones and reports half that
// round trip as its uncertainty. Samples age out, so the estimate follows
// drift (continuous re-sync). No I/O here: the host sends the pings.
//
// Pongs are not signed, so a man in the middle can forge them
// (docs/SECURITY.md § The room clock). The clock therefore drops samples
// that cannot be true (a pong for no ping of ours, a relay that answered
// before it received, a negative round trip), and, once synced, a sample
// whose offset differs from the estimate by more than both uncertainties
// and clock drift allow. Whatever the pongs say, the room time it gives is
// bounded by the relay times it received signed (a statement's created_us,
// a head's time_us, one every 5 s; docs/SECURITY.md § The room clock):
// never behind a moment the relay signed before this runtime received it,
// and never more than MAX_AHEAD_US ahead of the least delayed of them (the
// last minute's), each with clock drift since: a forger can walk the
// estimate, not what the runtime uses.
import { PB_HEAD_EVERY_US } from './pb_protocol.js';

// Local time in µs since the Unix epoch (performance: monotonic within a
// process, present in browsers, workers and node).
export function localNowUs() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

// How fast two honest clocks may drift apart (µs per µs), and a fixed
// slack, for the bound on how far a new sample may move the estimate.
const MAX_DRIFT = 200e-6;
const JUMP_SLACK_US = 1000;
// How far ahead of a signed relay time, as received, the room time may be:
// room for an honest head's trip from signing to being handled here, with
// a busy relay or event loop (the least delayed of the last minute's
// signed times counts). For the first PB_HEAD_EVERY_US + that after the
// first signed time, a heartbeat's more: the head a runtime gets when it
// joins may be the last one an edge kept (docs/PROTOCOL.md § The signed
// head); the next one comes as it is signed.
export const MAX_AHEAD_US = 1e6;
// Signed times kept for the bounds: those received in the last minute (a
// relay whose clock was stepped back is followed after a minute), at most
// MAX_SIGNED, the least delayed kept.
const SIGNED_KEPT_US = 60e6;
const MAX_SIGNED = 32;
// Pings whose pongs are still expected (a pong answers one of these).
const MAX_OUTSTANDING = 16;

export class RoomClock {
  // opts: {now: () => local µs, maxSamples (64), maxAgeUs (60 s),
  // maxAheadUs (MAX_AHEAD_US; Infinity for a test that drives the clock
  // past the signed times it feeds)}. With a ping every 500 ms, 64 samples
  // are the last 32 s: enough that one of them crossed both ways with
  // little queueing, which is the one that counts.
  constructor(opts = {}) {
    this.now = opts.now || localNowUs;
    this.maxSamples = opts.maxSamples || 64;
    this.maxAgeUs = opts.maxAgeUs || 60e6;
    this.maxAheadUs = opts.maxAheadUs ?? MAX_AHEAD_US;
    this.samples = [];
    this.estUs = 0;           // room time − local time, as the pongs say
    this.uncertaintyUs = Infinity;
    this.rttUs = Infinity;    // round trip of the sample in use
    this.bestAt = 0;          // local time of the sample in use
    this.acceptedAt = 0;      // local time of the last sample kept
    this.outstanding = [];    // t0 of pings not yet answered
    this.dropped = 0;         // samples dropped as impossible
    this.lastDropped = '';    // why the last one was
    this.floored = 0;         // times a signed relay time moved the clock on
    // signed relay times as received: {low: relay time − local time of
    // receipt (the true offset was at least that), at: that local time}
    this.signed = [];
    this.firstSignedAt = 0;   // local time of the first
  }

  // room time − local time at local time t: the estimate within the
  // signed bounds (the floor wins over the ceiling)
  offsetAt(t) {
    if (!this.signed.length) return this.estUs;
    let lo = -Infinity, hi = -Infinity;
    for (const x of this.signed) {
      lo = Math.max(lo, x.low - MAX_DRIFT * (t - x.at));
      hi = Math.max(hi, x.low + MAX_DRIFT * (t - x.at));
    }
    const early = t - this.firstSignedAt < PB_HEAD_EVERY_US + this.maxAheadUs;
    return Math.max(lo, Math.min(this.estUs, hi + this.maxAheadUs + (early ? PB_HEAD_EVERY_US : 0)));
  }

  get offsetUs() { return this.offsetAt(this.now()); }

  get isSynced() { return this.samples.length > 0; }

  // A first guess from welcome.now_us (one-way, so uncertain by a whole
  // trip); replaced by the first pong.
  seed(relayNowUs) {
    if (this.isSynced) return;
    this.estUs = relayNowUs - this.now();
  }

  // The t0 of a ping to send now (its pong must echo it: whole µs, as the
  // frame carries it).
  ping() {
    const t0 = Math.floor(this.now());
    this.outstanding.push(t0);
    if (this.outstanding.length > MAX_OUTSTANDING) this.outstanding.shift();
    return t0;
  }

  drop(why) {
    this.dropped++;
    this.lastDropped = why;
    return { dropped: why };
  }

  // One ping/pong: t0, t3 local; t1, t2 on the relay. Returns the sample,
  // or {dropped: why} for one that cannot be true.
  sample(t0, t1, t2, t3 = this.now()) {
    const i = this.outstanding.indexOf(t0);
    if (i < 0) return this.drop('a pong for no ping of this runtime');
    this.outstanding.splice(i, 1);
    if (t2 < t1) return this.drop('a pong sent before its ping was received');
    const rtt = (t3 - t0) - (t2 - t1);
    if (rtt < 0) return this.drop(`a negative round trip (${(rtt / 1000).toFixed(1)} ms)`);
    const offset = ((t1 - t0) + (t2 - t3)) / 2;
    // Every sample dropped for as long as samples live: the estimate is
    // stale (the relay's clock was stepped); start afresh. The floor of
    // signed times still holds.
    if (this.isSynced && t3 - this.acceptedAt > this.maxAgeUs) this.samples = [];
    if (this.isSynced) {
      const allowed = this.uncertaintyUs + rtt / 2 + JUMP_SLACK_US + MAX_DRIFT * (t3 - this.bestAt);
      if (Math.abs(offset - this.estUs) > allowed)
        return this.drop(`an offset ${((offset - this.estUs) / 1000).toFixed(1)} ms from the estimate, ` +
                         `beyond the ±${(allowed / 1000).toFixed(1)} ms its uncertainty allows`);
    }
    const s = { rtt, offset, at: t3 };
    this.samples.push(s);
    this.acceptedAt = t3;
    const oldest = t3 - this.maxAgeUs;
    while (this.samples.length > this.maxSamples ||
           (this.samples.length > 1 && this.samples[0].at < oldest))
      this.samples.shift();
    let best = this.samples[0];
    for (const x of this.samples) if (x.rtt < best.rtt) best = x;
    this.estUs = best.offset;
    this.rttUs = best.rtt;
    this.uncertaintyUs = best.rtt / 2;
    this.bestAt = best.at;
    return s;
  }

  // relayUs is a moment the relay signed (a statement's created_us, a
  // head's time_us) before this runtime received it, now: the room time
  // cannot be earlier, and is not much later (offsetAt). If the estimate
  // says it is earlier, the estimate is wrong (a forged pong, or a relay
  // clock that was stepped): move it on to that moment. Returns true if it
  // moved.
  atLeast(relayUs, t = this.now()) {
    const low = relayUs - t;
    this.firstSignedAt ||= t;
    this.signed = this.signed.filter((x) => x.at >= t - SIGNED_KEPT_US);
    this.signed.push({ low, at: t });
    if (this.signed.length > MAX_SIGNED) {
      let worst = 0;
      this.signed.forEach((x, i) => { if (x.low < this.signed[worst].low) worst = i; });
      this.signed.splice(worst, 1);
    }
    const behind = low - this.estUs;
    if (!(behind > 0)) return false;
    this.estUs += behind;
    for (const x of this.samples) x.offset += behind;
    this.floored++;
    return true;
  }

  // Room time now, in µs since the epoch.
  roomNowUs() {
    const t = this.now();
    return t + this.offsetAt(t);
  }
}
