import type { Kysely, Transaction } from 'kysely';
import { KilnError } from '../errors.js';
import type { Database } from '../store/index.js';
import { appendAudit } from './audit.js';

/**
 * Roles, lowest to highest: each includes the ones before it. A grant is scoped to everything
 * (`*`) or to registered models whose name matches a glob (`fraud-*`).
 */
export const ROLES = ['viewer', 'editor', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

type Db = Kysely<Database> | Transaction<Database>;

export function parseRole(value: string, field = 'role'): Role {
  if (!(ROLES as readonly string[]).includes(value)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value '${value}' for parameter '${field}': expected one of ${ROLES.join(', ')}`,
    );
  }
  return value as Role;
}

/** Does `user` hold `role` (or a higher one) on registered model `modelName`? */
export async function hasRole(db: Db, user: string, role: Role, modelName: string): Promise<boolean> {
  const needed = ROLES.indexOf(role);
  const grants = await db
    .selectFrom('auth_role_grants')
    .select(['role', 'scope'])
    .where('user_id', '=', user)
    .execute();
  return grants.some((g) => ROLES.indexOf(g.role as Role) >= needed && scopeMatches(g.scope, modelName));
}

export function scopeMatches(scope: string, name: string): boolean {
  if (scope === '*') return true;
  const pattern = new RegExp(
    `^${scope
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return pattern.test(name);
}

export interface RoleGrant {
  user_id: string;
  role: Role;
  scope: string;
  granted_by: string;
  time: number;
}

export async function grantRole(
  db: Kysely<Database>,
  grant: { user: string; role: Role; scope?: string },
  by: string,
): Promise<void> {
  const scope = grant.scope ?? '*';
  if (grant.user.trim() === '')
    throw new KilnError('INVALID_PARAMETER_VALUE', "Missing value for parameter 'user'");
  if (scope === '' || scope.length > 256) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for parameter 'scope': 1 to 256 characters, '*' or a name pattern`,
    );
  }
  await db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom('auth_role_grants')
      .select('user_id')
      .where('user_id', '=', grant.user)
      .where('role', '=', grant.role)
      .where('scope', '=', scope)
      .executeTakeFirst();
    if (existing) return;
    await trx
      .insertInto('auth_role_grants')
      .values({ user_id: grant.user, role: grant.role, scope, granted_by: by, time: Date.now() })
      .execute();
    await appendAudit(trx, {
      actor: by,
      action: 'role.grant',
      target: `user:${grant.user}`,
      detail: { role: grant.role, scope },
    });
  });
}

export async function revokeRole(
  db: Kysely<Database>,
  grant: { user: string; role: Role; scope?: string },
  by: string,
): Promise<boolean> {
  const scope = grant.scope ?? '*';
  return db.transaction().execute(async (trx) => {
    const result = await trx
      .deleteFrom('auth_role_grants')
      .where('user_id', '=', grant.user)
      .where('role', '=', grant.role)
      .where('scope', '=', scope)
      .executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) return false;
    await appendAudit(trx, {
      actor: by,
      action: 'role.revoke',
      target: `user:${grant.user}`,
      detail: { role: grant.role, scope },
    });
    return true;
  });
}

export async function listRoleGrants(db: Db): Promise<RoleGrant[]> {
  const rows = await db
    .selectFrom('auth_role_grants')
    .selectAll()
    .orderBy('user_id')
    .orderBy('role')
    .execute();
  return rows.map((r) => ({ ...r, role: r.role as Role, time: Number(r.time) }));
}
