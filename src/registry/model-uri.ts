import { KilnError } from '../errors.js';
import type { ModelRegistry, ModelVersion } from './types.js';
import { checkAlias, checkModelName, checkVersion } from './validation.js';

/**
 * `models:/` URIs, as MLflow writes them: `models:/name/3` (a version), `models:/name@champion`
 * (an alias), `models:/name/latest` (the newest live version), and MLflow's older
 * `models:/name/Production` (the newest version in a stage). The scheme is case-insensitive.
 */
export type ModelUriRef =
  | { name: string; version: number; alias?: undefined; stage?: undefined }
  | { name: string; alias: string; version?: undefined; stage?: undefined }
  | { name: string; stage: string; version?: undefined; alias?: undefined }
  | { name: string; latest: true; version?: undefined; alias?: undefined; stage?: undefined };

export function isModelUri(uri: string): boolean {
  return /^models:\//i.test(uri);
}

export function parseModelUri(uri: string, field = 'uri'): ModelUriRef {
  const bad = (why: string) =>
    new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid model URI '${uri.slice(0, 200)}' for '${field}': ${why}`,
    );
  const match = /^models:\/+(.+)$/i.exec(uri);
  if (!match) throw bad('expected models:/<name>/<version> or models:/<name>@<alias>');
  const rest = match[1]!.replace(/\/+$/, '');
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const name = rest.slice(0, at);
    const alias = rest.slice(at + 1);
    if (name.includes('/')) throw bad('expected models:/<name>@<alias>');
    return { name: checkModelName(name, field), alias: checkAlias(alias, field) };
  }
  const slash = rest.lastIndexOf('/');
  if (slash < 0) throw bad('missing the version or alias (models:/<name>/<version>, models:/<name>@<alias>)');
  const name = checkModelName(rest.slice(0, slash), field);
  const tail = rest.slice(slash + 1);
  if (/^\d+$/.test(tail)) return { name, version: checkVersion(tail, field) };
  if (tail.toLowerCase() === 'latest') return { name, latest: true };
  if (['none', 'staging', 'production', 'archived'].includes(tail.toLowerCase()))
    return { name, stage: tail };
  throw bad(`'${tail}' is not a version number, 'latest' or a stage`);
}

export interface ResolvedModel {
  /** The URI asked for. */
  uri: string;
  name: string;
  version: string;
  /** The alias it was resolved through, if any. */
  alias?: string;
  /** Where the model's files are (get-download-uri): a run's artifact URI or a store URI. */
  storageLocation: string;
  modelVersion: ModelVersion;
}

/**
 * The one place a `models:/` URI becomes a concrete version and file location. Everything
 * that takes a model (the model-package reader, serving, batch scoring) resolves through it,
 * so an alias means the same version everywhere at the same moment.
 */
export async function resolveModelUri(registry: ModelRegistry, uri: string): Promise<ResolvedModel> {
  const ref = parseModelUri(uri);
  let version: ModelVersion;
  if (ref.alias !== undefined) {
    version = await registry.getModelVersionByAlias(ref.name, ref.alias);
  } else if (ref.version !== undefined) {
    version = await registry.getModelVersion(ref.name, String(ref.version));
  } else {
    const model = await registry.getRegisteredModel(ref.name);
    const candidates =
      'latest' in ref
        ? model.latest_versions
        : model.latest_versions.filter((v) => v.current_stage.toLowerCase() === ref.stage!.toLowerCase());
    const newest = candidates.reduce<ModelVersion | undefined>(
      (best, v) => (!best || Number(v.version) > Number(best.version) ? v : best),
      undefined,
    );
    if (!newest) {
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        `No versions of model with name '${ref.name}'${'latest' in ref ? '' : ` and stage '${ref.stage}'`} found (resolving ${uri})`,
      );
    }
    version = newest;
  }
  return {
    uri,
    name: version.name,
    version: version.version,
    ...(ref.alias !== undefined ? { alias: ref.alias } : {}),
    storageLocation: await registry.getModelVersionDownloadUri(version.name, version.version),
    modelVersion: version,
  };
}
