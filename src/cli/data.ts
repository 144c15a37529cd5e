import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import {
  type DatasetCatalog,
  type DatasetProfile,
  type DatasetVersion,
  findPersonalData,
  formatReport,
  loadDataSpec,
  loadExpectations,
  type ProgressStep,
  prepareDataset,
  readYamlFile,
  type SplitSpec,
  validateParquet,
} from '../data/index.js';
import { KilnError } from '../errors.js';
import { escapeControlCharacters } from './table.js';
import { addWorkspaceOptions, type WorkspaceCommandOptions, withWorkspace } from './tracking-connection.js';

type StoreOptions = WorkspaceCommandOptions;

/** The dataset catalog of the workspace the flags name (local, or a kiln server's REST API). */
function withCatalog<T>(opts: StoreOptions, body: (catalog: DatasetCatalog) => Promise<T>): Promise<T> {
  return withWorkspace(opts, (_client, workspace) => body(workspace.datasets));
}

function print(opts: { json?: boolean }, value: unknown, text: () => string): void {
  process.stdout.write(`${opts.json ? JSON.stringify(value, null, 2) : text()}\n`);
}

const STEP_LABELS: Record<ProgressStep, string> = {
  read: 'read + normalise',
  validate: 'validate',
  profile: 'profile',
  store: 'store',
  split: 'split',
};

/** A step bar on stderr: one tick per finished step, so stdout stays clean for --json. */
function stepProgress(steps: ProgressStep[], quiet: boolean) {
  if (quiet || !process.stderr.isTTY) return { onProgress: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: 'kiln data [{bar}] {value}/{total} {step}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(steps.length, 0, { step: STEP_LABELS[steps[0]] });
  let done = 0;
  return {
    onProgress: (step: ProgressStep, finished: boolean) => {
      if (finished) done++;
      bar.update(done, { step: STEP_LABELS[step] });
    },
    stop: () => bar.stop(),
  };
}

function describeVersion(v: DatasetVersion): string {
  const lines = [
    `${v.name}@${v.version}  hash ${v.hash.slice(0, 16)}  ${v.rows} rows  ${v.sizeBytes} bytes`,
    `created ${new Date(v.creationTime).toISOString()} by ${v.createdBy}`,
    `source: ${JSON.stringify(v.source)}`,
  ];
  if (v.parents.length > 0)
    lines.push(`parents: ${v.parents.map((p) => `${p.name}@${p.version}`).join(', ')}`);
  if (v.lineage) lines.push(`lineage: ${JSON.stringify(v.lineage)}`);
  if (v.validation)
    lines.push(`validation: ${v.validation.passed ? 'passed' : 'FAILED'} at ${v.validation.checkedAt}`);
  lines.push('schema:');
  for (const c of v.schema.columns) {
    const extra = c.levels
      ? ` (${c.levels.length} levels${c.levels.length <= 8 ? `: ${c.levels.join(', ')}` : ''})`
      : '';
    lines.push(`  ${c.name.padEnd(24)} ${c.type}${extra}${c.expr ? `  = ${c.expr}` : ''}`);
  }
  return lines.join('\n');
}

function fmt(v: number | null | undefined): string {
  if (v === null || v === undefined) return '-';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3 ? v.toExponential(4) : v.toFixed(4);
}

export function describeProfile(p: DatasetProfile): string {
  const lines = [`${p.rows} rows`];
  for (const c of p.columns) {
    const head = `${c.name.padEnd(20)} ${(c.type ?? c.kind).padEnd(12)} missing ${c.missing}  distinct ${c.distinctExact ? '' : '~'}${c.distinct}`;
    if (c.kind === 'numeric') {
      lines.push(
        `${head}  min ${fmt(c.min)}  max ${fmt(c.max)}  mean ${fmt(c.mean)}  std ${fmt(c.std)}  p50 ${fmt(c.quantiles.p50)}  p95 ${fmt(c.quantiles.p95)}`,
      );
    } else {
      lines.push(
        `${head}  top ${c.topK
          .slice(0, 5)
          .map((t) => `${t.value} (${(t.share * 100).toFixed(1)}%)`)
          .join(', ')}`,
      );
    }
  }
  return lines.join('\n');
}

function parseFractions(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const [name, value] = part.split('=');
    const f = Number(value);
    if (!name || !Number.isFinite(f)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--fractions: '${part}' is not name=fraction (e.g. train=0.8,test=0.2)`,
      );
    }
    out[name.trim()] = f;
  }
  return out;
}

/** `kiln data …`: ingest, ls, show, head, validate, profile, split. */
export function registerDataCommands(program: Command): void {
  const data = program
    .command('data')
    .description('versioned datasets: ingest, inspect, validate, profile, split');

  addWorkspaceOptions(
    data
      .command('ingest')
      .argument(
        '[file]',
        'CSV, Parquet, JSON, NDJSON or Arrow file, or a glob (default: source.path of the spec)',
      )
      .requiredOption('--name <name>', 'dataset name')
      .option('--spec <file>', 'data spec YAML (types, derived features, select/drop, target)')
      .option('--expect <file>', 'expectations YAML, validated before registering')
      .option('--require-valid', 'refuse to register unless every expectation passes')
      .option('--description <text>', 'dataset description')
      .description('read, normalise, profile and register a content-addressed dataset version'),
  ).action(
    async (
      fileArg: string | undefined,
      opts: StoreOptions & {
        name: string;
        spec?: string;
        expect?: string;
        requireValid?: boolean;
        description?: string;
      },
    ) => {
      if (opts.requireValid && !opts.expect)
        throw new KilnError('INVALID_PARAMETER_VALUE', '--require-valid needs --expect');
      const spec = opts.spec ? loadDataSpec(opts.spec) : undefined;
      // Without FILE, the spec's source.path names the data, relative to the spec file.
      const file =
        fileArg ??
        (spec?.source?.path && opts.spec
          ? path.resolve(path.dirname(opts.spec), spec.source.path)
          : undefined);
      if (!file) throw new KilnError('INVALID_PARAMETER_VALUE', 'give a FILE, or a --spec with source.path');
      const expectations = opts.expect ? loadExpectations(opts.expect) : undefined;
      const steps: ProgressStep[] = expectations
        ? ['read', 'validate', 'profile', 'store']
        : ['read', 'profile', 'store'];
      const bar = stepProgress(steps, Boolean(opts.json));
      const result = await withCatalog(opts, (catalog) =>
        catalog.ingest({
          file,
          name: opts.name,
          spec,
          specPlace: opts.spec,
          expectations,
          requireValid: opts.requireValid,
          description: opts.description,
          onProgress: bar.onProgress,
        }),
      ).finally(() => bar.stop());
      print(
        opts,
        { created: result.created, version: result.version, validation: result.validation ?? null },
        () => {
          const v = result.version;
          const head = result.created
            ? `registered ${v.name}@${v.version} (${v.rows} rows, hash ${v.hash.slice(0, 16)})`
            : `unchanged: same data and schema as ${v.name}@${v.version} (hash ${v.hash.slice(0, 16)})`;
          return result.validation ? `${head}\n${formatReport(result.validation)}` : head;
        },
      );
      if (result.validation && !result.validation.passed) process.exitCode = 1;
    },
  );

  addWorkspaceOptions(
    data
      .command('ls')
      .argument('[name]', 'list the versions of this dataset')
      .description('list datasets, or versions of one'),
  ).action(async (name: string | undefined, opts: StoreOptions) => {
    await withCatalog(opts, async (catalog) => {
      if (name) {
        const versions = await catalog.listVersions(name);
        print(opts, versions, () =>
          versions
            .map(
              (v) =>
                `${v.name}@${v.version}  ${v.hash.slice(0, 12)}  ${String(v.rows).padStart(10)} rows  ${new Date(v.creationTime).toISOString()}  ${v.createdBy}${v.validation ? (v.validation.passed ? '  valid' : '  INVALID') : ''}`,
            )
            .join('\n'),
        );
      } else {
        const list = await catalog.list();
        print(opts, list, () =>
          list.length === 0
            ? 'no datasets yet: kiln data ingest FILE --name NAME'
            : list
                .map(
                  (d) => `${d.name.padEnd(24)} v${d.latestVersion}  (${d.versions} versions)  ${d.rows} rows`,
                )
                .join('\n'),
        );
      }
    });
  });

  addWorkspaceOptions(
    data
      .command('show')
      .argument('<ref>', 'NAME or NAME@VERSION (number or hash prefix)')
      .description('show a version: metadata, schema, lineage'),
  ).action(async (ref: string, opts: StoreOptions) => {
    const v = await withCatalog(opts, (catalog) => catalog.getVersion(ref));
    print(opts, v, () => describeVersion(v));
  });

  addWorkspaceOptions(
    data
      .command('head')
      .argument('<ref>', 'NAME or NAME@VERSION')
      .option('-n, --rows <n>', 'number of rows', '10')
      .description('print the first rows of a version'),
  ).action(async (ref: string, opts: StoreOptions & { rows: string }) => {
    if (!/^\d+$/.test(opts.rows) || Number(opts.rows) > 10_000) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `-n/--rows must be a whole number from 0 to 10000, got '${escapeControlCharacters(opts.rows.slice(0, 40))}'`,
      );
    }
    const rows = await withCatalog(opts, (catalog) => catalog.head(ref, Number(opts.rows)));
    print(opts, rows, () => {
      if (rows.length === 0) return '(no rows)';
      const cols = Object.keys(rows[0]).map(escapeControlCharacters);
      const cells = rows.map((r) =>
        Object.keys(r).map((c) => (r[c] === null ? '' : escapeControlCharacters(String(r[c])))),
      );
      const widths = cols.map((c, i) => Math.min(32, Math.max(c.length, ...cells.map((r) => r[i].length))));
      const line = (vals: string[]) => vals.map((v, i) => v.slice(0, widths[i]).padEnd(widths[i])).join('  ');
      return [line(cols), ...cells.map(line)].join('\n');
    });
  });

  addWorkspaceOptions(
    data
      .command('validate')
      .argument('<target>', 'NAME[@VERSION] of a stored version, or a data file with --file')
      .requiredOption('--expect <file>', 'expectations YAML')
      .option('--file', 'treat <target> as a data file (nothing is stored)')
      .option('--spec <file>', 'data spec for --file')
      .description('check expectations; prints a report, stores it with the version, exits 1 on failure'),
  ).action(async (target: string, opts: StoreOptions & { expect: string; file?: boolean; spec?: string }) => {
    const expectations = loadExpectations(opts.expect);
    let report: Awaited<ReturnType<typeof validateParquet>>;
    if (opts.file) {
      const { mkdtempSync, rmSync } = await import('node:fs');
      const os = await import('node:os');
      const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-validate-'));
      try {
        const spec = opts.spec ? loadDataSpec(opts.spec) : undefined;
        const prepared = await prepareDataset(target, {
          spec,
          specPlace: opts.spec,
          outPath: path.join(dir, 'data.parquet'),
        });
        report = await validateParquet(prepared.parquetPath, prepared.schema, expectations);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } else {
      report = await withCatalog(opts, (catalog) => catalog.validate(target, expectations));
    }
    print(opts, report, () => formatReport(report));
    if (!report.passed) process.exitCode = 1;
  });

  addWorkspaceOptions(
    data
      .command('profile')
      .argument('<ref>', 'NAME or NAME@VERSION')
      .option('--column <name>', 'only this column, in full (histogram, quantiles, top-k)')
      .description('print the stored profile of a version'),
  ).action(async (ref: string, opts: StoreOptions & { column?: string }) => {
    const profile = await withCatalog(opts, (catalog) => catalog.profile(ref));
    if (opts.column) {
      const col = profile.columns.find((c) => c.name === opts.column);
      if (!col)
        throw new KilnError('INVALID_PARAMETER_VALUE', `profile of ${ref}: no column '${opts.column}'`);
      const { sketch: _sketch, ...shown } = col;
      print(opts, col, () => JSON.stringify(shown, null, 2));
      return;
    }
    // Found from the stored profile each time: a better detector applies to old versions too.
    const personalData = findPersonalData(profile);
    print(opts, { ...profile, personalData }, () => {
      const text = describeProfile(profile);
      if (personalData.length === 0) return `${text}\nno column looks like personal data`;
      const lines = personalData.map(
        (f) =>
          `  ${f.column}: ${f.kind}, ${f.rows.toLocaleString('en-US')} of ${f.examined.toLocaleString('en-US')} rows${f.exact ? '' : ' examined (rare values not tracked)'} (${(100 * f.share).toFixed(1)}%), e.g. ${f.examples.join(', ')}`,
      );
      return `${text}\npersonal data (review before using these columns as features):\n${lines.join('\n')}`;
    });
  });

  addWorkspaceOptions(
    data
      .command('split')
      .argument('<ref>', 'NAME or NAME@VERSION')
      .option('--method <method>', 'random | stratified | time | group', 'random')
      .option('--fractions <list>', 'part=fraction,… (default train=0.8,test=0.2)')
      .option('--seed <n>', 'seed (random, stratified, group)', '0')
      .option('--column <name>', 'stratify / time / group column')
      .option('--cutoff <value>', 'time split: rows before this value go to the first part')
      .option('--spec <file>', 'split spec YAML instead of the flags')
      .option('--prefix <name>', 'parts become datasets <prefix>.<part> (default: the dataset name)')
      .description('split a version into parts registered as new versions, with lineage'),
  ).action(
    async (
      ref: string,
      opts: StoreOptions & {
        method: string;
        fractions?: string;
        seed: string;
        column?: string;
        cutoff?: string;
        spec?: string;
        prefix?: string;
      },
    ) => {
      let spec: unknown;
      if (opts.spec) spec = readYamlFile(opts.spec);
      else {
        const cutoff =
          opts.cutoff === undefined
            ? undefined
            : /^-?\d+(\.\d+)?$/.test(opts.cutoff)
              ? Number(opts.cutoff)
              : opts.cutoff;
        spec = {
          method: opts.method,
          ...(opts.method === 'time' ? {} : { seed: Number(opts.seed) }),
          ...(opts.column ? { column: opts.column } : {}),
          ...(cutoff !== undefined
            ? { cutoff }
            : { fractions: parseFractions(opts.fractions ?? 'train=0.8,test=0.2') }),
        };
      }
      const bar = stepProgress(['split', 'store'], Boolean(opts.json));
      const parts = await withCatalog(opts, (catalog) =>
        catalog.split(ref, spec as SplitSpec, {
          prefix: opts.prefix,
          onProgress: bar.onProgress,
        }),
      ).finally(() => bar.stop());
      print(opts, parts, () =>
        Object.entries(parts)
          .map(
            ([part, v]) =>
              `${part.padEnd(10)} → ${v.name}@${v.version}  ${v.rows} rows  hash ${v.hash.slice(0, 12)}`,
          )
          .join('\n'),
      );
    },
  );
}
