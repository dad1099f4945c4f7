// secrets.test.mjs — what patch code can read (issue 15, hole 4, its token
// part). Patch code runs in the runtime's wasm memory and can read all of
// it. The join token (what lets anyone join the room as this runtime) must
// not be there: the host hands C a stand-in of the same length to encode
// hello with and writes the token into the frame on its way out. A patch
// that scans every byte of its linear memory for the token, also right
// after a hello went out, finds nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Relay, joinRoom, parseLink, until } from '../runtime/harness.mjs';

const H = '#include <patchbay.h>\n';
let relay;

before(async () => { relay = await new Relay().start(); });
after(async () => { await relay?.stop(); });

// A patch whose seen(i) counts the places in linear memory that hold
// needles[i]. The source carries them reversed (the source is in memory
// too) and the patch turns one round on its stack, a place it then skips.
function scanner(needles) {
  const rev = needles.map((n) => `"${[...n].reverse().join('')}"`).join(', ');
  return `${H}static const char *const revs[] = {${rev}};
double seen(double which) {
  const char *rev = revs[(int)which];
  int n = (int)strlen(rev);
  char needle[64];
  for (int i = 0; i < n; i++) needle[i] = rev[n - 1 - i];
  volatile unsigned long base = 0;
  volatile const unsigned char *m = (volatile const unsigned char *)base;
  unsigned long top = (unsigned long)__builtin_wasm_memory_size(0) * 65536ul;
  int count = 0;
  for (unsigned long a = 1024; a + n <= top; a++) {
    if (m[a] != (unsigned char)needle[0] || (unsigned long)needle == a) continue;
    int k = 1;
    while (k < n && m[a + k] == (unsigned char)needle[k]) k++;
    if (k == n) count++;
  }
  return count;
}
`;
}

test('node runtime: a patch that scans all of its linear memory does not find the join token', async () => {
  const link = relay.link('secrets', 'node');
  const { token } = parseLink(link);
  // the device label is kept in wasm memory for every hello: the scan
  // must find it, or it proves nothing
  const label = `lbl${Math.random().toString(36).slice(2, 14)}`;
  const rt = await joinRoom(link, { name: 'node', device: { label } });
  try {
    await until(() => rt.state === 'live', 'joined');
    const { seq } = await relay.eval('secrets', scanner([token.slice(-40), label]), { runtimes: 1 });
    await until(() => rt.committedSeq === seq, 'the scanner committed');
    assert.ok(rt.call('seen', 1) >= 1, 'the scan finds the device label, which is in memory');
    assert.equal(rt.call('seen', 0), 0, 'the token is nowhere in the wasm memory');
    // nor right after a hello was encoded and sent (patch code may run at
    // any moment: a frame, a timer): the scan runs then
    let atHello = null;
    const onOpen = rt.conn.o.onOpen;
    rt.conn.o.onOpen = () => { onOpen(); atHello = rt.call('seen', 0); };
    rt.conn.reconnect('the test reconnects');
    await until(() => atHello !== null, 'a new hello');
    assert.equal(atHello, 0, 'the token is not in the wasm memory right after hello');
  } finally {
    rt.close();
  }
});
