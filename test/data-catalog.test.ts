import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ArtifactStore, LocalArtifactStore } from '../src/artifacts/index.js';
import { runSql, sqlString, withDuck } from '../src/data/duckdb.js';
import {
  type DataContext,
  datasetParquetPath,
  getDatasetProfile,
  getDatasetVersion,
  headDataset,
  ingestDataset,
  listDatasets,
  listDatasetVersions,
  listValidations,
  loadDataSpec,
  loadExpectations,
  materializeDataset,
  type SplitSpec,
  splitDatasetVersion,
  validateDatasetVersion,
} from '../src/data/index.js';
import { readYamlFile } from '../src/data/spec.js';
import { KilnError } from '../src/errors.js';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-catalog-'));
const sample = path.join(root, 'flights-20k.parquet');
const sampleCsv = path.join(root, 'flights-20k.csv');

beforeAll(async () => {
  await withDuck(async (conn) => {
    const slice = `(SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 20000)`;
    await runSql(conn, `COPY ${slice} TO ${sqlString(sample)} (FORMAT parquet)`, 'fixture');
    await runSql(conn, `COPY ${slice} TO ${sqlString(sampleCsv)} (FORMAT csv, HEADER)`, 'fixture');
  });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Every file under a folder, relative: what an aborted ingest must not leave behind. */
function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) =>
    fs.statSync(path.join(dir, f)).isFile(),
  );
}

/** The catalog suite, run over each metadata store kiln supports. */
function runCatalogSuite(kind: string, makeStore: (n: number) => Promise<Store>) {
  describe(`dataset catalog (${kind})`, () => {
    let n = 0;
    const open = async (): Promise<DataContext & { artifactsDir: string }> => {
      const i = n++;
      const artifactsDir = path.join(root, `${kind}-${i}`, 'artifacts');
      return { store: await makeStore(i), artifacts: new LocalArtifactStore(artifactsDir), artifactsDir };
    };
    const spec = { features: { hour: 'hour(date)', late: 'delay > 15' }, target: 'late' };

    it('ingests a version, finds the same one again for the same bytes, and a new one for new data', async () => {
      const ctx = await open();
      try {
        const first = await ingestDataset(ctx, { file: sample, name: 'flights', spec, createdBy: 'tester' });
        expect(first.created).toBe(true);
        expect(first.version).toMatchObject({
          name: 'flights',
          version: 1,
          rows: 20_000,
          createdBy: 'tester',
          parents: [],
        });
        expect(first.version.schema.columns.map((c) => c.name)).toEqual([
          'date',
          'delay',
          'distance',
          'origin',
          'destination',
          'hour',
          'late',
        ]);
        expect(fs.existsSync(path.join(ctx.artifactsDir, first.version.artifactPath))).toBe(true);
        // Same rows from CSV: same normalised bytes and schema, so the same version.
        const again = await ingestDataset(ctx, { file: sampleCsv, name: 'flights', spec });
        expect(again.created).toBe(false);
        expect(again.version.version).toBe(1);
        expect(again.version.hash).toBe(first.version.hash);
        const other = await ingestDataset(ctx, { file: sample, name: 'flights' });
        expect(other.created).toBe(true);
        expect(other.version.version).toBe(2);
        expect((await listDatasetVersions(ctx, 'flights')).map((v) => v.version)).toEqual([2, 1]);
        expect(await listDatasets(ctx)).toMatchObject([{ name: 'flights', latestVersion: 2, versions: 2 }]);
        expect((await getDatasetVersion(ctx, 'flights@1')).hash).toBe(first.version.hash);
        expect((await getDatasetVersion(ctx, `flights@${first.version.hash.slice(0, 10)}`)).version).toBe(1);
        expect((await getDatasetVersion(ctx, 'flights')).version).toBe(2);
        await expect(getDatasetVersion(ctx, 'flights@9')).rejects.toMatchObject({
          code: 'RESOURCE_DOES_NOT_EXIST',
        });
        const head = await headDataset(ctx, 'flights@1', 2);
        expect(head).toEqual([
          {
            date: '2001-01-01T00:01:00.000Z',
            delay: 33,
            distance: 2176,
            origin: 'LAS',
            destination: 'PHL',
            hour: 0,
            late: true,
          },
          {
            date: '2001-01-01T00:01:00.000Z',
            delay: 19,
            distance: 215,
            origin: 'ATL',
            destination: 'SAV',
            hour: 0,
            late: true,
          },
        ]);
        const profile = await getDatasetProfile(ctx, 'flights@1');
        expect(profile.rows).toBe(20_000);
        const m = await materializeDataset(ctx, 'flights@1', { features: ['hour', 'distance', 'origin'] });
        expect(m.x.nRows).toBe(20_000);
        expect(m.targetName).toBe('late');
        expect(m.classes).toEqual(['false', 'true']);
      } finally {
        await ctx.store.close();
      }
    });

    it('is all-or-nothing: a failed ingest registers nothing and leaves no artifact', async () => {
      const ctx = await open();
      try {
        const bad = path.join(root, `${kind}-bad.csv`);
        fs.writeFileSync(bad, 'a,b\n1,2\n3\n');
        await expect(ingestDataset(ctx, { file: bad, name: 'bad' })).rejects.toThrow(/line 3/);
        await expect(
          ingestDataset(ctx, { file: sample, name: 'x', spec: { features: { h: 'hour(departure)' } } }),
        ).rejects.toThrow(/column 'departure' does not exist/);
        // Failing expectations with requireValid: refused, with the report in the message.
        const err = await ingestDataset(ctx, {
          file: sample,
          name: 'flights',
          expectations: [{ column: 'delay', between: { min: -100, max: 100 } }],
          requireValid: true,
        }).catch((e) => e);
        expect(err).toBeInstanceOf(KilnError);
        expect(err.code).toBe('INVALID_STATE');
        expect(err.message).toMatch(/nothing was registered[\s\S]*FAIL {2}between\(delay\)/);
        expect(await listDatasets(ctx)).toEqual([]);
        expect(filesUnder(ctx.artifactsDir)).toEqual([]);
        // The store refusing the insert (a broken table) also leaves no artifact behind.
        await ctx.store.db.schema.dropTable('dataset_validations').execute();
        await expect(
          ingestDataset(ctx, {
            file: sample,
            name: 'flights',
            expectations: [{ column: 'delay', not_null: true }],
          }),
        ).rejects.toThrow();
        expect(await listDatasets(ctx)).toEqual([]);
        expect(filesUnder(ctx.artifactsDir)).toEqual([]);
      } finally {
        await ctx.store.close();
      }
    });

    it('stores validation reports with the version', async () => {
      const ctx = await open();
      try {
        const ok = await ingestDataset(ctx, {
          file: sample,
          name: 'flights',
          expectations: [{ column: 'origin', regex: '[A-Z]{3}' }],
          requireValid: true,
        });
        expect(ok.validation!.passed).toBe(true);
        expect(ok.version.validation!.passed).toBe(true);
        const report = await validateDatasetVersion(ctx, 'flights@1', [
          { column: 'delay', max_missing_share: 0 },
          { row_count: { min: 50_000 } },
        ]);
        expect(report.passed).toBe(false);
        const stored = await listValidations(ctx, 'flights@1');
        expect(stored).toHaveLength(2);
        expect(stored[0]).toEqual(report);
        expect((await getDatasetVersion(ctx, 'flights@1')).validation!.passed).toBe(false);
      } finally {
        await ctx.store.close();
      }
    });

    it('splits into versions whose lineage names the parent and the split', async () => {
      const ctx = await open();
      try {
        const base = await ingestDataset(ctx, { file: sample, name: 'flights', spec });
        const parts = await splitDatasetVersion(ctx, 'flights@1', {
          method: 'stratified',
          column: 'late',
          fractions: { train: 0.8, test: 0.2 },
          seed: 7,
        });
        expect(Object.keys(parts)).toEqual(['train', 'test']);
        expect(parts.train).toMatchObject({ name: 'flights.train', version: 1 });
        // Stratified: each class is cut at 80/20 on its own, so totals are 80/20 up to rounding.
        expect(parts.train.rows + parts.test.rows).toBe(20_000);
        expect(Math.abs(parts.test.rows - 4_000)).toBeLessThanOrEqual(2);
        expect(parts.test.parents).toEqual([{ name: 'flights', version: 1, hash: base.version.hash }]);
        expect(parts.test.lineage).toMatchObject({
          op: 'split',
          method: 'stratified',
          column: 'late',
          seed: 7,
          part: 'test',
        });
        // Deterministic: the same split again is the same versions.
        const again = await splitDatasetVersion(ctx, 'flights', {
          method: 'stratified',
          column: 'late',
          fractions: { train: 0.8, test: 0.2 },
          seed: 7,
        });
        expect(again.test.hash).toBe(parts.test.hash);
        expect(again.test.version).toBe(1);
        const time = await splitDatasetVersion(
          ctx,
          'flights',
          { method: 'time', column: 'date', cutoff: '2001-01-02' },
          { prefix: 'by-day' },
        );
        expect(time.train.name).toBe('by-day.train');
        expect(time.train.rows + time.test.rows).toBe(20_000);
      } finally {
        await ctx.store.close();
      }
    });
  });
}

describe('examples/flights', () => {
  it('the data spec, expectations and split spec work on a flights sample', async () => {
    const store = await openStore({ db: path.join(root, 'example', 'kiln.db') });
    const ctx = { store, artifacts: new LocalArtifactStore(path.join(root, 'example', 'artifacts')) };
    // A sample across all six months, so the time split has both parts.
    const spread = path.join(root, 'spread.parquet');
    await withDuck((conn) =>
      runSql(
        conn,
        `COPY (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) USING SAMPLE 20000 ROWS (reservoir, 11) ORDER BY date)
           TO ${sqlString(spread)} (FORMAT parquet)`,
        'fixture',
      ),
    );
    try {
      const result = await ingestDataset(ctx, {
        file: spread,
        name: 'flights',
        spec: loadDataSpec('examples/flights/data.yaml'),
        expectations: loadExpectations('examples/flights/expectations.yaml'),
        requireValid: true,
      });
      expect(result.validation!.results.every((r) => r.passed)).toBe(true);
      expect(result.version.schema.columns.map((c) => c.name)).toEqual([
        'date',
        'delay',
        'distance',
        'origin',
        'destination',
        'hour',
        'minute',
        'weekday',
        'day',
        'month',
        'late',
      ]);
      const parts = await splitDatasetVersion(
        ctx,
        'flights',
        readYamlFile('examples/flights/split.yaml') as SplitSpec,
      );
      expect(parts.train.rows + parts.test.rows).toBe(20_000);
    } finally {
      await store.close();
    }
  });
});

describe('stores without local paths (S3-like)', () => {
  it('downloads a version once into the cache, verified against its hash', async () => {
    const store = await openStore({ db: path.join(root, 'remote', 'kiln.db') });
    const local = new LocalArtifactStore(path.join(root, 'remote', 'artifacts'));
    // The same real store, minus localPath: the catalog must stream the Parquet out of it.
    const remote: ArtifactStore = {
      root: local.root,
      put: (p, b) => local.put(p, b),
      get: (p) => local.get(p),
      getBytes: (p) => local.getBytes(p),
      exists: (p) => local.exists(p),
      list: (p) => local.list(p),
      delete: (p) => local.delete(p),
    };
    const tmpDir = path.join(root, 'remote', 'tmp');
    const ctx = { store, artifacts: remote, tmpDir };
    try {
      const { version } = await ingestDataset(ctx, { file: sample, name: 'flights' });
      const cached = await datasetParquetPath(ctx, version);
      expect(cached).toBe(path.join(tmpDir, 'kiln-dataset-cache', `${version.hash}.parquet`));
      expect((await headDataset(ctx, 'flights', 1))[0]).toMatchObject({ origin: 'LAS' });
      // A corrupted download is refused, not used.
      fs.rmSync(cached);
      fs.writeFileSync(local.localPath(version.artifactPath), 'corrupt');
      await expect(datasetParquetPath(ctx, version)).rejects.toThrow(
        /its stored data no longer matches its content hash/,
      );
    } finally {
      await store.close();
    }
  });
});

runCatalogSuite('sqlite', (i) => openStore({ db: path.join(root, `sqlite-${i}`, 'kiln.db') }));

const pgUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!pgUrl)('on Postgres (set KILN_TEST_POSTGRES)', () => {
  runCatalogSuite('postgres', async (i) => {
    const name = `kiln_data_test_${i}`;
    const databaseUri = await freshPostgresDatabase(pgUrl as string, name);
    return openStore({ db: databaseUri });
  });
});
