import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkStoreIntegrity, openStore } from './open-store.js';
import { runStoreSuite } from './store-suite.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-store-'));
let n = 0;
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

runStoreSuite('sqlite', () => openStore({ db: path.join(dir, `s${n++}`, 'kiln.db') }));

describe('sqlite store', () => {
  it('runs in WAL mode, passes its integrity check and reopens without re-migrating', async () => {
    const file = path.join(dir, 'reopen', 'kiln.db');
    const a = await openStore({ db: file });
    expect(a.sqlite!.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(await checkStoreIntegrity(a)).toBe('ok');
    await a.close();
    const b = await openStore({ db: file });
    expect(await checkStoreIntegrity(b)).toBe('ok');
    await b.close();
  });

  it('names the file when it cannot be opened', async () => {
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, 'x');
    await expect(openStore({ db: path.join(blocker, 'kiln.db') })).rejects.toThrow(/blocker/);
  });
});
