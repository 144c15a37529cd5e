import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { resolveInDataRoots, stageInsideDataRoots } from './data-roots.js';
import { prepareDataset } from './prepare.js';

/**
 * Issue 11: a path checked against the data roots must be the file that is read. The swap a
 * hostile user with write access inside a root would race (check → symlink repointed → read)
 * is done here in two deterministic steps: the check passes, the link is repointed, staging
 * must refuse.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-data-roots-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const root = path.join(dir, 'root');
const outside = path.join(dir, 'outside');
fs.mkdirSync(root);
fs.mkdirSync(outside);
fs.writeFileSync(path.join(root, 'ok.csv'), 'a,b\n1,2\n3,4\n');
fs.writeFileSync(path.join(outside, 'secret.csv'), 'user,password\nroot,hunter2\n');

describe('stageInsideDataRoots', () => {
  it('copies a checked file through its descriptor, keeping its base name', async () => {
    const stage = fs.mkdtempSync(path.join(dir, 'stage-'));
    const file = resolveInDataRoots('ok.csv', [root]);
    const [copy] = await stageInsideDataRoots([file], 'ok.csv', [root], stage);
    expect(path.basename(copy!)).toBe('ok.csv');
    expect(fs.readFileSync(copy!, 'utf8')).toBe('a,b\n1,2\n3,4\n');
  });

  it('refuses a symlink repointed outside the roots after the path was checked', async () => {
    const link = path.join(root, 'swap.csv');
    fs.symlinkSync(path.join(root, 'ok.csv'), link);
    const checked = resolveInDataRoots('swap.csv', [root]);
    fs.unlinkSync(link);
    fs.symlinkSync(path.join(outside, 'secret.csv'), link);
    const stage = fs.mkdtempSync(path.join(dir, 'stage-'));
    const e = await stageInsideDataRoots([checked], 'swap.csv', [root], stage).catch((x) => x);
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).code).toBe('PERMISSION_DENIED');
    expect((e as KilnError).message).toContain("'swap.csv' cannot be read");
    expect((e as KilnError).message).not.toContain(outside);
    expect(fs.readdirSync(stage)).toEqual([]);
  });

  it('prepareDataset reads the staged copy, records and names the original, and leaves no copy behind', async () => {
    const bad = path.join(root, 'bad.csv');
    fs.writeFileSync(bad, 'a,b\n1,2\n3\n');
    const out = path.join(dir, 'out', 'data.parquet');
    fs.mkdirSync(path.dirname(out));
    const ok = await prepareDataset(path.join(root, 'ok.csv'), { outPath: out, confineTo: [root] });
    expect(ok.rows).toBe(2);
    expect(ok.source.files).toEqual([path.join(fs.realpathSync(root), 'ok.csv')]);
    const e = await prepareDataset(bad, { outPath: out, confineTo: [root] }).catch((x) => x);
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).message).toContain(bad);
    expect((e as KilnError).message).not.toContain('source-');
    expect(fs.readdirSync(path.dirname(out)).filter((n) => n.startsWith('source-'))).toEqual([]);
  });
});
