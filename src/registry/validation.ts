import { KilnError } from '../errors.js';
import type { KeyValue } from '../tracking/index.js';
import { MODEL_STAGES, type ModelStage } from './types.js';

/**
 * MLflow's registry input rules (mlflow/utils/validation.py), with its messages and
 * INVALID_PARAMETER_VALUE, plus the column sizes of the tables so no value is cut short.
 */
export const REGISTRY_LIMITS = {
  nameLength: 256,
  aliasLength: 255,
  tagKeyLength: 250,
  tagValueLength: 5000,
  descriptionLength: 5000,
  sourceLength: 4000,
  runLinkLength: 4000,
  tagsPerRequest: 100,
  searchModelsDefault: 100,
  searchModelsMax: 1000,
  searchVersionsDefault: 10000,
  searchVersionsMax: 200_000,
} as const;

function invalid(message: string): KilnError {
  return new KilnError('INVALID_PARAMETER_VALUE', message);
}

function checkLength(field: string, value: string, limit: number): void {
  if (value.length > limit) {
    throw invalid(
      `Invalid value for parameter '${field}': length ${value.length} exceeds the limit of ${limit} characters ('${value.slice(0, 40)}…')`,
    );
  }
}

export function checkModelName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || name === '') {
    throw invalid(`Registered model name cannot be empty. (parameter '${field}')`);
  }
  checkLength(field, name, REGISTRY_LIMITS.nameLength);
  // Not MLflow's rule but a real hazard: a name is a path segment in models:/ URIs and the
  // registry's artifact namespace, so no slash, '@', NUL or surrounding spaces.
  if (/[/@\0]/.test(name) || name.trim() !== name) {
    throw invalid(
      `Invalid value '${name.slice(0, 60)}' for parameter '${field}': a registered model name may not contain '/', '@', NUL or leading/trailing spaces`,
    );
  }
  return name;
}

/** Versions are positive integers; the API spells them as strings. */
export function checkVersion(version: unknown, field = 'version'): number {
  const text = typeof version === 'number' ? String(version) : version;
  if (typeof text !== 'string' || !/^\d{1,9}$/.test(text) || Number(text) < 1) {
    throw invalid(
      `Model version must be an integer, got '${String(version).slice(0, 40)}' (parameter '${field}')`,
    );
  }
  return Number(text);
}

export function checkAlias(alias: unknown, field = 'alias'): string {
  if (typeof alias !== 'string' || alias === '') {
    throw invalid(`Registered model alias name cannot be empty. (parameter '${field}')`);
  }
  if (!/^[\w-]*$/u.test(alias)) {
    throw invalid(
      `Invalid alias name: '${alias.slice(0, 60)}'. Names may only contain alphanumerics, underscores (_) and dashes (-). (parameter '${field}')`,
    );
  }
  checkLength(field, alias, REGISTRY_LIMITS.aliasLength);
  if (alias.toLowerCase() === 'latest') throw invalid("'latest' alias name (case insensitive) is reserved.");
  if (/^[vV]\d+$/.test(alias)) throw invalid(`Version alias name '${alias}' is reserved.`);
  return alias;
}

export function checkTag(key: unknown, value: unknown, field = 'tags'): KeyValue {
  if (typeof key !== 'string' || key === '') {
    throw invalid(
      `Missing value for required parameter '${field === 'tags' ? 'key' : `${field}.key`}': a tag key must be a non-empty string`,
    );
  }
  if (!/^[/\w.\- :]*$/u.test(key)) {
    throw invalid(
      `Invalid tag name: '${key.slice(0, 60)}' in '${field}'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/).`,
    );
  }
  checkLength(`${field}.key`, key, REGISTRY_LIMITS.tagKeyLength);
  if (typeof value !== 'string')
    throw invalid(`Invalid value for parameter '${field}.value': expected a string`);
  checkLength(`${field}.value`, value, REGISTRY_LIMITS.tagValueLength);
  return { key, value };
}

export function checkTags(tags: KeyValue[] | undefined): KeyValue[] {
  if (tags === undefined) return [];
  if (tags.length > REGISTRY_LIMITS.tagsPerRequest) {
    throw invalid(
      `Invalid value for parameter 'tags': at most ${REGISTRY_LIMITS.tagsPerRequest} tags, got ${tags.length}`,
    );
  }
  const byKey = new Map<string, string>();
  tags.forEach((t, i) => {
    const tag = checkTag(t.key, t.value, `tags[${i}]`);
    byKey.set(tag.key, tag.value);
  });
  return [...byKey].map(([key, value]) => ({ key, value }));
}

export function checkDescription(description: unknown, field = 'description'): string | undefined {
  if (description === undefined || description === null) return undefined;
  if (typeof description !== 'string')
    throw invalid(`Invalid value for parameter '${field}': expected a string`);
  checkLength(field, description, REGISTRY_LIMITS.descriptionLength);
  return description;
}

/** MLflow's stage names, case-insensitive in, canonical out. */
export function canonicalStage(stage: string): ModelStage {
  const found = MODEL_STAGES.find((s) => s.toLowerCase() === stage.toLowerCase());
  if (!found) {
    throw invalid(`Invalid Model Version stage: ${stage}. Value must be one of ${MODEL_STAGES.join(', ')}.`);
  }
  return found;
}

/**
 * MLflow's source rules (server/handlers.py `_validate_source`): no relative segments, no NUL,
 * even once URL-decoded; a local path is only allowed inside the artifact folder of the run
 * that produced it (the caller checks that part, it needs the run).
 */
export function checkSource(source: unknown): string {
  if (typeof source !== 'string' || source === '') {
    throw invalid("Missing value for required parameter 'source'");
  }
  checkLength('source', source, REGISTRY_LIMITS.sourceLength);
  let decoded = source;
  for (let i = 0; i < 5; i++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded.replace(/\+/g, ' '));
    } catch {
      break;
    }
    if (next === decoded) break;
    decoded = next;
  }
  if (decoded.includes('\0') || decoded.split(/[/\\]/).some((p) => p === '..')) {
    throw invalid(
      `Invalid model version source: '${source.slice(0, 200)}'. An absolute path must be provided without relative path references present. (parameter 'source')`,
    );
  }
  return source;
}

/** A source naming the local file system rather than a store or a run. */
export function isLocalSource(source: string): boolean {
  return (
    source.startsWith('/') ||
    /^file:/i.test(source) ||
    /^[a-zA-Z]:[\\/]/.test(source) ||
    !/^[a-zA-Z][\w+.-]*:/.test(source)
  );
}
