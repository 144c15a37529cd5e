import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runArtifactStoreSuite } from './artifact-store.suite.js';
import { LocalArtifactStore } from './local.js';

let dir: string;
let store: LocalArtifactStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-artifacts-'));
  store = new LocalArtifactStore(path.join(dir, 'root'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

async function readAll(s: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('LocalArtifactStore', () => {
  it('streams files in and out and lists folders before files', async () => {
    await store.put('model/weights.bin', Readable.from([Buffer.from('abc'), Buffer.from('def')]));
    await store.put('model/meta/info.json', '{"a":1}');
    await store.put('readme.txt', new Uint8Array([104, 105]));
    expect(await readAll(await store.get('model/weights.bin'))).toBe('abcdef');
    expect((await store.getBytes('readme.txt')).toString()).toBe('hi');
    expect(await store.list('model')).toEqual([
      { path: 'model/meta', isDir: true },
      { path: 'model/weights.bin', isDir: false, size: 6 },
    ]);
    expect((await store.list('')).map((e) => e.path)).toEqual(['model', 'readme.txt']);
    expect(await store.list('missing')).toEqual([]);
  });

  it('rejects traversal, absolute paths and missing files with clear errors', async () => {
    await expect(store.put('../escape.txt', 'x')).rejects.toThrow(/must not contain '\.\.'/);
    await expect(store.put('/etc/passwd', 'x')).rejects.toThrow(/must be relative/);
    await expect(store.put('a\\b', 'x')).rejects.toThrow(/backslash/);
    await expect(store.get('nope.bin')).rejects.toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST' });
    expect(fs.existsSync(path.join(dir, 'escape.txt'))).toBe(false);
  });

  it('refuses to follow a symlink that leads outside the store', async () => {
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside);
    fs.symlinkSync(outside, path.join(store.root, 'link'));
    await expect(store.put('link/evil.txt', 'x')).rejects.toThrow(/outside the artifact store/);
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it('leaves nothing behind when a streamed write fails', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('client went away'));
      },
    });
    await expect(store.put('partial.bin', failing)).rejects.toThrow(/client went away/);
    expect(await store.exists('partial.bin')).toBe(false);
    expect(fs.readdirSync(store.root)).toEqual([]);
  });

  it('deletes files and folders', async () => {
    await store.put('a/b/c.txt', 'x');
    await store.delete('a');
    expect(await store.exists('a/b/c.txt')).toBe(false);
    await store.delete('never-was');
  });
});

runArtifactStoreSuite(
  'local folder',
  async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-artifact-suite-'));
    return {
      store: new LocalArtifactStore(path.join(home, 'root')),
      cleanup: async () => fs.rmSync(home, { recursive: true, force: true }),
    };
  },
  {
    plantEscapeLink(store, linkPath, kind) {
      const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-artifact-outside-'));
      const secret = path.join(outside, 'secret.txt');
      fs.writeFileSync(secret, 'secret');
      const link = path.join(store.root, linkPath);
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.symlinkSync(kind === 'folder' ? outside : secret, link);
      return {
        outsideUnchanged: () =>
          fs.readdirSync(outside).join() === 'secret.txt' && fs.readFileSync(secret, 'utf8') === 'secret',
      };
    },
  },
);
