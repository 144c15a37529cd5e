/**
 * Child process for store-migrate-race.test.ts: waits until the wall-clock instant given in
 * argv[3] (so that every child starts migrating together), then opens the store named by
 * argv[2], which migrates it. Prints "ok" and exits 0, or prints the error and exits 1.
 */
import { openStore } from '../src/store/index.js';

const [db, startAt] = process.argv.slice(2);
while (Date.now() < Number(startAt)) await new Promise((r) => setTimeout(r, 1));
try {
  const store = await openStore({ db: db as string });
  await store.close();
  process.stdout.write('ok\n');
} catch (e) {
  process.stdout.write(`${(e as Error).message}\n`);
  process.exitCode = 1;
}
