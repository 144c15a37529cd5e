import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { KilnError } from '../errors.js';
import { BATCHING_DEFAULTS, type BatchingConfig } from './batcher.js';

/**
 * What a serving process serves: one or more named models, each a set of versions splitting
 * traffic by weight, an optional shadow version, batching and reload settings. `kiln serve
 * <model-uri>` is a one-model deployment; `kiln serve deployment.yaml` reads this shape:
 *
 * ```yaml
 * models:
 *   - name: flights
 *     versions:
 *       - { version: "7", model: "runs:/3f2a…/model", weight: 90 }
 *       - { version: "8", model: ./models/flights-v8, weight: 10 }
 *     shadow: { version: "9", model: ./models/flights-v9, share: 0.25 }
 *     batching: { max_batch_size: 512, max_latency_ms: 50, max_wait_ms: 1 }   # or true / false
 *     watch_seconds: 5      # re-check each source this often; reload when it changed
 *     max_rows: 100000      # rows per request
 * ```
 */
export interface VersionSpec {
  /** The route's label: what `/v2/models/{name}/versions/{version}` and the router match. */
  version: string;
  source: string;
  weight: number;
  /**
   * The label was not given (one `model:` / `kiln serve <model>`): a registry source is then
   * labelled with the version it resolves to (and relabelled when an alias moves), so
   * `kiln serve models:/x@champion` answers as the registry version, not a made-up '1'.
   */
  labelFromSource?: boolean;
}

export interface ModelDeployment {
  name: string;
  versions: VersionSpec[];
  shadow?: { version: string; source: string; share: number };
  /** undefined: the runtime's default (on for ONNX, off for native trees). */
  batching?: BatchingConfig | false;
  watchSeconds?: number;
  maxRows: number;
}

export interface Deployment {
  models: ModelDeployment[];
}

export const DEFAULT_MAX_ROWS = 100_000;

const batchingSchema = z.union([
  z.boolean(),
  z
    .object({
      max_batch_size: z.number().int().positive().optional(),
      max_latency_ms: z.number().positive().optional(),
      max_wait_ms: z.number().min(0).optional(),
    })
    .strict(),
]);

const versionSchema = z
  .object({
    version: z.union([z.string(), z.number()]).optional(),
    model: z.string().min(1),
    weight: z.number().min(0).optional(),
  })
  .strict();

const modelSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - (URL-safe)'),
    model: z.string().min(1).optional(),
    versions: z.array(versionSchema).min(1).optional(),
    shadow: z
      .object({
        version: z.union([z.string(), z.number()]).optional(),
        model: z.string().min(1),
        share: z.number().min(0).max(1).optional(),
      })
      .strict()
      .optional(),
    batching: batchingSchema.optional(),
    watch_seconds: z.number().positive().optional(),
    max_rows: z.number().int().positive().optional(),
  })
  .strict();

const deploymentSchema = z.object({ models: z.array(modelSchema).min(1) }).strict();

export function parseDeployment(input: unknown, place = 'deployment', baseDir = process.cwd()): Deployment {
  const parsed = deploymentSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
  }
  const names = new Set<string>();
  const models = parsed.data.models.map((m, i): ModelDeployment => {
    const where = `${place}: models[${i}] '${m.name}'`;
    if (names.has(m.name)) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: the name is used twice`);
    names.add(m.name);
    if ((m.model === undefined) === (m.versions === undefined)) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: give either 'model' or 'versions'`);
    }
    const resolve = (s: string) =>
      /^[a-z][a-z0-9+.-]*:/i.test(s) || path.isAbsolute(s) ? s : path.resolve(baseDir, s);
    const versions: VersionSpec[] = m.model
      ? [{ version: '1', source: resolve(m.model), weight: 1, labelFromSource: true }]
      : m.versions!.map((v, j) => ({
          version: String(v.version ?? j + 1),
          source: resolve(v.model),
          weight: v.weight ?? 1,
        }));
    const seen = new Set<string>();
    for (const v of versions) {
      if (seen.has(v.version))
        throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: version '${v.version}' is listed twice`);
      seen.add(v.version);
    }
    if (versions.reduce((s, v) => s + v.weight, 0) <= 0) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: the version weights sum to 0`);
    }
    const shadow = m.shadow
      ? {
          version: String(m.shadow.version ?? 'shadow'),
          source: resolve(m.shadow.model),
          share: m.shadow.share ?? 1,
        }
      : undefined;
    if (shadow && seen.has(shadow.version)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: shadow version '${shadow.version}' is also a serving version`,
      );
    }
    return {
      name: m.name,
      versions,
      ...(shadow ? { shadow } : {}),
      ...(m.batching === undefined ? {} : { batching: batchingOf(m.batching) }),
      ...(m.watch_seconds ? { watchSeconds: m.watch_seconds } : {}),
      maxRows: m.max_rows ?? DEFAULT_MAX_ROWS,
    };
  });
  return { models };
}

function batchingOf(b: z.infer<typeof batchingSchema>): BatchingConfig | false {
  if (b === false) return false;
  if (b === true) return { ...BATCHING_DEFAULTS };
  return {
    maxBatchSize: b.max_batch_size ?? BATCHING_DEFAULTS.maxBatchSize,
    maxLatencyMs: b.max_latency_ms ?? BATCHING_DEFAULTS.maxLatencyMs,
    maxWaitMs: b.max_wait_ms ?? BATCHING_DEFAULTS.maxWaitMs,
  };
}

export function loadDeploymentFile(file: string): Deployment {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `deployment file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `deployment file ${file}: not YAML (${(e as Error).message.split('\n')[0]})`,
    );
  }
  return parseDeployment(doc, `deployment file ${file}`, path.dirname(path.resolve(file)));
}

/** The name a model is served under when only its URI is given. */
export function modelNameOf(source: string): string {
  const m = /^models:\/+([^/@]+)/i.exec(source);
  if (m) return m[1]!;
  if (/^runs:\//i.test(source) || /^[0-9a-f]{32}$/i.test(source)) return 'model';
  const base = path.basename(source.replace(/\/+$/, '')).replace(/\.onnx$/i, '');
  const name = base === 'model' ? path.basename(path.dirname(source.replace(/\/+$/, ''))) : base;
  return name.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '') || 'model';
}
