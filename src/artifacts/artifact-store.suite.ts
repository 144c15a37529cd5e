import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArtifactInfo, ArtifactStore } from './types.js';

/**
 * The behaviours every ArtifactStore keeps (see types.ts). Each implementation's test calls
 * this with a factory for a fresh, empty store: the local folder store now, S3 when it lands.
 * Order of `list` is not checked here (the interface owner's test pins it): entries are.
 */
export interface ArtifactStoreFixture {
  store: ArtifactStore;
  cleanup(): Promise<void>;
}

export interface ArtifactStoreSuiteOptions {
  /**
   * Plants a symlink at `linkPath` inside the store, pointing outside it: at a fresh folder
   * holding `secret.txt` (kind 'folder') or at such a file itself (kind 'file'). The probe
   * tells whether what lies outside is still exactly as planted. Absent for stores without
   * symlinks (S3): those tests show as skipped.
   */
  plantEscapeLink?(
    store: ArtifactStore,
    linkPath: string,
    kind: 'folder' | 'file',
  ): { outsideUnchanged(): boolean };
  /**
   * The memory bound of the large streamed round trip, when the store's client churns more
   * buffers than the local one (LARGE_MEMORY_BOUND otherwise). Still far below the artifact's
   * size: what the test catches is a store that holds the whole artifact.
   */
  largeMemoryBound?: number;
}

/**
 * Bytes of a large artifact, and the memory a streamed put + get may add. Measured on the
 * local store: 35 MiB peak growth streaming; 402 MiB when put buffers the whole body.
 */
const LARGE_BYTES = 192 * 1024 * 1024;
const LARGE_MEMORY_BOUND = 64 * 1024 * 1024;

export function runArtifactStoreSuite(
  name: string,
  makeStore: () => Promise<ArtifactStoreFixture>,
  options: ArtifactStoreSuiteOptions = {},
): void {
  const { plantEscapeLink } = options;
  const memoryBound = options.largeMemoryBound ?? LARGE_MEMORY_BOUND;
  describe(`ArtifactStore (${name})`, () => {
    let fixture: ArtifactStoreFixture;
    let store: ArtifactStore;
    beforeEach(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it('puts from a stream, bytes or a string and gets the same bytes back as a stream', async () => {
      expect(
        await store.put('a/stream.bin', Readable.from([Buffer.from('abc'), Buffer.from('def')])),
      ).toEqual({
        size: 6,
      });
      expect(await store.put('a/bytes.bin', new Uint8Array([0, 255, 7]))).toEqual({ size: 3 });
      expect(await store.put('text.txt', 'héllo')).toEqual({ size: 6 });
      const stream = await store.get('a/stream.bin');
      expect(stream).toBeInstanceOf(Readable);
      expect((await readAll(stream)).toString()).toBe('abcdef');
      expect([...(await store.getBytes('a/bytes.bin'))]).toEqual([0, 255, 7]);
      expect((await store.getBytes('text.txt')).toString()).toBe('héllo');
      expect(await store.exists('a/stream.bin')).toBe(true);
      expect(await store.exists('a/missing.bin')).toBe(false);
      // Paths are canonicalised: './a//stream.bin' is the same object.
      expect((await store.getBytes('./a//stream.bin')).toString()).toBe('abcdef');
      await expect(store.get('nope.bin')).rejects.toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST' });
      await expect(store.getBytes('a/nope.bin')).rejects.toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST' });
    });

    it('takes concurrent writes into the same new nested folder, every one of them', async () => {
      // Several uploads of one folder start at once (the SDK's logArtifacts does): each finds
      // the folders missing and races to create them.
      const names = Array.from({ length: 12 }, (_, i) => `deep/new/folder/f${i}.txt`);
      await Promise.all(names.map((n, i) => store.put(n, `file ${i}`)));
      for (const [i, n] of names.entries()) expect((await store.getBytes(n)).toString()).toBe(`file ${i}`);
      expect(await store.list('deep/new/folder')).toHaveLength(12);
    });

    it('overwrites an object with the whole new content', async () => {
      await store.put('m/model.bin', 'first version, longer');
      expect(await store.put('m/model.bin', 'second')).toEqual({ size: 6 });
      expect((await store.getBytes('m/model.bin')).toString()).toBe('second');
      expect(await store.list('m')).toEqual([{ path: 'm/model.bin', isDir: false, size: 6 }]);
    });

    it('lists the direct children of a prefix with nesting, paths from the root and sizes', async () => {
      await store.put('run/model/model.kiln', '12345');
      await store.put('run/model/meta/signature.json', '{}');
      await store.put('run/metrics.csv', 'a,b');
      await store.put('other/x.txt', 'x');
      expect(sortByPath(await store.list(''))).toEqual([
        { path: 'other', isDir: true },
        { path: 'run', isDir: true },
      ]);
      expect(sortByPath(await store.list('run'))).toEqual([
        { path: 'run/metrics.csv', isDir: false, size: 3 },
        { path: 'run/model', isDir: true },
      ]);
      expect(sortByPath(await store.list('run/model/'))).toEqual([
        { path: 'run/model/meta', isDir: true },
        { path: 'run/model/model.kiln', isDir: false, size: 5 },
      ]);
      expect(await store.list('run/model/meta')).toEqual([
        { path: 'run/model/meta/signature.json', isDir: false, size: 2 },
      ]);
      expect(await store.list('missing')).toEqual([]);
      // A prefix is a folder boundary, not a string prefix: 'ru' is not 'run'.
      expect(await store.list('ru')).toEqual([]);
    });

    it('deletes a file, a whole folder, and nothing when the path does not exist', async () => {
      await store.put('d/keep.txt', 'k');
      await store.put('d/gone.txt', 'g');
      await store.put('d/sub/deep/a.txt', 'a');
      await store.put('d/sub/b.txt', 'b');
      await store.delete('d/gone.txt');
      expect(await store.exists('d/gone.txt')).toBe(false);
      expect((await store.getBytes('d/keep.txt')).toString()).toBe('k');
      await store.delete('d/sub');
      expect(await store.exists('d/sub/deep/a.txt')).toBe(false);
      expect(await store.exists('d/sub/b.txt')).toBe(false);
      expect(await store.list('d')).toEqual([{ path: 'd/keep.txt', isDir: false, size: 1 }]);
      await store.delete('never/was');
      await expect(store.delete('')).rejects.toMatchObject({ code: 'INVALID_PARAMETER_VALUE' });
      expect(await store.exists('d/keep.txt')).toBe(true);
    });

    it('publishes atomically: readers see the old object until the new one is complete', async () => {
      await store.put('pub/model.bin', 'old');
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      let firstChunkSent!: () => void;
      const started = new Promise<void>((r) => {
        firstChunkSent = r;
      });
      const slow = Readable.from(
        (async function* () {
          yield Buffer.from('new-');
          firstChunkSent();
          await held;
          yield Buffer.from('content');
        })(),
      );
      const writing = store.put('pub/model.bin', slow);
      const writingNew = store.put('pub/fresh.bin', Readable.from(['only ', 'later']));
      await started;
      // Mid-write: the old object whole, no partial or temporary entry visible.
      expect((await store.getBytes('pub/model.bin')).toString()).toBe('old');
      const during = await store.list('pub');
      expect(during.every((e) => e.path === 'pub/model.bin' || e.path === 'pub/fresh.bin')).toBe(true);
      release();
      await writing;
      await writingNew;
      expect((await store.getBytes('pub/model.bin')).toString()).toBe('new-content');
      expect(sortByPath(await store.list('pub'))).toEqual([
        { path: 'pub/fresh.bin', isDir: false, size: 10 },
        { path: 'pub/model.bin', isDir: false, size: 11 },
      ]);
    });

    it('leaves the old object and no trace of the new one when a streamed write fails', async () => {
      await store.put('f/model.bin', 'old');
      const failingAfterOneChunk = () =>
        Readable.from(
          (async function* () {
            yield Buffer.from('partial');
            throw new Error('client went away');
          })(),
        );
      await expect(store.put('f/model.bin', failingAfterOneChunk())).rejects.toThrow(/client went away/);
      await expect(store.put('f/new.bin', failingAfterOneChunk())).rejects.toThrow(/client went away/);
      expect((await store.getBytes('f/model.bin')).toString()).toBe('old');
      expect(await store.exists('f/new.bin')).toBe(false);
      expect(await store.list('f')).toEqual([{ path: 'f/model.bin', isDir: false, size: 3 }]);
    });

    it.each([
      ['..', /must not contain '\.\.'/],
      ['../escape.txt', /must not contain '\.\.'/],
      ['a/../../escape.txt', /must not contain '\.\.'/],
      ['a/b/../c.txt', /must not contain '\.\.'/],
      ['a\\..\\b.txt', /backslash/],
      ['a\u0000b', /control character/],
    ])('refuses the traversal %j on every operation', async (bad, message) => {
      await store.put('a/b/c.txt', 'inside');
      await expect(store.put(bad, 'x')).rejects.toThrow(message);
      await expect(store.get(bad)).rejects.toThrow(message);
      await expect(store.getBytes(bad)).rejects.toThrow(message);
      await expect(store.list(bad)).rejects.toThrow(message);
      await expect(store.delete(bad)).rejects.toThrow(message);
      await expect(store.put(bad, 'x')).rejects.toMatchObject({ code: 'INVALID_PARAMETER_VALUE' });
      expect(await store.exists(bad)).toBe(false);
      expect((await store.getBytes('a/b/c.txt')).toString()).toBe('inside');
    });

    it.each([['/etc/passwd'], ['/'], ['C:/Windows/win.ini'], ['c:relative']])(
      'refuses the absolute path %j on every operation',
      async (bad) => {
        await expect(store.put(bad, 'x')).rejects.toMatchObject({
          code: 'INVALID_PARAMETER_VALUE',
          message: expect.stringMatching(/must be relative/),
        });
        await expect(store.get(bad)).rejects.toThrow(/must be relative/);
        await expect(store.getBytes(bad)).rejects.toThrow(/must be relative/);
        await expect(store.list(bad)).rejects.toThrow(/must be relative/);
        await expect(store.delete(bad)).rejects.toThrow(/must be relative/);
        expect(await store.exists(bad)).toBe(false);
      },
    );

    it.skipIf(!plantEscapeLink)('refuses every operation through a symlink to a folder outside', async () => {
      const probe = plantEscapeLink!(store, 'link', 'folder');
      await expect(store.put('link/evil.txt', 'x')).rejects.toThrow(/outside the artifact store/);
      await expect(store.put('link/sub/evil.txt', 'x')).rejects.toThrow(/outside the artifact store/);
      await expect(store.put('link/secret.txt', 'x')).rejects.toThrow(/outside the artifact store/);
      await expect(store.get('link/secret.txt')).rejects.toThrow(/outside the artifact store/);
      await expect(store.getBytes('link/secret.txt')).rejects.toThrow(/outside the artifact store/);
      await expect(store.list('link')).rejects.toThrow(/outside the artifact store/);
      await expect(store.delete('link/secret.txt')).rejects.toThrow(/outside the artifact store/);
      await expect(store.delete('link')).rejects.toThrow(/outside the artifact store/);
      expect(await store.exists('link/secret.txt')).toBe(false);
      expect(probe.outsideUnchanged()).toBe(true);
    });

    it.skipIf(!plantEscapeLink)('refuses every operation through a symlink to a file outside', async () => {
      const probe = plantEscapeLink!(store, 'a/secret-link.txt', 'file');
      await expect(store.get('a/secret-link.txt')).rejects.toThrow(/outside the artifact store/);
      await expect(store.getBytes('a/secret-link.txt')).rejects.toThrow(/outside the artifact store/);
      await expect(store.put('a/secret-link.txt', 'overwritten')).rejects.toThrow(
        /outside the artifact store/,
      );
      await expect(store.delete('a/secret-link.txt')).rejects.toThrow(/outside the artifact store/);
      expect(await store.exists('a/secret-link.txt')).toBe(false);
      expect(probe.outsideUnchanged()).toBe(true);
    });

    it(`streams a ${LARGE_BYTES >> 20} MiB artifact in and out within ${memoryBound >> 20} MiB of memory`, async () => {
      const chunk = 1 << 20;
      const sample = new MemorySampler();
      const written = createHash('sha256');
      const source = Readable.from(
        (async function* () {
          for (let i = 0; i < LARGE_BYTES / chunk; i++) {
            const block = Buffer.alloc(chunk, i % 251);
            block.writeUInt32LE(i, 0);
            written.update(block);
            sample.take();
            yield block;
          }
        })(),
      );
      expect(await store.put('big/blob.bin', source)).toEqual({ size: LARGE_BYTES });
      const read = createHash('sha256');
      let bytes = 0;
      for await (const part of await store.get('big/blob.bin')) {
        read.update(part as Buffer);
        bytes += (part as Buffer).length;
        sample.take();
      }
      expect(bytes).toBe(LARGE_BYTES);
      expect(read.digest('hex')).toBe(written.digest('hex'));
      expect(await store.list('big')).toEqual([{ path: 'big/blob.bin', isDir: false, size: LARGE_BYTES }]);
      // Buffers live outside the V8 heap, so arrayBuffers is what a whole-file read would grow.
      expect(sample.peakGrowth()).toBeLessThan(memoryBound);
    }, 120_000);
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function sortByPath(entries: ArtifactInfo[]): ArtifactInfo[] {
  return [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Peak growth of memory held in ArrayBuffers (where Node keeps Buffer bytes) since creation. */
class MemorySampler {
  private readonly base = process.memoryUsage().arrayBuffers;
  private peak = this.base;
  take(): void {
    const now = process.memoryUsage().arrayBuffers;
    if (now > this.peak) this.peak = now;
  }
  peakGrowth(): number {
    return this.peak - this.base;
  }
}
