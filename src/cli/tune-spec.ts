import path from 'node:path';
import { openArtifactStore } from '../artifacts/index.js';
import { type KilnConfig, resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { WORK_BOUNDS } from '../learn/index.js';
import { loadTrainSpec, type TrainSpec, type TuneResult, tuneFromSpec } from '../pipeline/index.js';
import { connect, type KilnClient } from '../sdk/index.js';
import { openStore, type Store } from '../store/index.js';
import { SqlTrackingStore } from '../tracking/index.js';
import type { FrozenTrial } from '../tune/index.js';
import { renderStudySummary } from './study-summary-text.js';
import { printJson } from './table.js';

/** Flags of `kiln tune spec.yaml` / `kiln train spec.yaml --tune` / a worker on a training-spec study. */
export interface TuneSpecCommandOptions {
  trials?: string;
  parallel?: string;
  timeout?: string;
  /** Continue (or join, as a worker) this stored study. */
  resume?: string;
  /** Name for a new study (default: the spec's search.study, else spec name + time). */
  study?: string;
  trackingUri?: string;
  db?: string;
  home?: string;
  json?: boolean;
}

/**
 * Runs a study over a training spec's `search` section, or continues a stored one. This is
 * what `kiln tune spec.yaml --trials N --parallel P [--resume STUDY]` does; the tune command
 * can call it for a spec argument, and for `--worker STUDY` / `--resume STUDY` when the study
 * was created from a training spec (`isTrainingSpecStudy`).
 */
export async function runTuneSpecCommand(
  file: string | undefined,
  opts: TuneSpecCommandOptions,
): Promise<TuneResult> {
  if (!file && !opts.resume)
    throw new KilnError('INVALID_PARAMETER_VALUE', 'kiln tune: give a training spec or --resume STUDY');
  const spec = file ? loadTrainSpec(file) : undefined;
  if (spec && !spec.search) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${file}: search: the spec has no search section to tune over`,
    );
  }
  const config = studyStoreConfig(opts);
  const client = await connect(opts.trackingUri ?? (opts.home ? opts.home : undefined));
  // When trials are tracked in the study's own database, both share one connection: two
  // SQLite connections in one process would interleave between awaits, and a tracking
  // transaction that read before the study's write commits cannot upgrade to a write
  // (SQLITE_BUSY_SNAPSHOT, which busy_timeout does not wait out).
  const shared = sameDatabase(client, config.db);
  let store: Store;
  try {
    store = shared ?? (await openStore({ db: config.db }));
  } catch (e) {
    await client.close();
    throw e;
  }
  const started = Date.now();
  try {
    // The catalog shares the study store, so a spec naming a stored dataset (also a resumed one) can read it.
    const data = { store, artifacts: openArtifactStore(config.artifacts), tmpDir: config.scratch };
    const result = await tuneFromSpec(spec, {
      store,
      client,
      data,
      ...(opts.resume ? { resume: opts.resume } : {}),
      ...(opts.study ? { study: opts.study } : {}),
      ...(opts.trials !== undefined
        ? { trials: positiveInt(opts.trials, '--trials', WORK_BOUNDS.iterations) }
        : {}),
      ...(opts.parallel !== undefined
        ? { parallel: positiveInt(opts.parallel, '--parallel', WORK_BOUNDS.threads) }
        : {}),
      ...(opts.timeout !== undefined ? { timeoutSeconds: Number(opts.timeout) } : {}),
      onTrialFinished: (t) => {
        if (!opts.json) process.stderr.write(`${trialLine(t, started)}\n`);
      },
    });
    if (opts.json) printJson(result.summary);
    else process.stdout.write(summaryText(result, spec));
    return result;
  } finally {
    await client.close(); // closes the shared store too
    if (!shared) await store.close();
  }
}

/** The tracking client's own metadata store when it is the database `db` names. */
function sameDatabase(client: KilnClient, db: string): Store | undefined {
  if (!(client.store instanceof SqlTrackingStore)) return undefined;
  const tracked = client.store.store;
  const uri = tracked.connectionUri ?? tracked.location;
  const isUri = (u: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(u);
  if (uri === ':memory:' || db === ':memory:') return undefined;
  const same = isUri(uri) || isUri(db) ? uri === db : path.resolve(uri) === path.resolve(db);
  return same ? tracked : undefined;
}

/**
 * Where studies live: the metadata store --tracking-uri names when it is a database or a folder
 * (so trials and their runs sit together), else --db / --home, else KILN_DB / KILN_HOME. Every
 * `kiln tune` path that opens a study resolves it here, so a worker finds what a spec run stored.
 */
export function studyStoreConfig(opts: { db?: string; home?: string; trackingUri?: string }): KilnConfig {
  const uri = opts.trackingUri;
  const isDb = uri !== undefined && /^postgres(ql)?:\/\//i.test(uri);
  const isFolder = uri !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri);
  return resolveConfig({
    db: opts.db ?? (isDb ? uri : undefined),
    home: opts.home ?? (isFolder ? uri : undefined),
  });
}

function trialLine(t: FrozenTrial, started: number): string {
  const params = Object.entries(t.params)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : v}`)
    .join(' ');
  const values = t.values ? t.values.map((v) => v.toPrecision(5)).join(', ') : '-';
  const feasible = t.constraints ? (t.constraints.every((c) => c <= 0) ? '' : ' (infeasible)') : '';
  return `trial ${t.number} ${t.state.padEnd(8)} ${values}${feasible}  ${params}  [${((Date.now() - started) / 1000).toFixed(1)} s]`;
}

function summaryText(r: TuneResult, spec: TrainSpec | undefined): string {
  return renderStudySummary(r.summary, {
    processLine: `this process ran ${r.finished.length} in ${r.wallSeconds.toFixed(1)} s`,
    parentRunId: r.parentRunId,
    constraints: spec?.search?.constraints,
  });
}

function positiveInt(text: string, flag: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${flag} must be a positive integer, got '${text.slice(0, 40)}'`,
    );
  if (n > max) throw new KilnError('INVALID_PARAMETER_VALUE', `${flag} must be at most ${max}, got ${text}`);
  return n;
}
