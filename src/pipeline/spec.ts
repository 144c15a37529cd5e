import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type ZodError, z } from 'zod';
import { KilnError } from '../errors.js';

/**
 * The pipeline spec, `kiln.yaml`: named steps, each a built-in kind (ingest, split, train, …,
 * checked against that kind's parameter schema in steps/) or a `command` (any executable), with
 * inputs, outputs, parameters, retries, timeouts and dependencies. docs/pipelines.md documents
 * every field; this file is the one place they are defined.
 *
 * References: a string may hold `${params.x}` (a pipeline parameter) or `${steps.a.outputs.y}`
 * (an output of step `a`, which makes the step depend on `a`). A string that is exactly one
 * reference takes the referenced value with its type (a number stays a number); otherwise the
 * references are interpolated as text.
 */

const STEP_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const OUTPUT_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** Built-in step kinds this build runs (steps/ holds one file each). */
export const BUILT_IN_KINDS = [
  'ingest',
  'validate',
  'transform',
  'split',
  'train',
  'tune',
  'evaluate',
  'register',
  'promote',
  'deploy',
  'monitor-check',
];
/** `30s`, `5m`, `2h`, `1500ms` or a number of seconds → milliseconds. */
const durationSchema = z
  .union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?(ms|s|m|h)$/)])
  .transform((v) => {
    if (typeof v === 'number') return Math.round(v * 1000);
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v)!;
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    return Math.round(Number(m[1]) * unit);
  });

const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.includes('\0'), 'a path may not hold NUL');

const stepSchema = z
  .object({
    /** A built-in kind, or `command` (the default when `command` is given). */
    kind: z.string().min(1).optional(),
    description: z.string().optional(),
    /** The kind's parameters (checked by the kind); for a command, values `${params.x}` may use. */
    params: z.record(z.string(), z.unknown()).default({}),
    /** command steps: the executable and its arguments. */
    command: z.array(z.string()).min(1).optional(),
    /** command steps: extra environment (values may hold references). */
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not an environment variable name'), z.string())
      .optional(),
    /** command steps: working folder, relative to the project folder and inside it. */
    cwd: relativePath.optional(),
    /**
     * Named inputs: a project file (relative path) or a reference to another step's output.
     * Files enter the cache key by content hash; a command sees each as KILN_INPUT_<NAME>.
     */
    inputs: z
      .record(z.string().regex(OUTPUT_NAME, 'input names are letters, digits and _'), z.string().min(1))
      .default({}),
    /** command steps: named output files, relative to the step's output folder (KILN_OUTPUT_DIR). */
    outputs: z
      .record(z.string().regex(OUTPUT_NAME, 'output names are letters, digits and _'), relativePath)
      .default({}),
    /** command steps: project files whose content is the step's code version (cache key). */
    code: z.array(relativePath).default([]),
    /** Inputs (names) and params (`params.x`) that do not enter the cache key. */
    exclude_from_key: z.array(z.string().min(1)).default([]),
    /** Steps this one runs after, beyond those its references name. */
    after: z.array(z.string()).default([]),
    /** Extra attempts after a failure (a timeout counts as one). */
    retries: z.number().int().min(0).max(20).default(0),
    retry_delay: durationSchema.optional(),
    /** Wall-clock limit of one attempt; the attempt's process is killed when it passes. */
    timeout: durationSchema.optional(),
    /** false: always run (never read or write the step cache). */
    cache: z.boolean().optional(),
  })
  .strict();

export const pipelineSpecSchema = z
  .object({
    name: z.string().regex(STEP_NAME, 'letters, digits, _ and -, starting with a letter').optional(),
    description: z.string().optional(),
    /** Experiment the pipeline run and its steps' runs are tracked in (default `pipelines`). */
    experiment: z.string().min(1).optional(),
    /** Parameters with their defaults; `--param k=v` overrides them. */
    params: z
      .record(z.string().regex(OUTPUT_NAME, 'parameter names are letters, digits and _'), z.unknown())
      .default({}),
    /** Steps run at once (default 2). */
    concurrency: z.number().int().min(1).max(64).optional(),
    steps: z
      .record(z.string(), stepSchema)
      .refine((s) => Object.keys(s).length > 0, 'a pipeline needs at least one step'),
  })
  .strict();

export type PipelineSpecInput = z.input<typeof pipelineSpecSchema>;
type ParsedSpec = z.infer<typeof pipelineSpecSchema>;
export type StepSpec = ParsedSpec['steps'][string] & { kind: string };
export interface PipelineSpec extends Omit<ParsedSpec, 'steps'> {
  name: string;
  steps: Record<string, StepSpec>;
}

/** One `${…}` reference inside a string. */
export type Reference = { type: 'param'; name: string } | { type: 'output'; step: string; output: string };

const REFERENCE = /\$\{([^}]*)\}/g;

/** The references a string holds, checked for shape (`where` names the field in errors). */
export function referencesIn(text: string, where: string): Reference[] {
  const out: Reference[] = [];
  for (const m of text.matchAll(REFERENCE)) {
    const body = m[1]!.trim();
    let r: RegExpExecArray | null;
    if ((r = /^params\.([A-Za-z][A-Za-z0-9_]*)$/.exec(body))) out.push({ type: 'param', name: r[1]! });
    else if ((r = /^steps\.([A-Za-z][A-Za-z0-9_-]*)\.outputs\.([A-Za-z][A-Za-z0-9_]*)$/.exec(body)))
      out.push({ type: 'output', step: r[1]!, output: r[2]! });
    else
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: '\${${body}}' is not a reference: use \${params.NAME} or \${steps.STEP.outputs.NAME}`,
      );
  }
  return out;
}

/** Every string inside a value (params are nested objects and lists), with its field path. */
export function* stringsIn(value: unknown, at: string): Generator<[string, string]> {
  if (typeof value === 'string') yield [value, at];
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* stringsIn(v, `${at}.${i}`);
  else if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) yield* stringsIn(v, `${at}.${k}`);
}

/** The fields of a step that may hold references, with their paths as the file spells them. */
export function referenceFields(name: string, step: StepSpec): [string, string][] {
  const base = `steps.${name}`;
  return [
    ...stringsIn(step.params, `${base}.params`),
    ...stringsIn(step.command ?? [], `${base}.command`),
    ...stringsIn(step.env ?? {}, `${base}.env`),
    ...stringsIn(step.inputs, `${base}.inputs`),
  ];
}

/**
 * Resolves references in a value: `lookup` returns a referenced value. A string that is one
 * whole reference becomes the value itself (type kept); other strings interpolate.
 */
export function resolveReferences(
  value: unknown,
  lookup: (ref: Reference) => unknown,
  where: string,
): unknown {
  if (typeof value === 'string') {
    const refs = referencesIn(value, where);
    if (refs.length === 0) return value;
    const whole = /^\$\{[^}]*\}$/.test(value.trim());
    if (whole) return lookup(refs[0]!);
    let i = 0;
    return value.replace(REFERENCE, () => {
      const v = lookup(refs[i++]!);
      return typeof v === 'string' ? v : JSON.stringify(v);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => resolveReferences(v, lookup, `${where}.${i}`));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolveReferences(v, lookup, `${where}.${k}`)]),
    );
  }
  return value;
}

/** A zod failure inside a step's params, reported at its place in the file. */
export function stepParamsError(place: string, step: string, error: ZodError): KilnError {
  for (const issue of error.issues)
    (issue as { path: PropertyKey[] }).path = ['steps', step, 'params', ...issue.path];
  return KilnError.fromZod(place, error);
}

/**
 * Checks a spec's shape, kinds, names and references (DAG checks are dag.ts's).
 * `checkParams(kind, params, step)` validates a built-in kind's parameters.
 */
export function parsePipelineSpec(
  value: unknown,
  place: string,
  checkParams: (
    kind: string,
    params: Record<string, unknown>,
    step: string,
    declared: Record<string, unknown>,
  ) => void,
): PipelineSpec {
  const parsed = pipelineSpecSchema.safeParse(value ?? {});
  if (!parsed.success) throw KilnError.fromZod(place, parsed.error);
  const spec = parsed.data;
  const steps: Record<string, StepSpec> = {};
  for (const [name, step] of Object.entries(spec.steps)) {
    const at = `${place}: steps.${name}`;
    if (!STEP_NAME.test(name))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${at}: step names are letters, digits, _ and -, starting with a letter (at most 64)`,
      );
    const kind = step.kind ?? (step.command ? 'command' : undefined);
    if (!kind)
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${at}: give a kind (${BUILT_IN_KINDS.join(', ')}) or a command`,
      );
    if (kind !== 'command' && !BUILT_IN_KINDS.includes(kind))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${at}.kind: unknown kind '${kind}' (built-in: ${BUILT_IN_KINDS.join(', ')}; or command)`,
      );
    if (kind === 'command') {
      if (!step.command)
        throw new KilnError('INVALID_PARAMETER_VALUE', `${at}.command: a command step needs a command`);
    } else {
      for (const field of ['command', 'env', 'cwd', 'code'] as const) {
        const v = step[field];
        if (v !== undefined && !(Array.isArray(v) && v.length === 0))
          throw new KilnError('INVALID_PARAMETER_VALUE', `${at}.${field}: only command steps take ${field}`);
      }
      if (Object.keys(step.outputs).length > 0)
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${at}.outputs: a ${kind} step's outputs are its kind's (see docs/pipelines.md); only command steps declare them`,
        );
    }
    if (step.cwd !== undefined) confinedPath(step.cwd, `${at}.cwd`);
    for (const [i, p] of step.code.entries()) confinedPath(p, `${at}.code.${i}`);
    for (const [k, p] of Object.entries(step.outputs)) confinedPath(p, `${at}.outputs.${k}`);
    for (const ex of step.exclude_from_key) {
      if (!(ex in step.inputs) && !(ex.startsWith('params.') && ex.slice(7) in step.params))
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${at}.exclude_from_key: '${ex}' is neither an input of the step nor params.<one of its params>`,
        );
    }
    steps[name] = { ...step, kind };
  }
  const out: PipelineSpec = { ...spec, name: spec.name ?? 'pipeline', steps };
  for (const [name, step] of Object.entries(steps)) {
    for (const [text, field] of referenceFields(name, step)) {
      for (const ref of referencesIn(text, `${place}: ${field}`)) {
        if (ref.type === 'param' && !(ref.name in out.params))
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `${place}: ${field}: \${params.${ref.name}} names no parameter (declare it under params:)`,
          );
        if (ref.type === 'output') {
          const target = steps[ref.step];
          if (!target)
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              `${place}: ${field}: \${steps.${ref.step}.outputs.${ref.output}}: step ${name} refers to unknown step '${ref.step}'`,
            );
          const known = outputNamesOf(target);
          if (known && !known.includes(ref.output))
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              `${place}: ${field}: step '${ref.step}' has no output '${ref.output}' (it has ${known.join(', ') || 'none'})`,
            );
        }
      }
    }
    for (const dep of step.after) {
      if (!steps[dep])
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${place}: steps.${name}.after: unknown step '${dep}'`,
        );
    }
    if (step.kind !== 'command') {
      // Parameters holding references are checked after resolution, at run time.
      checkParams(step.kind, step.params, name, out.params);
    }
  }
  return out;
}

/** Output names each built-in kind gives (undefined: a command's declared files + values). */
export const KIND_OUTPUTS: Record<string, string[]> = {
  ingest: ['dataset', 'hash', 'rows'],
  validate: ['dataset', 'passed'],
  transform: ['dataset', 'hash', 'rows'],
  split: [],
  train: ['run_id', 'model_uri'],
  tune: ['study', 'best_run_id', 'best_value', 'model_uri'],
  evaluate: ['run_id', 'passed'],
  register: ['name', 'version', 'model_uri'],
  promote: ['name', 'version', 'alias', 'decision'],
  deploy: ['name', 'versions', 'changed'],
  'monitor-check': [
    'model',
    'version',
    'firing',
    'fired',
    'share',
    'dataset_drift',
    'drifted',
    'rows',
    'labelled',
    'auc',
  ],
};

/** Known outputs of a step; undefined when any name may come (split parts, a command's values file). */
function outputNamesOf(step: StepSpec): string[] | undefined {
  if (step.kind === 'command') return undefined;
  if (step.kind === 'split') return undefined;
  return KIND_OUTPUTS[step.kind];
}

/** A relative path that stays inside its root (no absolute paths, no `..` escaping it). */
export function confinedPath(p: string, where: string): string {
  const norm = path.posix.normalize(p.replace(/\\/g, '/'));
  if (path.isAbsolute(p) || norm === '..' || norm.startsWith('../'))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: '${p}' must be a path inside the project folder`,
    );
  return norm;
}

/** `k=v` overrides onto the declared parameters: unknown names refused, values typed as YAML reads them. */
export function applyParamOverrides(
  spec: PipelineSpec,
  overrides: Record<string, string>,
): Record<string, unknown> {
  const params = { ...spec.params };
  for (const [k, text] of Object.entries(overrides)) {
    if (!(k in spec.params))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--param ${k}: the pipeline declares no parameter '${k}' (it has ${Object.keys(spec.params).join(', ') || 'none'})`,
      );
    let v: unknown = text;
    try {
      v = parseYaml(text);
    } catch {
      v = text;
    }
    // A scalar override keeps YAML's reading (3 → number, true → boolean); anything else stays text.
    params[k] = v === null || typeof v === 'object' ? text : v;
  }
  return params;
}

/** Reads `kiln.yaml` (or the named file). */
export function readPipelineFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `${file}: cannot read the pipeline spec (${(e as Error).message})`,
    );
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: not valid YAML: ${(e as Error).message}`);
  }
}
