import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AREA_NAMESPACE_ROOT, type ArtifactStore, areaArtifactPath } from '../artifacts/index.js';
import { KilnError } from '../errors.js';
import type { Store } from '../store/index.js';
import { readRows, sqlString, toJsonRow, withDuck } from './duckdb.js';
import { type Expectation, formatReport, type ValidationReport, validateParquet } from './expectations.js';
import { type MatrixRequest, materializeMatrix } from './matrix.js';
import { contentHash, prepareDataset } from './prepare.js';
import type { DatasetProfile, ProfileOptions } from './profile.js';
import { profileParquet } from './profile-dataset.js';
import type { DatasetSchema } from './schema.js';
import { makeScratchDir } from './scratch.js';
import type { DataSpec } from './spec.js';
import { parseSplitSpec, type SplitSpec, splitParquet } from './splits.js';
import type { LabelledMatrix } from './types.js';

/** What the catalog needs: the metadata store and the artifact store. */
export interface DataContext {
  store: Store;
  artifacts: ArtifactStore;
  /**
   * Scratch folder for files being prepared: `$KILN_HOME/scratch` (config.scratch); folders left
   * by dead processes are swept at first use. Default: a `kiln-scratch` folder in the OS temp
   * folder, for callers without a home.
   */
  tmpDir?: string;
}

export interface DatasetVersionRef {
  name: string;
  /** A version number, or a hash (prefix of at least 8 hex digits); latest when absent. */
  version?: number | string;
}

export interface DatasetVersion {
  name: string;
  version: number;
  hash: string;
  rows: number;
  sizeBytes: number;
  schema: DatasetSchema;
  source: Record<string, unknown>;
  spec: DataSpec | null;
  lineage: Record<string, unknown> | null;
  parents: { name: string; version: number; hash: string }[];
  artifactPath: string;
  profilePath: string | null;
  createdBy: string;
  creationTime: number;
  /** The latest stored validation, if any. */
  validation: { passed: boolean; checkedAt: string } | null;
}

export interface DatasetSummary {
  name: string;
  description: string | null;
  latestVersion: number;
  versions: number;
  rows: number;
  lastUpdatedTime: number;
}

export type ProgressStep = 'read' | 'validate' | 'profile' | 'store' | 'split';
export type OnProgress = (step: ProgressStep, done: boolean) => void;

/**
 * The dataset catalog as its users (the CLI, training, the SDK) see it: the metadata store
 * and artifact store of a workspace (sql-catalog.ts, which calls the functions of this file),
 * or a kiln server's `/api/kiln/datasets` (rest-catalog.ts). Both answer with the same
 * shapes and the same KilnError codes; a reference is `name`, `name@3` or `name@<hash>`.
 */
export interface DatasetCatalog {
  /** Where the catalog lives, for messages (a password is elided). */
  readonly location: string;
  ingest(options: IngestOptions): Promise<IngestResult>;
  list(): Promise<DatasetSummary[]>;
  listVersions(name: string): Promise<DatasetVersion[]>;
  getVersion(ref: DatasetVersionRef | string): Promise<DatasetVersion>;
  /** The first `n` rows (at most 10 000) as JSON-ready objects. */
  head(ref: DatasetVersionRef | string, n?: number): Promise<Record<string, unknown>[]>;
  /** The stored profile (computed and stored when missing). */
  profile(ref: DatasetVersionRef | string): Promise<DatasetProfile>;
  validate(ref: DatasetVersionRef | string, expectations: Expectation[]): Promise<ValidationReport>;
  listValidations(ref: DatasetVersionRef | string): Promise<ValidationReport[]>;
  split(
    ref: DatasetVersionRef | string,
    spec: SplitSpec,
    options?: SplitOptions,
  ): Promise<Record<string, DatasetVersion>>;
  /**
   * A local Parquet file of the version for DuckDB to read: the stored file itself when the
   * artifact store is a local folder, else a download into a cache, checked against the
   * version's content hash before it is used.
   */
  parquetPath(version: DatasetVersion): Promise<string>;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;

export function checkDatasetName(name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `dataset name '${name}' is not valid: use letters, digits, '_', '.', '-' (starting with a letter or digit), at most 256`,
    );
  }
}

/** Parses `name`, `name@3` or `name@<hash prefix>`. */
export function parseDatasetRef(text: string): DatasetVersionRef {
  const at = text.lastIndexOf('@');
  if (at < 0) return { name: text };
  const name = text.slice(0, at);
  const v = text.slice(at + 1);
  if (/^\d+$/.test(v)) return { name, version: Number(v) };
  if (/^[0-9a-f]{8,64}$/i.test(v)) return { name, version: v.toLowerCase() };
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `'${text}': the part after @ must be a version number or a hash prefix`,
  );
}

function creator(): string {
  try {
    return process.env.KILN_USER ?? process.env.USER ?? os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

function scratch(ctx: DataContext): string {
  return makeScratchDir(ctx.tmpDir ?? path.join(os.tmpdir(), 'kiln-scratch'));
}

export interface IngestOptions {
  file: string;
  name: string;
  spec?: DataSpec;
  /** Names the spec file in errors; relative source paths in the spec are not used by ingest. */
  specPlace?: string;
  expectations?: Expectation[];
  /** Refuse to register the version unless every expectation passes. */
  requireValid?: boolean;
  description?: string;
  createdBy?: string;
  profile?: ProfileOptions;
  onProgress?: OnProgress;
  /** Only files inside these folders may be read (a path that came over HTTP; see data-roots.ts). */
  confineTo?: string[];
  /** Recorded as the version's source instead of the file path (an upload's name). */
  sourceLabel?: string;
}

export interface IngestResult {
  version: DatasetVersion;
  /** False when the same data + schema was already a version of this dataset. */
  created: boolean;
  validation?: ValidationReport;
  profile: DatasetProfile;
}

/**
 * Reads, normalises, (optionally) validates, profiles and registers a dataset version.
 * All-or-nothing: on any error nothing is registered and no artifact written by this call is
 * left behind.
 */
export async function ingestDataset(ctx: DataContext, options: IngestOptions): Promise<IngestResult> {
  checkDatasetName(options.name);
  const progress = options.onProgress ?? (() => {});
  const dir = scratch(ctx);
  try {
    progress('read', false);
    const prepared = await prepareDataset(options.file, {
      spec: options.spec,
      specPlace: options.specPlace,
      outPath: path.join(dir, 'data.parquet'),
      confineTo: options.confineTo,
    });
    if (options.sourceLabel !== undefined) {
      prepared.source = { ...prepared.source, pattern: options.sourceLabel, files: [options.sourceLabel] };
    }
    progress('read', true);
    let validation: ValidationReport | undefined;
    if (options.expectations) {
      progress('validate', false);
      validation = await validateParquet(prepared.parquetPath, prepared.schema, options.expectations);
      progress('validate', true);
      if (options.requireValid && !validation.passed) {
        throw new KilnError(
          'INVALID_STATE',
          `${options.file}: expectations failed, nothing was registered\n${formatReport(validation)}`,
        );
      }
    }
    progress('profile', false);
    const profile = await profileParquet(prepared.parquetPath, prepared.schema, options.profile);
    progress('profile', true);
    progress('store', false);
    const registered = await registerVersion(ctx, {
      name: options.name,
      description: options.description,
      parquetPath: prepared.parquetPath,
      hash: prepared.hash,
      rows: prepared.rows,
      schema: prepared.schema,
      source: prepared.source,
      spec: options.spec ?? null,
      lineage: { op: 'ingest', source: prepared.source.pattern },
      parents: [],
      profile,
      createdBy: options.createdBy ?? creator(),
      validation:
        validation && options.expectations
          ? { report: validation, expectations: options.expectations }
          : undefined,
    });
    progress('store', true);
    return { ...registered, ...(validation ? { validation } : {}), profile };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RegisterInput {
  name: string;
  description?: string;
  parquetPath: string;
  hash: string;
  rows: number;
  schema: DatasetSchema;
  source: Record<string, unknown>;
  spec: DataSpec | null;
  lineage: Record<string, unknown>;
  parents: number[];
  profile: DatasetProfile;
  createdBy: string;
  validation?: { report: ValidationReport; expectations: Expectation[] };
}

async function registerVersion(
  ctx: DataContext,
  input: RegisterInput,
): Promise<{ version: DatasetVersion; created: boolean }> {
  await catalogReady(ctx);
  const { db } = ctx.store;
  const existing = await db
    .selectFrom('dataset_versions')
    .select('version_id')
    .where('name', '=', input.name)
    .where('hash', '=', input.hash)
    .executeTakeFirst();
  if (existing) {
    if (input.validation)
      await storeValidation(ctx, existing.version_id, input.validation.expectations, input.validation.report);
    return { version: await versionById(ctx, existing.version_id), created: false };
  }
  const dataPath = areaArtifactPath('datasets', input.name, input.hash, 'data.parquet');
  const profilePath = areaArtifactPath('datasets', input.name, input.hash, 'profile.json');
  const written: string[] = [];
  try {
    // A file already at the content address is adopted only if its bytes still hash to it (a
    // process killed between writing and registering left it; anything else is overwritten).
    if (!(await storedFileMatches(ctx, dataPath, input.schema, input.hash))) {
      await ctx.artifacts.put(dataPath, createReadStream(input.parquetPath));
      written.push(dataPath);
    }
    if (!(await ctx.artifacts.exists(profilePath))) {
      await ctx.artifacts.put(profilePath, JSON.stringify(input.profile));
      written.push(profilePath);
    }
    const sizeBytes = statSync(input.parquetPath).size;
    const now = Date.now();
    const versionId = await db.transaction().execute(async (trx) => {
      const ds = await trx
        .selectFrom('datasets')
        .select('name')
        .where('name', '=', input.name)
        .executeTakeFirst();
      if (ds) {
        await trx
          .updateTable('datasets')
          .set({ last_updated_time: now })
          .where('name', '=', input.name)
          .execute();
      } else {
        await trx
          .insertInto('datasets')
          .values({
            name: input.name,
            description: input.description ?? null,
            creation_time: now,
            last_updated_time: now,
          })
          .execute();
      }
      const { max } = await trx
        .selectFrom('dataset_versions')
        .select((eb) => eb.fn.max('version').as('max'))
        .where('name', '=', input.name)
        .executeTakeFirstOrThrow();
      const inserted = await trx
        .insertInto('dataset_versions')
        .values({
          name: input.name,
          version: Number(max ?? 0) + 1,
          hash: input.hash,
          rows: input.rows,
          size_bytes: sizeBytes,
          schema_json: JSON.stringify(input.schema),
          source_json: JSON.stringify(input.source),
          spec_json: input.spec ? JSON.stringify(input.spec) : null,
          lineage_json: JSON.stringify(input.lineage),
          artifact_path: dataPath,
          profile_path: profilePath,
          created_by: input.createdBy,
          creation_time: now,
        })
        .returning('version_id')
        .executeTakeFirstOrThrow();
      for (const parent of input.parents) {
        await trx
          .insertInto('dataset_version_parents')
          .values({ version_id: inserted.version_id, parent_version_id: parent })
          .execute();
      }
      if (input.validation) {
        await trx
          .insertInto('dataset_validations')
          .values({
            version_id: inserted.version_id,
            passed: input.validation.report.passed ? 1 : 0,
            expectations_json: JSON.stringify(input.validation.expectations),
            report_json: JSON.stringify(input.validation.report),
            creation_time: now,
          })
          .execute();
      }
      return inserted.version_id;
    });
    return { version: await versionById(ctx, versionId), created: true };
  } catch (e) {
    // Another process registered the same content between our lookup and insert: its files are
    // the same bytes as ours, so they stay.
    const raced = await db
      .selectFrom('dataset_versions')
      .select('version_id')
      .where('name', '=', input.name)
      .where('hash', '=', input.hash)
      .executeTakeFirst()
      .catch(() => undefined);
    if (raced) return { version: await versionById(ctx, raced.version_id), created: false };
    for (const artifact of written) await ctx.artifacts.delete(artifact).catch(() => {});
    throw e;
  }
}

async function storeValidation(
  ctx: DataContext,
  versionId: number,
  expectations: Expectation[],
  report: ValidationReport,
) {
  await ctx.store.db
    .insertInto('dataset_validations')
    .values({
      version_id: versionId,
      passed: report.passed ? 1 : 0,
      expectations_json: JSON.stringify(expectations),
      report_json: JSON.stringify(report),
      creation_time: Date.now(),
    })
    .execute();
}

async function versionById(ctx: DataContext, versionId: number): Promise<DatasetVersion> {
  const { db } = ctx.store;
  const row = await db
    .selectFrom('dataset_versions')
    .selectAll()
    .where('version_id', '=', versionId)
    .executeTakeFirstOrThrow();
  const parents = await db
    .selectFrom('dataset_version_parents as p')
    .innerJoin('dataset_versions as v', 'v.version_id', 'p.parent_version_id')
    .select(['v.name', 'v.version', 'v.hash'])
    .where('p.version_id', '=', versionId)
    .orderBy('v.name')
    .orderBy('v.version')
    .execute();
  const validation = await db
    .selectFrom('dataset_validations')
    .select(['passed', 'creation_time'])
    .where('version_id', '=', versionId)
    .orderBy('creation_time', 'desc')
    .orderBy('validation_id', 'desc')
    .executeTakeFirst();
  return {
    name: row.name,
    version: Number(row.version),
    hash: row.hash,
    rows: Number(row.rows),
    sizeBytes: Number(row.size_bytes),
    schema: JSON.parse(row.schema_json),
    source: JSON.parse(row.source_json),
    spec: row.spec_json ? JSON.parse(row.spec_json) : null,
    lineage: row.lineage_json ? JSON.parse(row.lineage_json) : null,
    parents: parents.map((p) => ({ name: p.name, version: Number(p.version), hash: p.hash })),
    artifactPath: row.artifact_path,
    profilePath: row.profile_path,
    createdBy: row.created_by,
    creationTime: Number(row.creation_time),
    validation: validation
      ? {
          passed: Number(validation.passed) === 1,
          checkedAt: new Date(Number(validation.creation_time)).toISOString(),
        }
      : null,
  };
}

export async function getDatasetVersion(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
): Promise<DatasetVersion> {
  await catalogReady(ctx);
  const r = typeof ref === 'string' ? parseDatasetRef(ref) : ref;
  const label = `${r.name}${r.version === undefined ? '' : `@${r.version}`}`;
  let q = ctx.store.db
    .selectFrom('dataset_versions')
    .select(['version_id', 'hash'])
    .where('name', '=', r.name);
  if (typeof r.version === 'number') q = q.where('version', '=', r.version);
  else if (typeof r.version === 'string') q = q.where('hash', 'like', `${r.version}%`);
  const rows = await q.orderBy('version', 'desc').limit(2).execute();
  if (rows.length === 0)
    throw new KilnError('RESOURCE_DOES_NOT_EXIST', `dataset version '${label}' does not exist`);
  if (typeof r.version === 'string' && rows.length > 1) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `hash prefix '${r.version}' matches several versions of '${r.name}'; give more digits`,
    );
  }
  return versionById(ctx, rows[0].version_id);
}

export async function listDatasets(ctx: DataContext): Promise<DatasetSummary[]> {
  await catalogReady(ctx);
  const { db } = ctx.store;
  const datasets = await db.selectFrom('datasets').selectAll().orderBy('name').execute();
  const out: DatasetSummary[] = [];
  for (const d of datasets) {
    const versions = await db
      .selectFrom('dataset_versions')
      .select(['version', 'rows'])
      .where('name', '=', d.name)
      .orderBy('version', 'desc')
      .execute();
    if (versions.length === 0) continue;
    out.push({
      name: d.name,
      description: d.description,
      latestVersion: Number(versions[0].version),
      versions: versions.length,
      rows: Number(versions[0].rows),
      lastUpdatedTime: Number(d.last_updated_time),
    });
  }
  return out;
}

export async function listDatasetVersions(ctx: DataContext, name: string): Promise<DatasetVersion[]> {
  await catalogReady(ctx);
  const rows = await ctx.store.db
    .selectFrom('dataset_versions')
    .select('version_id')
    .where('name', '=', name)
    .orderBy('version', 'desc')
    .execute();
  if (rows.length === 0) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `dataset '${name}' does not exist`);
  return Promise.all(rows.map((r) => versionById(ctx, r.version_id)));
}

/**
 * A local file path of the version's Parquet, for DuckDB: the artifact itself for local stores,
 * else a cached download. Either way its bytes are checked against the version's content hash
 * before anything reads them (for a local file, again whenever its size, inode or times change),
 * so data changed behind the catalog's back is refused, not served under the old hash.
 */
export async function datasetParquetPath(ctx: DataContext, version: DatasetVersion): Promise<string> {
  await catalogReady(ctx);
  const label = `dataset '${version.name}@${version.version}'`;
  if (ctx.artifacts.localPath) {
    const file = ctx.artifacts.localPath(version.artifactPath);
    let stamp: string;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new Error('not a file');
      stamp = `${st.size}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch {
      throw missingData(label, version);
    }
    if (verifiedFiles.get(file) !== `${stamp}:${version.hash}`) {
      if ((await contentHash(version.schema, file)) !== version.hash) throw tamperedData(label, version);
      verifiedFiles.set(file, `${stamp}:${version.hash}`);
    }
    return file;
  }
  if (!(await ctx.artifacts.exists(version.artifactPath))) throw missingData(label, version);
  return cachedDatasetParquet(ctx.tmpDir ?? path.join(os.tmpdir(), 'kiln-scratch'), version, () =>
    ctx.artifacts.get(version.artifactPath),
  );
}

/**
 * The version's Parquet in `<baseDir>/kiln-dataset-cache/<hash>.parquet`, fetched with `open`
 * when absent and kept only if its content hash is the version's: a remote store (S3, a kiln
 * server) cannot hand DuckDB a file that is not the data the version names.
 */
export async function cachedDatasetParquet(
  baseDir: string,
  version: DatasetVersion,
  open: () => Promise<NodeJS.ReadableStream>,
): Promise<string> {
  const cacheDir = path.join(baseDir, 'kiln-dataset-cache');
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `${version.hash}.parquet`);
  try {
    statSync(file);
    return file;
  } catch {
    const partial = `${file}.${process.pid}.part`;
    try {
      await pipeline(await open(), createWriteStream(partial));
    } catch (e) {
      rmSync(partial, { force: true });
      throw e;
    }
    if ((await contentHash(version.schema, partial)) !== version.hash) {
      rmSync(partial, { force: true });
      throw tamperedData(`dataset '${version.name}@${version.version}'`, version);
    }
    renameSync(partial, file);
    return file;
  }
}

/** Local Parquet files already hashed by this process: path → 'size:ino:mtime:ctime:hash'. */
const verifiedFiles = new Map<string, string>();

function missingData(label: string, version: DatasetVersion): KilnError {
  return new KilnError(
    'RESOURCE_DOES_NOT_EXIST',
    `${label}: its data file is missing from the artifact store (content hash ${version.hash.slice(0, 12)}); register the data again`,
  );
}

function tamperedData(label: string, version: DatasetVersion): KilnError {
  return new KilnError(
    'INVALID_STATE',
    `${label}: its stored data no longer matches its content hash ${version.hash.slice(0, 12)} (changed after it was registered); refusing to read it`,
  );
}

/** Whether `artifactPath` exists and holds Parquet whose content hash is `hash`. */
async function storedFileMatches(
  ctx: DataContext,
  artifactPath: string,
  schema: DatasetSchema,
  hash: string,
): Promise<boolean> {
  if (!(await ctx.artifacts.exists(artifactPath))) return false;
  if (ctx.artifacts.localPath) {
    return (await contentHash(schema, ctx.artifacts.localPath(artifactPath)).catch(() => '')) === hash;
  }
  const dir = scratch(ctx);
  try {
    const copy = path.join(dir, 'adopt.parquet');
    await pipeline(await ctx.artifacts.get(artifactPath), createWriteStream(copy));
    return (await contentHash(schema, copy)) === hash;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Once per store and process, before the catalog is used: dataset files written before areas
 * had their own namespace (`datasets/<name>/<hash>/…`, reachable through the artifact proxy)
 * move to `_kiln/datasets/…` and their rows follow; writes a dead process abandoned there are
 * removed. Moving copies, checks the content hash, updates the row, then deletes the old file,
 * so a crash at any point leaves a readable version; a file that fails its hash is not moved
 * (reading the version then says it no longer matches).
 */
export function catalogReady(ctx: DataContext): Promise<void> {
  let ready = readyStores.get(ctx.store);
  if (!ready) {
    ready = prepareCatalog(ctx).catch((e) => {
      readyStores.delete(ctx.store);
      throw e;
    });
    readyStores.set(ctx.store, ready);
  }
  return ready;
}

const readyStores = new WeakMap<Store, Promise<void>>();

async function prepareCatalog(ctx: DataContext): Promise<void> {
  const { db } = ctx.store;
  const legacy = await db
    .selectFrom('dataset_versions')
    .select(['version_id', 'name', 'version', 'hash', 'schema_json', 'artifact_path', 'profile_path'])
    .where('artifact_path', 'like', 'datasets/%')
    .execute();
  for (const row of legacy) {
    const newData = `${AREA_NAMESPACE_ROOT}/${row.artifact_path}`;
    const newProfile = row.profile_path?.startsWith('datasets/')
      ? `${AREA_NAMESPACE_ROOT}/${row.profile_path}`
      : row.profile_path;
    const schema = JSON.parse(row.schema_json) as DatasetSchema;
    if (!(await storedFileMatches(ctx, newData, schema, row.hash))) {
      if (!(await ctx.artifacts.exists(row.artifact_path))) {
        // Nothing to move: the row follows, and reading the version says the data is missing.
      } else {
        await ctx.artifacts.put(newData, await ctx.artifacts.get(row.artifact_path));
        if (!(await storedFileMatches(ctx, newData, schema, row.hash))) {
          await ctx.artifacts.delete(newData);
          continue; // tampered before the move: left where it is, refused when read
        }
      }
    }
    if (
      row.profile_path &&
      newProfile &&
      row.profile_path !== newProfile &&
      (await ctx.artifacts.exists(row.profile_path))
    ) {
      await ctx.artifacts.put(newProfile, await ctx.artifacts.get(row.profile_path));
    }
    await db
      .updateTable('dataset_versions')
      .set({ artifact_path: newData, profile_path: newProfile })
      .where('version_id', '=', row.version_id)
      .execute();
    await ctx.artifacts.delete(row.artifact_path.replace(/\/data\.parquet$/, '')).catch(() => {});
  }
  await ctx.artifacts.sweepAbandonedWrites?.(areaArtifactPath('datasets'));
}

/** The first `n` rows as JSON-ready objects (dates as ISO strings, big integers as numbers). */
export async function headDataset(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
  n = 10,
): Promise<Record<string, unknown>[]> {
  const version = await getDatasetVersion(ctx, ref);
  const file = await datasetParquetPath(ctx, version);
  const limit = Math.max(0, Math.min(Math.floor(n), 10_000));
  return withDuck(async (conn) => {
    const rows = await readRows(
      conn,
      `SELECT * FROM read_parquet(${sqlString(file)}) LIMIT ${limit}`,
      version.name,
    );
    return rows.map(toJsonRow);
  });
}

/** The stored profile of a version (computed and stored if missing). */
export async function getDatasetProfile(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
): Promise<DatasetProfile> {
  const version = await getDatasetVersion(ctx, ref);
  if (version.profilePath && (await ctx.artifacts.exists(version.profilePath))) {
    return JSON.parse((await ctx.artifacts.getBytes(version.profilePath)).toString('utf8'));
  }
  const profile = await profileParquet(await datasetParquetPath(ctx, version), version.schema);
  const profilePath = areaArtifactPath('datasets', version.name, version.hash, 'profile.json');
  await ctx.artifacts.put(profilePath, JSON.stringify(profile));
  await ctx.store.db
    .updateTable('dataset_versions')
    .set({ profile_path: profilePath })
    .where('name', '=', version.name)
    .where('version', '=', version.version)
    .execute();
  return profile;
}

/** Profiles a version with non-default options (not stored). */
export async function profileDatasetVersion(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
  options?: ProfileOptions,
): Promise<DatasetProfile> {
  if (!options) return getDatasetProfile(ctx, ref);
  const version = await getDatasetVersion(ctx, ref);
  return profileParquet(await datasetParquetPath(ctx, version), version.schema, options);
}

/** Runs expectations on a stored version and stores the report with it. */
export async function validateDatasetVersion(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
  expectations: Expectation[],
): Promise<ValidationReport> {
  const version = await getDatasetVersion(ctx, ref);
  const report = await validateParquet(await datasetParquetPath(ctx, version), version.schema, expectations);
  const row = await ctx.store.db
    .selectFrom('dataset_versions')
    .select('version_id')
    .where('name', '=', version.name)
    .where('version', '=', version.version)
    .executeTakeFirstOrThrow();
  await storeValidation(ctx, row.version_id, expectations, report);
  return report;
}

/** The stored validation reports of a version, newest first. */
export async function listValidations(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
): Promise<ValidationReport[]> {
  const version = await getDatasetVersion(ctx, ref);
  const rows = await ctx.store.db
    .selectFrom('dataset_validations as d')
    .innerJoin('dataset_versions as v', 'v.version_id', 'd.version_id')
    .select(['d.report_json'])
    .where('v.name', '=', version.name)
    .where('v.version', '=', version.version)
    .orderBy('d.creation_time', 'desc')
    .orderBy('d.validation_id', 'desc')
    .execute();
  return rows.map((r) => JSON.parse(r.report_json));
}

export interface SplitOptions {
  /** Each part becomes dataset `<prefix>.<part>` (default prefix: the source dataset's name). */
  prefix?: string;
  createdBy?: string;
  onProgress?: OnProgress;
}

/**
 * Splits a version into parts, each registered as a version of `<prefix>.<part>` whose parent
 * is the source version and whose lineage records the split (method, column, seed, fractions,
 * cutoff). Deterministic: the same split of the same version gives the same versions.
 */
export async function splitDatasetVersion(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
  splitSpec: SplitSpec,
  options: SplitOptions = {},
): Promise<Record<string, DatasetVersion>> {
  const spec = parseSplitSpec(splitSpec);
  const version = await getDatasetVersion(ctx, ref);
  const prefix = options.prefix ?? version.name;
  const progress = options.onProgress ?? (() => {});
  const parent = await ctx.store.db
    .selectFrom('dataset_versions')
    .select('version_id')
    .where('name', '=', version.name)
    .where('version', '=', version.version)
    .executeTakeFirstOrThrow();
  const dir = scratch(ctx);
  try {
    progress('split', false);
    const parts = await splitParquet(await datasetParquetPath(ctx, version), version.schema, spec, (part) =>
      path.join(dir, `${part}.parquet`),
    );
    progress('split', true);
    for (const part of parts) {
      checkDatasetName(`${prefix}.${part.name}`);
      if (part.rows === 0) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `split of '${version.name}@${version.version}': part '${part.name}' would be empty`,
        );
      }
    }
    const out: Record<string, DatasetVersion> = {};
    progress('store', false);
    for (const part of parts) {
      const hash = await contentHash(version.schema, part.path);
      const profile = await profileParquet(part.path, version.schema);
      const registered = await registerVersion(ctx, {
        name: `${prefix}.${part.name}`,
        parquetPath: part.path,
        hash,
        rows: part.rows,
        schema: version.schema,
        source: { split: `${version.name}@${version.version}`, part: part.name },
        spec: version.spec,
        lineage: {
          op: 'split',
          parent: { name: version.name, version: version.version, hash: version.hash },
          part: part.name,
          ...spec,
        },
        parents: [parent.version_id],
        profile,
        createdBy: options.createdBy ?? creator(),
      });
      out[part.name] = registered.version;
    }
    progress('store', true);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Materialises features of a stored version (see `materializeMatrix`). */
export async function materializeDataset(
  ctx: DataContext,
  ref: DatasetVersionRef | string,
  request: MatrixRequest,
): Promise<LabelledMatrix> {
  const version = await getDatasetVersion(ctx, ref);
  const target = request.target ?? version.spec?.target;
  return materializeMatrix(
    await datasetParquetPath(ctx, version),
    { ...request, ...(target ? { target } : {}) },
    version.schema,
  );
}
