import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openArtifactStore } from '../artifacts/index.js';
import { resolveConfig } from '../config.js';
import { buildApp } from '../server/index.js';
import { openStore } from '../store/index.js';
import { RestTrackingStore } from './rest-store.js';
import { SqlTrackingStore } from './sql-store.js';
import { runTrackingStoreSuite } from './tracking-store-suite.js';

function tempHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tracking-suite-'));
}

runTrackingStoreSuite('SQL, embedded SQLite', async () => {
  const home = tempHome();
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  const tracking = await SqlTrackingStore.create(store, openArtifactStore(path.join(home, 'artifacts')), {
    closeStore: true,
  });
  return {
    store: tracking,
    close: async () => {
      await tracking.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

runTrackingStoreSuite('REST, against a kiln server on loopback', async () => {
  const home = tempHome();
  const config = resolveConfig({ home });
  const store = await openStore({ db: config.db });
  const app = await buildApp({ store, artifacts: openArtifactStore(config.artifacts), config });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const rest = new RestTrackingStore(`http://127.0.0.1:${port}`);
  return {
    store: rest,
    close: async () => {
      await rest.close();
      await app.close();
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});
