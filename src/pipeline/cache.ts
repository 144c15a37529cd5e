import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetCatalog } from '../data/index.js';
import { KilnError } from '../errors.js';
import type { KeyInput } from './types.js';

/**
 * The step cache key: sha256 of the canonical JSON of what went into the step — its kind,
 * kiln's version, its parameters (references to other steps' files replaced by their content
 * hashes, so where an output happens to live does not matter), every input file and stored
 * dataset by content hash, and for a command its argv, env, cwd, declared outputs and the
 * content of its declared code files. `kiln pipeline explain` prints this object; a step can
 * keep named inputs and params out of it (`exclude_from_key`).
 */
export interface KeyExplain {
  kind: string;
  kiln_version: string;
  params: unknown;
  inputs: Record<string, { file?: string; sha256: string } | { dataset: string; hash: string }>;
  code: Record<string, string>;
  command?: { argv: unknown; env: unknown; cwd: string; outputs: Record<string, string> };
  excluded: string[];
}

/** JSON with object keys sorted at every depth: the same value always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function cacheKeyOf(explain: KeyExplain): string {
  return createHash('sha256').update(canonicalJson(explain)).digest('hex');
}

/** sha256 of a file, streamed. */
export async function sha256File(file: string, where: string): Promise<string> {
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: ${file} is not a file`);
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError('RESOURCE_DOES_NOT_EXIST', `${where}: cannot read ${file} (${(e as Error).message})`);
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Content hashes of a built-in kind's inputs (files, stored datasets). */
export async function hashKeyInputs(
  inputs: KeyInput[],
  datasets: DatasetCatalog,
  projectDir: string,
  where: string,
): Promise<KeyExplain['inputs']> {
  const out: KeyExplain['inputs'] = {};
  for (const input of inputs) {
    if ('file' in input)
      out[input.name] = {
        // Relative to the project, so a moved or re-cloned checkout keeps its cache.
        file: path.relative(projectDir, input.file).split(path.sep).join('/'),
        sha256: await sha256File(input.file, `${where}.${input.name}`),
      };
    else {
      const v = await datasets.getVersion(input.dataset);
      out[input.name] = { dataset: `${v.name}@${v.version}`, hash: v.hash };
    }
  }
  return out;
}
