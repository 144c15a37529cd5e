import { z } from 'zod';
import { appendAudit } from '../auth/index.js';
import { getDatasetProfile, listValidations, type PersonalDataFinding } from '../data/index.js';
import { KilnError } from '../errors.js';
import type { KeyValue, Run } from '../tracking/index.js';
import { REGISTRY_ARTIFACT_SCHEME } from './gc.js';
import { personalDataTouched } from './personal-data-use.js';
import { type RunCost, runCostLines, runCostOf } from './run-cost.js';
import { readSignature, type SignatureFile } from './run-signature.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { Actor } from './types.js';
import { checkModelName, checkVersion } from './validation.js';

/**
 * A model card per version: the generated half is read from the version's run every time
 * (parameters, metrics per data part, training-data lineage and validation, the signature
 * with the training profile's ranges), so it can never disagree with the run; the editable
 * half (intended use, owner, limitations, personal data, notes) is stored and audited.
 */
export const ModelCardFieldsSchema = z
  .object({
    intended_use: z.string().max(10_000).optional(),
    owner: z.string().max(256).optional(),
    limitations: z.string().max(10_000).optional(),
    personal_data: z.string().max(10_000).optional(),
    notes: z.string().max(20_000).optional(),
  })
  .strict();
export type ModelCardFields = z.output<typeof ModelCardFieldsSchema>;

export interface SignatureInputCard {
  name: string;
  type: string;
  expr?: string;
  levels?: string[];
  /** From the training dataset's profile, for raw numeric columns. */
  range?: { min: number | null; max: number | null; missing: number; count: number };
}

export interface ModelCard {
  name: string;
  version: string;
  fields: ModelCardFields;
  fields_updated_by?: string;
  fields_updated_time?: number;
  model: {
    description?: string;
    source: string;
    run_id?: string;
    registered_by?: string;
    creation_timestamp: number;
    aliases: string[];
    learner?: string;
    task?: string;
  };
  training_data: {
    dataset?: { name: string; version: number; hash?: string; rows?: number };
    file?: string;
    split: Record<string, string>;
    validation?: { passed: boolean; expectations: number; checked_at: string };
  };
  /** Metrics by data part (`test`, `valid`, `train`: the evaluation slices) and the rest. */
  evaluation: { parts: Record<string, Record<string, number>>; other: Record<string, number> };
  parameters: KeyValue[];
  /** What training cost and what the model costs to keep and to serve (run-cost.ts). */
  cost?: RunCost;
  /**
   * Columns the model reads that look like personal data, found on its training dataset's
   * profile (personal-data-use.ts); `checked: false` with the reason when that cannot be done.
   */
  personal_data_found?:
    | { checked: true; dataset: string; columns: string[]; findings: PersonalDataFinding[] }
    | { checked: false; reason: string };
  signature?: {
    inputs: SignatureInputCard[];
    target?: unknown;
    output?: unknown;
  };
}

export async function getModelCard(
  registry: SqlModelRegistry,
  name: string,
  version: string,
): Promise<ModelCard> {
  checkModelName(name);
  const v = checkVersion(version);
  const mv = await registry.getModelVersion(name, String(v));
  const stored = await registry.db
    .selectFrom('registry_model_cards')
    .selectAll()
    .where('name', '=', name)
    .where('version', '=', v)
    .executeTakeFirst();
  const run: Run | undefined =
    mv.run_id && registry.tracking
      ? await registry.tracking.getRun(mv.run_id).catch(() => undefined)
      : undefined;
  const tags = new Map((run?.data.tags ?? []).map((t) => [t.key, t.value]));
  const parts: Record<string, Record<string, number>> = {};
  const other: Record<string, number> = {};
  for (const m of run?.data.metrics ?? []) {
    const match = /^(test|valid|train)\.(.+)$/.exec(m.key);
    if (match) (parts[match[1]!] ??= {})[match[2]!] = m.value;
    else other[m.key] = m.value;
  }
  const split: Record<string, string> = {};
  for (const [k, val] of tags) if (k.startsWith('kiln.split.')) split[k.slice('kiln.split.'.length)] = val;
  const dsName = tags.get('kiln.dataset.name');
  const dsVersion = tags.get('kiln.dataset.version');
  const ctx = { store: registry.store, artifacts: registry.artifacts };
  let validation: ModelCard['training_data']['validation'];
  if (dsName && dsVersion) {
    const reports = await listValidations(ctx, { name: dsName, version: Number(dsVersion) }).catch(() => []);
    if (reports[0])
      validation = {
        passed: reports[0].passed,
        expectations: reports[0].results.length,
        checked_at: reports[0].checkedAt,
      };
  }
  const card: ModelCard = {
    name,
    version: mv.version,
    fields: stored ? ModelCardFieldsSchema.parse(JSON.parse(stored.fields_json)) : {},
    ...(stored
      ? { fields_updated_by: stored.updated_by, fields_updated_time: Number(stored.updated_time) }
      : {}),
    model: {
      ...(mv.description ? { description: mv.description } : {}),
      source: mv.source,
      ...(mv.run_id ? { run_id: mv.run_id } : {}),
      ...(mv.user_id ? { registered_by: mv.user_id } : {}),
      creation_timestamp: mv.creation_timestamp,
      aliases: mv.aliases,
      ...(tags.has('kiln.learner') ? { learner: tags.get('kiln.learner') } : {}),
      ...(tags.has('kiln.task') ? { task: tags.get('kiln.task') } : {}),
    },
    training_data: {
      ...(dsName && dsVersion
        ? {
            dataset: {
              name: dsName,
              version: Number(dsVersion),
              ...(tags.has('kiln.dataset.hash') ? { hash: tags.get('kiln.dataset.hash') } : {}),
              ...(tags.has('kiln.dataset.rows') ? { rows: Number(tags.get('kiln.dataset.rows')) } : {}),
            },
          }
        : {}),
      ...(tags.has('kiln.data.file') ? { file: tags.get('kiln.data.file') } : {}),
      split,
      ...(validation ? { validation } : {}),
    },
    evaluation: { parts, other },
    parameters: run?.data.params ?? [],
  };
  const cost = run ? runCostOf(run) : undefined;
  if (cost) card.cost = cost;
  if (run) {
    const use = await personalDataTouched(registry, run);
    card.personal_data_found =
      'missing' in use ? { checked: false, reason: use.missing } : { checked: true, ...use };
  }
  const signature = run
    ? await readSignature(registry, run)
    : await readImportedSignature(registry, mv.source);
  if (signature) {
    let profile: Awaited<ReturnType<typeof getDatasetProfile>> | undefined;
    if (dsName && dsVersion)
      profile = await getDatasetProfile(ctx, { name: dsName, version: Number(dsVersion) }).catch(
        () => undefined,
      );
    const columns = new Map((profile?.columns ?? []).map((c) => [c.name, c]));
    card.signature = {
      inputs: signature.inputs.map((input) => {
        const col = input.expr ? undefined : columns.get(input.name);
        return {
          name: input.name,
          type: input.type,
          ...(input.expr ? { expr: input.expr } : {}),
          ...(input.levels ? { levels: input.levels } : {}),
          ...(col && col.kind === 'numeric'
            ? { range: { min: col.min, max: col.max, missing: col.missing, count: col.count } }
            : {}),
        };
      }),
      target: signature.target,
      output: signature.output,
    };
  }
  return card;
}

/** An imported version's signature, stored next to its file in the registry's namespace. */
async function readImportedSignature(
  registry: SqlModelRegistry,
  source: string,
): Promise<SignatureFile | undefined> {
  if (!source.startsWith(REGISTRY_ARTIFACT_SCHEME)) return undefined;
  const folder = source.slice(REGISTRY_ARTIFACT_SCHEME.length).replace(/^\/+/, '');
  try {
    const parsed = JSON.parse(
      (await registry.artifacts.getBytes(`${folder}/signature.json`)).toString('utf8'),
    );
    if (!Array.isArray(parsed.inputs)) return undefined;
    return {
      inputs: parsed.inputs.map((i: { name: string; type: string; shape?: unknown[] }) => ({
        name: i.name,
        type: i.shape ? `${i.type}[${i.shape.join(', ')}]` : i.type,
      })),
      output: parsed.outputs,
    };
  } catch {
    return undefined;
  }
}

/** Replaces the editable fields given (others kept); audited with before and after. */
export async function updateModelCard(
  registry: SqlModelRegistry,
  name: string,
  version: string,
  fields: unknown,
  actor: Actor,
): Promise<ModelCard> {
  checkModelName(name);
  const v = checkVersion(version);
  const parsed = ModelCardFieldsSchema.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for model card field '${issue.path.join('.') || (issue as { keys?: string[] }).keys?.join(', ') || '(body)'}': ${issue.message}`,
    );
  }
  await registry.transaction(async (trx) => {
    await registry.liveModelRow(trx, name);
    await registry.liveVersionRow(trx, name, v);
    const existing = await trx
      .selectFrom('registry_model_cards')
      .select('fields_json')
      .where('name', '=', name)
      .where('version', '=', v)
      .executeTakeFirst();
    const before = existing ? (JSON.parse(existing.fields_json) as ModelCardFields) : {};
    const after = { ...before, ...parsed.data };
    const values = { fields_json: JSON.stringify(after), updated_by: actor.user, updated_time: Date.now() };
    if (existing) {
      await trx
        .updateTable('registry_model_cards')
        .set(values)
        .where('name', '=', name)
        .where('version', '=', v)
        .execute();
    } else {
      await trx
        .insertInto('registry_model_cards')
        .values({ name, version: v, ...values })
        .execute();
    }
    await appendAudit(trx, {
      actor: actor.user,
      action: 'card.update',
      target: `models:/${name}/${v}`,
      detail: { before, after },
    });
  });
  return getModelCard(registry, name, String(v));
}

const FIELD_TITLES: [keyof ModelCardFields, string][] = [
  ['intended_use', 'Intended use'],
  ['owner', 'Owner'],
  ['limitations', 'Known limitations'],
  ['personal_data', 'Personal data'],
  ['notes', 'Notes'],
];

const num = (x: number | null | undefined) =>
  x === null || x === undefined ? '—' : Number.isInteger(x) ? String(x) : x.toPrecision(6);
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderModelCardMarkdown(card: ModelCard): string {
  const out: string[] = [`# Model card: ${card.name} version ${card.version}`, ''];
  if (card.model.description) out.push(card.model.description, '');
  out.push(
    `- Source: \`${card.model.source}\``,
    ...(card.model.run_id ? [`- Run: \`${card.model.run_id}\``] : []),
    ...(card.model.learner
      ? [`- Learner: ${card.model.learner}${card.model.task ? ` (${card.model.task})` : ''}`]
      : []),
    ...(card.model.registered_by
      ? [
          `- Registered by: ${card.model.registered_by}, ${new Date(card.model.creation_timestamp).toISOString()}`,
        ]
      : []),
    `- Aliases: ${card.model.aliases.length ? card.model.aliases.join(', ') : 'none'}`,
    '',
  );
  for (const [key, title] of FIELD_TITLES) {
    out.push(`## ${title}`, '', card.fields[key]?.trim() || '_Not stated._', '');
  }
  out.push('## Personal data found in the features', '');
  const pd = card.personal_data_found;
  if (!pd) out.push('_Not checked (no run)._', '');
  else if (!pd.checked) out.push(`_Not checked: ${pd.reason}._`, '');
  else if (pd.findings.length === 0)
    out.push(`None found in ${pd.columns.join(', ') || 'no columns'} (${pd.dataset}).`, '');
  else {
    out.push('| column | kind | rows | share | examples (masked) |', '| --- | --- | ---: | ---: | --- |');
    for (const f of pd.findings)
      out.push(
        `| ${cell(f.column)} | ${f.kind} | ${f.rows}${f.exact ? '' : '+'} | ${(100 * f.share).toFixed(1)} % | ${cell(f.examples.join(', '))} |`,
      );
    out.push('');
  }
  out.push('## Training data', '');
  const td = card.training_data;
  if (td.dataset)
    out.push(
      `- Dataset: ${td.dataset.name}@${td.dataset.version}${td.dataset.hash ? ` (hash ${td.dataset.hash.slice(0, 12)})` : ''}${td.dataset.rows !== undefined ? `, ${td.dataset.rows} rows` : ''}`,
    );
  if (td.file) out.push(`- File: ${td.file}`);
  const splitText = Object.entries(td.split)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  out.push(`- Split: ${splitText || 'not recorded'}`);
  out.push(
    `- Validation: ${td.validation ? `${td.validation.passed ? 'passed' : 'FAILED'} (${td.validation.expectations} expectations, ${td.validation.checked_at})` : 'none recorded'}`,
    '',
  );
  out.push('## Evaluation', '');
  const parts = Object.keys(card.evaluation.parts);
  if (parts.length) {
    const names = [...new Set(parts.flatMap((p) => Object.keys(card.evaluation.parts[p]!)))].sort();
    out.push(`| metric | ${parts.join(' | ')} |`, `| --- | ${parts.map(() => '---:').join(' | ')} |`);
    for (const n of names)
      out.push(`| ${cell(n)} | ${parts.map((p) => num(card.evaluation.parts[p]![n])).join(' | ')} |`);
    out.push('');
  }
  const other = Object.entries(card.evaluation.other);
  if (other.length) {
    out.push(
      '| measurement | value |',
      '| --- | ---: |',
      ...other.map(([k, v]) => `| ${cell(k)} | ${num(v)} |`),
      '',
    );
  }
  if (!parts.length && !other.length) out.push('_No metrics recorded._', '');
  out.push(`## Cost${card.cost ? ` (${card.cost.currency})` : ''}`, '');
  if (card.cost) {
    out.push('| item | cost |', '| --- | --- |');
    for (const [k, v] of runCostLines(card.cost)) out.push(`| ${cell(k)} | ${cell(v)} |`);
    out.push('');
  } else out.push('_Not recorded (the run was not trained by kiln train)._', '');
  out.push('## Parameters', '');
  if (card.parameters.length) {
    out.push(
      '| parameter | value |',
      '| --- | --- |',
      ...card.parameters.map((p) => `| ${cell(p.key)} | ${cell(p.value)} |`),
      '',
    );
  } else out.push('_None recorded._', '');
  out.push('## Signature', '');
  if (card.signature) {
    out.push('| input | type | levels / range |', '| --- | --- | --- |');
    for (const i of card.signature.inputs) {
      const detail = i.levels
        ? `${i.levels.length} levels: ${i.levels.slice(0, 8).join(', ')}${i.levels.length > 8 ? ', …' : ''}`
        : i.range
          ? `${num(i.range.min)} … ${num(i.range.max)} (${i.range.missing} missing of ${i.range.count})`
          : i.expr
            ? `= ${i.expr}`
            : '';
      out.push(`| ${cell(i.name)} | ${i.type} | ${cell(detail)} |`);
    }
    out.push('');
  } else out.push('_No signature recorded with the model._', '');
  return out.join('\n');
}
