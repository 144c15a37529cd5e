import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runArtifactStoreSuite } from '../src/artifacts/artifact-store.suite.js';
import { openArtifactStore, S3ArtifactStore } from '../src/artifacts/index.js';
import { type S3TestServer, startS3Server } from './s3-server.js';

/** The S3 artifact store against a real S3-compatible server on loopback (test/s3-server.ts). */
let server: S3TestServer;
beforeAll(async () => {
  server = await startS3Server(['kiln-artifacts']);
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

// Each test gets a fresh prefix of one bucket: an empty store, as the suite needs.
runArtifactStoreSuite(
  's3',
  async () => {
    const store = new S3ArtifactStore('kiln-artifacts', `suite/${randomUUID()}`, server.settings);
    return {
      store,
      async cleanup() {
        // The fresh prefix is left to the server's temporary folder (removed at stop).
      },
    };
  },
  {
    // Measured on the 192 MiB round trip: 29 MiB live at the put's peak with a GC forced at
    // every chunk (5 MiB parts, 2 in flight, plus their concatenation) and 0 on the get; but
    // 63 MiB / 56 MiB of growth without forcing, the SDK's spent part and response buffers
    // waiting for V8 to collect them. The bound is set over that lag, far under the artifact.
    largeMemoryBound: 96 * 1024 * 1024,
  },
);

describe('S3ArtifactStore beyond the suite', () => {
  it('lists past one page of results (continuation tokens followed)', async () => {
    const store = new S3ArtifactStore('kiln-artifacts', `paging/${randomUUID()}`, server.settings);
    // More than the 1,000 keys S3 returns a page, as files and as folders.
    const names = Array.from({ length: 1100 }, (_, i) => `many/f${String(i).padStart(4, '0')}.txt`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => store.put(n, 'x')));
    }
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.put(`many/sub${i}/a.txt`, 'y')));
    const listed = await store.list('many');
    expect(listed.filter((e) => !e.isDir)).toHaveLength(1100);
    expect(listed.filter((e) => e.isDir)).toHaveLength(30);
    // Folders first, then files, each by name.
    expect(listed[0]).toEqual({ path: 'many/sub0', isDir: true });
    expect(listed[30]).toEqual({ path: 'many/f0000.txt', isDir: false, size: 1 });
    await store.delete('many');
    expect(await store.list('many')).toEqual([]);
    expect(await store.exists('many')).toBe(false);
  }, 120_000);

  it('is what openArtifactStore gives for s3://, with the endpoint from the environment', async () => {
    const store = openArtifactStore('S3://kiln-artifacts/opened/', { ...server.env });
    expect(store).toBeInstanceOf(S3ArtifactStore);
    expect(store.root).toBe('s3://kiln-artifacts/opened');
    await store.put('a.txt', 'via the opener');
    expect((await store.getBytes('a.txt')).toString()).toBe('via the opener');
    // The same object, seen through a store on the bucket's root.
    const rootStore = new S3ArtifactStore('kiln-artifacts', '', server.settings);
    expect((await rootStore.getBytes('opened/a.txt')).toString()).toBe('via the opener');
    await store.delete('a.txt');
  });

  it('names the store, never the credentials, when the bucket is missing or the server is gone', async () => {
    const missing = new S3ArtifactStore('no-such-bucket', 'p', server.settings);
    await expect(missing.put('a.txt', 'x')).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
      message: expect.stringMatching(/^s3:\/\/no-such-bucket\/p: the bucket 'no-such-bucket' does not exist/),
    });
    const gone = new S3ArtifactStore('kiln-artifacts', 'p', {
      ...server.settings,
      endpoint: 'http://127.0.0.1:1',
    });
    const error = await gone.getBytes('a.txt').catch((e: Error) => e);
    expect(error).toMatchObject({
      code: 'INTERNAL_ERROR',
      message: expect.stringMatching(/^s3:\/\/kiln-artifacts\/p: get 'a.txt' failed/),
    });
    expect((error as Error).message).not.toContain('S3RVER');
  }, 60_000);

  it('refuses a bad endpoint setting with the variable named', () => {
    expect(() => openArtifactStore('s3://b/p', { KILN_S3_ENDPOINT: 'not a url' })).toThrow(
      /the S3 endpoint 'not a url' is not a URL \(KILN_S3_ENDPOINT/,
    );
    expect(() => openArtifactStore('s3://b/p', { KILN_S3_PATH_STYLE: 'maybe' })).toThrow(
      /KILN_S3_PATH_STYLE must be true or false, got 'maybe'/,
    );
  });
});
