import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { openStore } from '../src/store/index.js';
import { RestStudyStorage } from '../src/tune/index.js';
import { runStudyStorageSuite } from '../src/tune/study-storage.suite.js';

/** A real kiln server on loopback over a fresh SQLite store; each handle is its own REST client. */
async function startServer() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-studies-rest-'));
  const store = await openStore({ db: path.join(root, 'kiln.db') });
  const app = await buildApp({
    store,
    artifacts: new LocalArtifactStore(path.join(root, 'artifacts')),
    config: resolveConfig({ home: root }),
    logger: false,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    url,
    cleanup: async () => {
      await app.close();
      await store.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

runStudyStorageSuite('rest', async () => {
  const server = await startServer();
  return {
    open: async () => ({ storage: new RestStudyStorage(server.url), close: async () => {} }),
    cleanup: server.cleanup,
  };
});

describe('/api/kiln/studies refuses bad input with MLflow-shaped 4xx', () => {
  it('names the field, the missing study and the missing trial', async () => {
    const server = await startServer();
    const post = async (url: string, body: unknown) => {
      const res = await fetch(`${server.url}${url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { error_code: string; message: string } };
    };
    try {
      const bad = await post('/api/kiln/studies', { name: 's', directions: ['sideways'], spec: {} });
      expect(bad.status).toBe(400);
      expect(bad.body.error_code).toBe('INVALID_PARAMETER_VALUE');
      expect(bad.body.message).toContain("'directions.0'");
      const unknownStudy = await post('/api/kiln/studies/999/trials', { workerId: 'w' });
      expect(unknownStudy).toEqual({
        status: 404,
        body: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'study 999 does not exist' },
      });
      const unknownTrial = await post('/api/kiln/studies/trials/999/finish', {
        workerId: 'w',
        state: 'COMPLETE',
        values: [1],
        constraints: null,
        failReason: null,
      });
      expect(unknownTrial.status).toBe(404);
      expect(unknownTrial.body.message).toBe('trial 999 does not exist');
      const badId = await post('/api/kiln/studies/abc/trials', { workerId: 'w' });
      expect(badId.status).toBe(400);
      expect(badId.body.message).toContain("'studyId'");
    } finally {
      await server.cleanup();
    }
  });
});
