import { findPersonalData, getDatasetProfile, type PersonalDataFinding } from '../data/index.js';
import type { Run } from '../tracking/index.js';
import { readSignature } from './run-signature.js';
import type { SqlModelRegistry } from './sql-registry.js';

/**
 * The personal data a model touches: data/personal-data.ts's findings on the profile of the
 * dataset version the model was trained on, kept to the columns the model reads — each
 * signature input's own column, and the raw columns a derived input's expression names
 * (`hour(date)` reads `date`). One reading for the gate's personal-data rule and the model
 * card, so the card lists exactly what the gate judged.
 */
export type PersonalDataUse =
  | { dataset: string; columns: string[]; findings: PersonalDataFinding[] }
  | { missing: string };

export async function personalDataTouched(registry: SqlModelRegistry, run: Run): Promise<PersonalDataUse> {
  const tags = new Map(run.data.tags.map((t) => [t.key, t.value]));
  const name = tags.get('kiln.dataset.name');
  const version = tags.get('kiln.dataset.version');
  if (!name || !version) {
    return {
      missing: `trained from ${tags.get('kiln.data.file') ?? 'data'} that is not a stored dataset version, so it has no profile to check (ingest it with kiln data ingest)`,
    };
  }
  const profile = await getDatasetProfile(
    { store: registry.store, artifacts: registry.artifacts },
    { name, version: Number(version) },
  ).catch(() => undefined);
  if (!profile) return { missing: `dataset ${name}@${version} has no readable profile` };
  const signature = await readSignature(registry, run);
  if (!signature) return { missing: `run ${run.info.run_id} has no model/signature.json naming its inputs` };
  const known = new Set(profile.columns.map((c) => c.name));
  const columns = new Set<string>();
  for (const input of signature.inputs) {
    if (!input.expr) {
      if (known.has(input.name)) columns.add(input.name);
      continue;
    }
    for (const word of input.expr.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [])
      if (known.has(word)) columns.add(word);
  }
  const findings = findPersonalData(profile).filter((f) => columns.has(f.column));
  return { dataset: `${name}@${version}`, columns: [...columns].sort(), findings };
}

export function describeFinding(f: PersonalDataFinding): string {
  return `${f.column}: ${f.kind} in ${f.rows} of ${f.examined} rows${f.exact ? '' : ' (at least)'}`;
}
