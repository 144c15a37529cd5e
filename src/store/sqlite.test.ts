import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkStoreIntegrity, openStore } from './open-store.js';
import { runStoreSuite } from './store.suite.js';

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

  it('lets another process write while a read-then-write transaction is open, without SQLITE_BUSY_SNAPSHOT', async () => {
    const file = path.join(dir, 'two-processes', 'kiln.db');
    const store = await openStore({ db: file });
    const experiment = (name: string) => ({
      name,
      artifact_location: 'x',
      lifecycle_stage: 'active',
      creation_time: 1,
      last_update_time: 1,
    });
    let writerExit: Promise<number | null> | undefined;
    try {
      await store.db.transaction().execute(async (trx) => {
        await trx.selectFrom('experiments').selectAll().execute();
        // Another process writes while this transaction is open. With a deferred BEGIN it
        // commits first and our write below fails with SQLITE_BUSY_SNAPSHOT; with BEGIN
        // IMMEDIATE it waits for our commit.
        const writer = spawn(
          process.execPath,
          [
            '-e',
            `const D = require('better-sqlite3'); const d = new D(process.argv[1]); d.pragma('busy_timeout = 10000');
             d.prepare("insert into experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) values ('other', 'x', 'active', 1, 1)").run();`,
            file,
          ],
          { stdio: 'inherit' },
        );
        writerExit = new Promise<number | null>((resolve) => writer.on('exit', resolve));
        await Promise.race([writerExit, new Promise((resolve) => setTimeout(resolve, 1500))]);
        await trx.insertInto('experiments').values(experiment('ours')).execute();
      });
      expect(await writerExit).toBe(0);
      const names = await store.db.selectFrom('experiments').select('name').orderBy('name').execute();
      expect(names.map((r) => r.name)).toEqual(['other', 'ours']);
    } finally {
      await store.close();
    }
  });
});
