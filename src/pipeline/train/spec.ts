import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { KilnError } from '../../errors.js';
import {
  atMost,
  getMetric,
  LEARNERS,
  STEP_KINDS,
  THREADS_WHY,
  type TransformStep,
  valueMatrixSchema,
  WORK_BOUNDS,
} from '../../learn/index.js';

/**
 * The training spec: one YAML file (or the same object from TypeScript) that says which data,
 * which features and label, how to split, which learner with which parameters, how to judge
 * the model, and — for `kiln tune` — what to search over and under which constraints.
 * docs/train-and-tune.md documents every field; this file is the one place they are defined.
 */

/** A feature: a column name, or a named row-level expression (the data layer's subset of SQL). */
export const featureRefSchema = z.union([
  z.string().min(1),
  z
    .object({
      name: z.string().min(1),
      expr: z.string().min(1).optional(),
      kind: z.enum(['numeric', 'categorical']).optional(),
    })
    .strict(),
]);
export type FeatureRef = z.infer<typeof featureRefSchema>;

const derivedFeatureSchema = z.union([
  z.string().min(1),
  z.object({ expr: z.string().min(1), kind: z.enum(['numeric', 'categorical']).optional() }).strict(),
]);

export const dataSectionSchema = z
  .object({
    /** A stored dataset, `name` or `name@version`. */
    dataset: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+(@[0-9]+)?$/, 'expected a dataset name or name@version')
      .optional(),
    /** A data file or glob (Parquet, CSV, JSON…); relative to the spec file. */
    file: z.string().min(1).optional(),
    /**
     * Derived features by name (row-level expressions, as in a data spec's `features`), so
     * `features:` below can list them by name; the same expressions run at serving time.
     */
    derive: z.record(z.string(), derivedFeatureSchema).optional(),
    /** Row filter applied before splitting (a row-level boolean expression). */
    where: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((d, ctx) => {
    if ((d.dataset === undefined) === (d.file === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of dataset or file', path: [] });
    }
  });
export type DataSection = z.infer<typeof dataSectionSchema>;

const fraction = z.number().min(0).lt(1);
const cutoff = z.union([z.string().min(1), z.number()]);

export const splitSchema = z
  .discriminatedUnion('method', [
    z
      .object({
        method: z.literal('random'),
        valid: fraction.default(0.2),
        test: fraction.default(0.2),
        seed: z.number().int().default(0),
      })
      .strict(),
    z
      .object({
        method: z.literal('stratified'),
        valid: fraction.default(0.2),
        test: fraction.default(0.2),
        seed: z.number().int().default(0),
      })
      .strict(),
    z
      .object({
        method: z.literal('time'),
        /** The time (or any ordered) column the cutoffs apply to. */
        column: z.string().min(1),
        /** Rows with column ≥ valid_from and < test_from validate; absent: `valid` share of the earlier rows, by seed. */
        valid_from: cutoff.optional(),
        /** Rows with column ≥ test_from are the test set. */
        test_from: cutoff,
        valid: fraction.default(0),
        seed: z.number().int().default(0),
      })
      .strict(),
    z
      .object({
        method: z.literal('group'),
        /** Rows sharing a value of this column land in the same part (no leakage across parts). */
        column: z.string().min(1),
        valid: fraction.default(0.2),
        test: fraction.default(0.2),
        seed: z.number().int().default(0),
      })
      .strict(),
  ])
  .superRefine((s, ctx) => {
    if ('test' in s && s.valid + s.test >= 1) {
      ctx.addIssue({ code: 'custom', message: 'valid + test must leave rows to train on', path: ['valid'] });
    }
  });
/**
 * A training spec's split: the train / valid / test shorthand of data/splits.ts's SplitSpec
 * (fractions `{ train: 1 − valid − test, valid, test }`), assigned by the same functions, so a
 * seed picks the same rows here as `kiln data split` does (stratified: on the label). The
 * time form is its own: cutoffs on a column, read part by part.
 */
export type TrainSplit = z.infer<typeof splitSchema>;

/**
 * A preprocessing step as learn/preprocess takes it (`kind`: impute, standard-scale, one-hot…);
 * the step's own fields are checked there when it is fitted.
 */
export const preprocessStepSchema = z
  .object({
    kind: z.enum(STEP_KINDS as [TransformStep['kind'], ...TransformStep['kind'][]]),
    columns: z.array(z.string().min(1)).optional(),
  })
  .catchall(z.unknown());
export type PreprocessStep = z.infer<typeof preprocessStepSchema>;

export const learnerSectionSchema = z
  .object({
    name: z.string().min(1),
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();
export type LearnerSection = z.infer<typeof learnerSectionSchema>;

/** What a wrong prediction costs, so runs and studies can report money next to AUC. */
export const costSchema = z
  .object({
    false_positive: z.number().min(0).default(0),
    false_negative: z.number().min(0).default(0),
    /** Serving cost per 1,000 predictions. */
    per_1k_predictions: z.number().min(0).default(0),
    /** Probability above which a binary prediction counts as positive. */
    threshold: z.number().min(0).max(1).default(0.5),
  })
  .strict();
export type CostSpec = z.infer<typeof costSchema>;

/** How prediction speed is measured after training. */
export const measureSchema = z
  .object({
    /** Single-row predictions timed (p50 / p99 over these). */
    latency_rows: z.number().int().min(1).max(1_000_000).default(2000),
    /** Rows per batch for the throughput figure. */
    batch_rows: z
      .number()
      .int()
      .min(1)
      .max(1_000_000, atMost(1_000_000, 'rows per timed batch'))
      .default(10_000),
  })
  .strict();
export type MeasureSpec = z.infer<typeof measureSchema>;

const condition = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number(), z.boolean()]))]),
);

export const searchParamSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('float'),
      low: z.number(),
      high: z.number(),
      log: z.boolean().default(false),
      step: z.number().positive().optional(),
      /** Sample only when the named parameters have these values (conditional parameter). */
      when: condition.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('int'),
      low: z.number().int(),
      high: z.number().int(),
      log: z.boolean().default(false),
      step: z.number().int().positive().default(1),
      when: condition.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('categorical'),
      choices: z.array(z.union([z.string(), z.number(), z.boolean(), z.null()])).min(1),
      when: condition.optional(),
    })
    .strict(),
]);
export type SearchParam = z.infer<typeof searchParamSchema>;

/**
 * Quantities a run measures besides validation metrics, usable as objectives and constraints.
 * Names are the metric keys the run logs.
 */
export const MEASURES: Readonly<Record<string, { direction: 'minimize' | 'maximize'; description: string }>> =
  {
    p50_latency_us: { direction: 'minimize', description: 'median single-row prediction latency, µs' },
    p99_latency_us: {
      direction: 'minimize',
      description: '99th-percentile single-row prediction latency, µs',
    },
    throughput_rows_per_s: { direction: 'maximize', description: 'batch prediction throughput, rows/s' },
    model_size_bytes: { direction: 'minimize', description: 'serialised model size, bytes' },
    model_size_mb: { direction: 'minimize', description: 'serialised model size, MB (10^6 bytes)' },
    train_seconds: { direction: 'minimize', description: 'wall time of fit, s' },
    load_seconds: { direction: 'minimize', description: 'wall time of loading the data, s' },
    fit_seconds: { direction: 'minimize', description: 'wall time of fit, s (as train_seconds)' },
    evaluate_seconds: { direction: 'minimize', description: 'wall time of evaluating every part, s' },
    measure_seconds: {
      direction: 'minimize',
      description: 'wall time of measuring latency, throughput, size, s',
    },
    log_seconds: { direction: 'minimize', description: 'wall time of logging the model and reports, s' },
    cost_per_1k: {
      direction: 'minimize',
      description: 'validation cost per 1,000 predictions (cost model: errors + serving)',
    },
    cpu_seconds: { direction: 'minimize', description: 'CPU time of the whole run, every thread, s' },
    peak_rss_mb: { direction: 'minimize', description: 'resident-memory high-water mark, MB' },
    compute_cost: {
      direction: 'minimize',
      description: 'cpu_seconds at the CPU-hour price (KILN_COST_CPU_HOUR)',
    },
    cpu_us_per_prediction: { direction: 'minimize', description: 'CPU time per single-row prediction, µs' },
    cost_per_1k_predictions: {
      direction: 'minimize',
      description:
        'serving cost of 1,000 single-row predictions: their CPU at the CPU-hour price + the per-1k-requests overhead',
    },
    storage_cost_per_month: {
      direction: 'minimize',
      description: 'storing the model package for a month at the GB-month price',
    },
  };

export const objectiveSchema = z
  .object({
    /** `valid.<metric>` (a metric from the registry) or a measure (p99_latency_us, model_size_mb…). */
    metric: z.string().min(1),
    direction: z.enum(['minimize', 'maximize']).optional(),
  })
  .strict();

const CONSTRAINT = /^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(<=|>=)\s*(-?[0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)\s*$/;

export const searchSchema = z
  .object({
    space: z.record(z.string(), searchParamSchema),
    sampler: z
      .union([z.string().min(1), z.object({ name: z.string().min(1) }).catchall(z.unknown())])
      .default('tpe'),
    pruner: z
      .union([z.string().min(1), z.object({ name: z.string().min(1) }).catchall(z.unknown())])
      .default('none'),
    /** Boosting iterations (or epochs) between reports to the pruner. */
    report_every: z.number().int().min(1).default(10),
    objectives: z.array(objectiveSchema).min(1).optional(),
    /** `name <= bound` or `name >= bound` over a validation metric or a measure. */
    constraints: z
      .array(z.string().regex(CONSTRAINT, "expected 'name <= number' or 'name >= number'"))
      .default([]),
    trials: z
      .number()
      .int()
      .min(1)
      .max(WORK_BOUNDS.iterations, atMost(WORK_BOUNDS.iterations, 'trials per study'))
      .default(20),
    parallel: z
      .number()
      .int()
      .min(1)
      .max(WORK_BOUNDS.threads, atMost(WORK_BOUNDS.threads, THREADS_WHY))
      .default(1),
    study: z.string().min(1).optional(),
    seed: z.number().int().optional(),
  })
  .strict();
export type SearchSpec = z.infer<typeof searchSchema>;

export const trainSpecSchema = z
  .object({
    /** Run name; default: the spec file's base name. */
    name: z.string().min(1).optional(),
    experiment: z.string().min(1).optional(),
    description: z.string().optional(),
    data: dataSectionSchema,
    features: z.array(featureRefSchema).min(1),
    target: featureRefSchema,
    task: z.enum(['binary', 'multiclass', 'regression']).optional(),
    // No method means random (the default split), so `{ valid: -0.1 }` is reported at split.valid.
    split: z
      .preprocess(
        (v) =>
          v && typeof v === 'object' && !Array.isArray(v) && !('method' in v)
            ? { method: 'random', ...v }
            : v,
        splitSchema,
      )
      .default({ method: 'random', valid: 0.2, test: 0.2, seed: 0 }),
    preprocessing: z.array(preprocessStepSchema).default([]),
    learner: learnerSectionSchema,
    /** Metrics logged on validation and test; the first is the main one. Default: the task's. */
    metrics: z.array(z.string().min(1)).optional(),
    cost: costSchema.optional(),
    /**
     * What decisions are worth (learn/evaluate/value.ts): the report's value at each threshold,
     * the best-value threshold, and `<part>.value_per_1k`. A binary matrix's `threshold` is the
     * operating threshold (over `cost.threshold`).
     */
    value: valueMatrixSchema.optional(),
    measure: measureSchema.default({ latency_rows: 2000, batch_rows: 10_000 }),
    search: searchSchema.optional(),
    tags: z.record(z.string(), z.string()).optional(),
  })
  .strict()
  .superRefine(checkCrossFields);

/** The spec as written (defaults optional) — what the TypeScript API accepts. */
export type TrainSpecInput = z.input<typeof trainSpecSchema>;
/** The spec after validation, defaults filled. */
export type TrainSpec = z.infer<typeof trainSpecSchema>;

function checkCrossFields(spec: z.infer<typeof trainSpecSchema>, ctx: z.RefinementCtx): void {
  const learner = LEARNERS[spec.learner.name];
  if (!learner) {
    ctx.addIssue({
      code: 'custom',
      path: ['learner', 'name'],
      message: `unknown learner '${spec.learner.name}' (known: ${Object.keys(LEARNERS).join(', ')})`,
    });
    return;
  }
  const params = learner.paramsSchema.safeParse(spec.learner.params);
  if (!params.success) {
    for (const issue of params.error.issues) {
      const at = ['learner', 'params', ...issue.path];
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys)
          ctx.addIssue({ code: 'custom', path: [...at, key], message: 'unknown field' });
      } else ctx.addIssue({ code: 'custom', path: at, message: issueText(issue) });
    }
  }
  (spec.metrics ?? []).forEach((name, i) => {
    try {
      getMetric(name);
    } catch (e) {
      ctx.addIssue({ code: 'custom', path: ['metrics', i], message: (e as Error).message });
    }
  });
  const names = new Set<string>();
  spec.features.forEach((f, i) => {
    const name = typeof f === 'string' ? f : f.name;
    if (names.has(name))
      ctx.addIssue({ code: 'custom', path: ['features', i], message: `'${name}' is listed twice` });
    names.add(name);
  });
  const targetName = typeof spec.target === 'string' ? spec.target : spec.target.name;
  if (names.has(targetName)) {
    ctx.addIssue({ code: 'custom', path: ['target'], message: `'${targetName}' is also a feature` });
  }
  if (spec.cost && spec.task === 'regression') {
    ctx.addIssue({ code: 'custom', path: ['cost'], message: 'a cost model needs a binary task' });
  }
  if (spec.value && spec.task !== undefined) {
    const regression = 'per_unit_error' in spec.value;
    if (regression !== (spec.task === 'regression'))
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: regression
          ? `per_unit_error is a regression value; a ${spec.task} task takes true_positive, false_positive, false_negative, true_negative`
          : 'a regression task takes per_unit_error (and loss), not a confusion-matrix value',
      });
  }
  if (spec.search) checkSearch(spec, learner.paramsSchema, ctx);
}

function checkSearch(spec: TrainSpec, paramsSchema: z.ZodType, ctx: z.RefinementCtx): void {
  const search = spec.search!;
  const known = paramKeys(paramsSchema);
  for (const [name, param] of Object.entries(search.space)) {
    const at = ['search', 'space', name];
    if (known && !known.includes(name)) {
      ctx.addIssue({
        code: 'custom',
        path: at,
        message: `'${name}' is not a parameter of learner '${spec.learner.name}'`,
      });
    }
    // Each end of a range (each choice) must itself be a value the learner accepts, so a search
    // cannot reach past a parameter's bound (threads, num_iterations, …) in some trial.
    if (known?.includes(name)) {
      const ends: [string | number, unknown][] =
        param.type === 'categorical'
          ? param.choices.map((c, i) => [i, c] as [number, unknown])
          : [
              ['low', param.low],
              ['high', param.high],
            ];
      for (const [end, value] of ends) {
        const probe = paramsSchema.safeParse({ [name]: value });
        const issue = probe.success ? undefined : probe.error.issues.find((i) => i.path[0] === name);
        if (issue) {
          ctx.addIssue({
            code: 'custom',
            path: [...at, ...(param.type === 'categorical' ? ['choices', end] : [end])],
            message: `${JSON.stringify(value)} is not a valid '${name}': ${issueText(issue)}`,
          });
        }
      }
    }
    if (param.type !== 'categorical') {
      if (!(param.low <= param.high))
        ctx.addIssue({ code: 'custom', path: [...at, 'high'], message: 'high must be ≥ low' });
      if (param.log && param.low <= 0)
        ctx.addIssue({ code: 'custom', path: [...at, 'low'], message: 'log scale needs low > 0' });
      if (param.log && param.type === 'float' && param.step !== undefined)
        ctx.addIssue({ code: 'custom', path: [...at, 'step'], message: 'step cannot be used with log' });
      if (param.log && param.type === 'int' && param.step !== 1)
        ctx.addIssue({ code: 'custom', path: [...at, 'step'], message: 'step must be 1 with log' });
    }
    for (const other of Object.keys(param.when ?? {})) {
      if (!(other in search.space) || other === name) {
        ctx.addIssue({
          code: 'custom',
          path: [...at, 'when', other],
          message: `condition names '${other}', which is not another parameter of the search space`,
        });
      }
    }
  }
  const task = spec.task;
  (search.objectives ?? []).forEach((o, i) => {
    const problem =
      o.metric === 'valid.value_per_1k' && !spec.value
        ? 'valid.value_per_1k needs a value matrix (the spec has no value: section)'
        : quantityProblem(o.metric, task);
    if (problem)
      ctx.addIssue({ code: 'custom', path: ['search', 'objectives', i, 'metric'], message: problem });
  });
  search.constraints.forEach((c, i) => {
    if (!CONSTRAINT.test(c)) return; // the field's own regex reports it
    const parsed = parseConstraint(c);
    const problem = quantityProblem(parsed.name, task);
    if (problem) ctx.addIssue({ code: 'custom', path: ['search', 'constraints', i], message: problem });
  });
  const pruner = typeof search.pruner === 'string' ? search.pruner : search.pruner.name;
  if (pruner !== 'none' && (search.objectives?.length ?? 1) > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['search', 'pruner'],
      message: 'pruning works with a single objective only; use pruner: none',
    });
  }
}

/** Why `name` is not something a run measures, or undefined when it is. */
function quantityProblem(name: string, task: TrainSpec['task']): string | undefined {
  if (name in MEASURES) {
    if (name === 'cost_per_1k' && task === 'regression') return 'cost_per_1k needs a binary task';
    return undefined;
  }
  if (/^valid\.value_per_1k$/.test(name)) return undefined; // logged when the spec has a value matrix
  const m = /^(valid|test|train)\.(.+)$/.exec(name);
  if (!m) {
    return `'${name}' is neither 'valid.<metric>' nor a measure (${Object.keys(MEASURES).join(', ')})`;
  }
  if (m[1] === 'test') return `'${name}': tuning on the test set leaks it into the model; use valid.${m[2]}`;
  try {
    getMetric(m[2]!);
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

export interface Constraint {
  name: string;
  op: '<=' | '>=';
  bound: number;
  /** The original text, e.g. `p99_latency_us <= 200`. */
  text: string;
}

/** `p99_latency_us <= 200` → { name, op, bound }. */
export function parseConstraint(text: string): Constraint {
  const m = CONSTRAINT.exec(text);
  if (!m) throw new KilnError('INVALID_PARAMETER_VALUE', `constraint '${text}': expected 'name <= number'`);
  return { name: m[1]!, op: m[2] as '<=' | '>=', bound: Number(m[3]), text: text.trim() };
}

/** Optuna's convention: a constraint is met when its value is ≤ 0. */
export function constraintValue(c: Constraint, measured: number): number {
  if (!Number.isFinite(measured)) return Number.POSITIVE_INFINITY;
  return c.op === '<=' ? measured - c.bound : c.bound - measured;
}

/** The direction of a quantity named in objectives: metric registry or MEASURES. */
export function directionOf(name: string): 'minimize' | 'maximize' {
  if (name in MEASURES) return MEASURES[name]!.direction;
  const metric = name.replace(/^(valid|test|train)\./, '');
  if (metric === 'value_per_1k') return 'maximize';
  return getMetric(metric).direction;
}

function paramKeys(schema: z.ZodType): string[] | undefined {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : undefined;
}

function issueText(issue: z.core.$ZodIssue): string {
  let message = issue.message.replace(/^Invalid input: /, '');
  message = message.replace(/^expected int\b/, 'expected integer');
  if (issue.code === 'unrecognized_keys')
    message = `unknown field(s) ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  return message;
}

/**
 * Validates a training spec (parsed YAML or a TS object). The error names the spec (`place`)
 * and every offending field path, e.g. `train.yaml: learner.params.num_leaves: expected integer`.
 */
export function parseTrainSpec(value: unknown, place = 'training spec'): TrainSpec {
  const parsed = trainSpecSchema.safeParse(value ?? {});
  if (!parsed.success) throw KilnError.fromZod(place, parsed.error, value);
  return parsed.data;
}

/** The TypeScript door: the same shape as the YAML, checked the same way. */
export function defineTrainSpec(spec: TrainSpecInput): TrainSpec {
  return parseTrainSpec(spec);
}

/** Reads and validates a YAML spec; relative file paths resolve against the spec's folder. */
export function loadTrainSpec(file: string): TrainSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `${file}: cannot read the training spec (${(e as Error).message})`,
    );
  }
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (e) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: not valid YAML: ${(e as Error).message}`);
  }
  const spec = parseTrainSpec(value, file);
  if (spec.data.file && !path.isAbsolute(spec.data.file)) {
    spec.data.file = path.resolve(path.dirname(file), spec.data.file);
  }
  spec.name ??= path.basename(file).replace(/\.ya?ml$/i, '');
  return spec;
}

/** Name of a feature or target reference. */
export function refName(ref: FeatureRef): string {
  return typeof ref === 'string' ? ref : ref.name;
}
