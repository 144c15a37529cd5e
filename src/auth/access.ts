import { KilnError } from '../errors.js';
import { ROLES, type Role, scopeMatches } from './roles.js';

/**
 * What a request may touch, decided without any HTTP in sight: the server's access hook
 * (src/server/access.ts) asks `checkAccess` with the route's declared role and the resources
 * the request names; the same rule would hold for any other front door.
 *
 * Scopes (a token's, written as `kiln auth token create --scope` takes them):
 * - `*`: everything;
 * - `experiment:ID`: that experiment and its runs (their metrics, params, artifacts);
 * - `model:NAME` or `model:GLOB` (`model:fraud-*`): registered models whose name matches,
 *   their versions, aliases, cards, policies; and, read-only, the runs those versions were
 *   registered from, since loading `models:/fraud@champion` reads the run's artifacts.
 *
 * A resource the request does not pin down (a search across experiments, the dataset
 * catalog, studies, the audit log) is `everything`: only a `*` token reaches it, so a scoped
 * token never sees rows outside its scope through a listing.
 */
export type Resource =
  | { kind: 'everything' }
  /** Named by the request but not found: inside no scope (a scoped token learns nothing of it). */
  | { kind: 'unknown' }
  | { kind: 'experiment'; id: string }
  | { kind: 'model'; name: string }
  /** A run: its experiment, and the registered models that have a version from it. */
  | { kind: 'run'; experimentId: string; models: readonly string[] };

export type ParsedScope =
  | { kind: 'all' }
  | { kind: 'experiment'; id: string }
  | { kind: 'model'; pattern: string };

const MAX_SCOPE = 300;

/** The normalised text of a scope, refusing anything else with a message naming `field`. */
export function parseScope(text: string, field = 'scope'): ParsedScope {
  const bad = (why: string) =>
    new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value '${text.slice(0, 80)}' for parameter '${field}': ${why}; expected '*', 'experiment:ID', 'model:NAME' or 'model:PATTERN*'`,
    );
  if (text === '*') return { kind: 'all' };
  if (text.length > MAX_SCOPE) throw bad(`at most ${MAX_SCOPE} characters`);
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (kind === 'experiment') {
    if (!/^\d{1,19}$/.test(rest)) throw bad('an experiment scope names one experiment id');
    return { kind: 'experiment', id: String(BigInt(rest)) };
  }
  if (kind === 'model') {
    if (rest === '' || /[\s/@]/.test(rest)) throw bad('a model name or glob, without spaces, / or @');
    return { kind: 'model', pattern: rest };
  }
  throw bad('unknown scope kind');
}

export function formatScope(scope: ParsedScope): string {
  if (scope.kind === 'all') return '*';
  return scope.kind === 'experiment' ? `experiment:${scope.id}` : `model:${scope.pattern}`;
}

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

/** Does `scope` reach `resource` for an action needing `need`? */
export function scopeCovers(scope: ParsedScope, resource: Resource, need: Role): boolean {
  if (scope.kind === 'all') return true;
  switch (resource.kind) {
    case 'everything':
    case 'unknown':
      return false;
    case 'experiment':
      return scope.kind === 'experiment' && scope.id === resource.id;
    case 'model':
      return scope.kind === 'model' && scopeMatches(scope.pattern, resource.name);
    case 'run':
      if (scope.kind === 'experiment') return scope.id === resource.experimentId;
      return need === 'viewer' && resource.models.some((m) => scopeMatches(scope.pattern, m));
  }
}

export type AccessDecision = { ok: true } | { ok: false; message: string };

/**
 * The decision for a principal holding `have` on `scope`. Refusal messages name the role and
 * the scope, never anything read from the resources (a refused caller learns no data).
 */
export function checkAccess(
  grant: { role: Role; scope: ParsedScope },
  need: Role,
  resources: readonly Resource[],
): AccessDecision {
  if (!roleAtLeast(grant.role, need)) {
    return { ok: false, message: `this needs the ${need} role; the token has ${grant.role}` };
  }
  const wanted: readonly Resource[] = resources.length === 0 ? [{ kind: 'everything' }] : resources;
  for (const resource of wanted) {
    if (!scopeCovers(grant.scope, resource, need)) {
      return {
        ok: false,
        message:
          resource.kind === 'everything'
            ? `this reaches beyond one experiment or model; the token is scoped to ${formatScope(grant.scope)}`
            : `outside the token's scope ${formatScope(grant.scope)}`,
      };
    }
  }
  return { ok: true };
}
