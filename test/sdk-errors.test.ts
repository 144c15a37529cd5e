import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connect, KilnError } from '../src/index.js';

describe('SDK errors', () => {
  it('says which server it could not reach, and how to point elsewhere', async () => {
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const kiln = await connect(`http://127.0.0.1:${port}`, { rest: { maxRetries: 1, retryBaseMs: 1 } });
    const e = await kiln.startRun({ experiment: 'x' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).message).toMatch(
      new RegExp(`cannot reach the tracking server at http://127\\.0\\.0\\.1:${port}.*ECONNREFUSED`),
    );
    await kiln.close();
  });

  it('reports missing runs and experiments with MLflow codes (embedded)', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-errors-'));
    const kiln = await connect(home);
    try {
      await expect(kiln.getRun('0'.repeat(32))).rejects.toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST' });
      await expect(kiln.searchRuns({ experiments: ['nope'] })).rejects.toMatchObject({
        code: 'RESOURCE_DOES_NOT_EXIST',
      });
      await expect(kiln.startRun({ experimentId: '424242' })).rejects.toMatchObject({
        code: 'RESOURCE_DOES_NOT_EXIST',
      });
    } finally {
      await kiln.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses tracking URIs it cannot serve', async () => {
    await expect(connect('ftp://example.com/x')).rejects.toThrow(/unsupported scheme/);
  });
});
