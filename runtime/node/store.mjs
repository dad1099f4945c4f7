// store.mjs — where a node runtime keeps the highest head it verified for
// each (relay key, room): one small JSON file per pair, in a folder
// (default $PATCHBAY_STATE_DIR, else $XDG_STATE_HOME/patchbay, else
// ~/.local/state/patchbay), written to a temporary file and renamed, so a
// crash never leaves half of one. runtime/freshness.js says why: no
// restart, and no unsigned claim, takes the runtime below it.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export function stateDir(dir) {
  return dir || process.env.PATCHBAY_STATE_DIR ||
         join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'patchbay');
}

// {load(key, room), save(key, room, head)} over the folder dir.
export function fileStore(dir) {
  const file = (key, room) => join(dir, `head-${key}-${Buffer.from(room).toString('hex')}.json`);
  return {
    load(key, room) {
      let text;
      try {
        text = readFileSync(file(key, room), 'utf8');
      } catch (e) {
        if (e.code === 'ENOENT') return null;
        throw e;
      }
      const h = JSON.parse(text);
      if (!Number.isSafeInteger(h.epoch) || !Number.isSafeInteger(h.seq) || typeof h.hash !== 'string')
        throw new Error(`${file(key, room)}: not a head`);
      return h;
    },
    save(key, room, head) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const f = file(key, room);
      const tmp = `${f}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(head)}\n`, { mode: 0o600 });
      renameSync(tmp, f);
    },
  };
}
