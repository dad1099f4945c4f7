// clock.js — the room clock as one runtime sees it (docs/PROTOCOL.md
// § Clock sync). Each ping/pong gives one sample: the round trip
// (t3 − t0) − (t2 − t1) and the relay clock's offset
// ((t1 − t0) + (t2 − t3)) / 2. A sample is only as good as its round trip
// is short (queueing delays are one-sided), so the clock uses the sample
// with the smallest round trip among the recent ones and reports half that
// round trip as its uncertainty. Samples age out, so the estimate follows
// drift (continuous re-sync). No I/O here: the host sends the pings.

// Local time in µs since the Unix epoch (performance: monotonic within a
// process, present in browsers, workers and node).
export function localNowUs() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export class RoomClock {
  // opts: {now: () => local µs, maxSamples (64), maxAgeUs (60 s)}. With a
  // ping every 500 ms, 64 samples are the last 32 s: enough that one of them
  // crossed both ways with little queueing, which is the one that counts.
  constructor(opts = {}) {
    this.now = opts.now || localNowUs;
    this.maxSamples = opts.maxSamples || 64;
    this.maxAgeUs = opts.maxAgeUs || 60e6;
    this.samples = [];
    this.offsetUs = 0;        // room time − local time
    this.uncertaintyUs = Infinity;
    this.rttUs = Infinity;    // round trip of the sample in use
  }

  get isSynced() { return this.samples.length > 0; }

  // A first guess from welcome.now_us (one-way, so uncertain by a whole
  // trip); replaced by the first pong.
  seed(relayNowUs) {
    if (this.isSynced) return;
    this.offsetUs = relayNowUs - this.now();
  }

  // One ping/pong: t0, t3 local; t1, t2 on the relay. Returns the sample.
  sample(t0, t1, t2, t3 = this.now()) {
    const rtt = Math.max(0, (t3 - t0) - (t2 - t1));
    const s = { rtt, offset: ((t1 - t0) + (t2 - t3)) / 2, at: t3 };
    this.samples.push(s);
    const oldest = t3 - this.maxAgeUs;
    while (this.samples.length > this.maxSamples ||
           (this.samples.length > 1 && this.samples[0].at < oldest))
      this.samples.shift();
    let best = this.samples[0];
    for (const x of this.samples) if (x.rtt < best.rtt) best = x;
    this.offsetUs = best.offset;
    this.rttUs = best.rtt;
    this.uncertaintyUs = best.rtt / 2;
    return s;
  }

  // Room time now, in µs since the epoch.
  roomNowUs() { return this.now() + this.offsetUs; }
}
