import { appendAudit, hasRole } from '../auth/index.js';
import { KilnError } from '../errors.js';
import { publishEvent } from '../events/index.js';
import { parseModelUri, resolveModelUri } from './model-uri.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { Actor } from './types.js';

/**
 * Stored deployments: a name → registry versions with a traffic split (canary) and an optional
 * shadow, as `kiln deploy set` writes them and `kiln serve deployments:/<name>` serves them.
 * They live with the registry, not in serve/, because lineage (a version → the deployments
 * serving it) is the registry's and serve/ already depends on the registry.
 *
 * Rules:
 * - Sources are `models:/` references only (a version, an alias, latest): a deployment changed
 *   over the API must not point a serving process at a file of the API caller's choosing, and
 *   every version it names is governed (audited, aliased, carded). Each must resolve when set.
 * - Setting or deleting needs the editor role on every registered model it names (before and
 *   after), and writes its audit entry and `deployment.set` event in the same transaction.
 */
export interface DeploymentRoute {
  /** `models:/name/7`, `models:/name@champion`. */
  model: string;
  weight: number;
}

export interface StoredDeployment {
  name: string;
  versions: DeploymentRoute[];
  shadow?: { model: string; share: number };
  updated_by: string;
  updated_timestamp: number;
}

export interface SetDeploymentRequest {
  name: string;
  versions: DeploymentRoute[];
  shadow?: { model: string; share: number };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/;
const MAX_ROUTES = 20;

const bad = (field: string, why: string) =>
  new KilnError('INVALID_PARAMETER_VALUE', `Invalid value for parameter '${field}': ${why}`);

export function checkDeploymentName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name))
    throw bad('name', "a deployment name: letters, digits, '_', '.', '-' (URL-safe), at most 256");
  return name;
}

function checkRequest(req: SetDeploymentRequest): SetDeploymentRequest {
  const name = checkDeploymentName(req.name);
  if (!Array.isArray(req.versions) || req.versions.length === 0 || req.versions.length > MAX_ROUTES)
    throw bad('versions', `1 to ${MAX_ROUTES} entries of { model: models:/…, weight }`);
  const seen = new Set<string>();
  const versions = req.versions.map((v, i) => {
    parseModelUri(v.model, `versions[${i}].model`);
    if (typeof v.weight !== 'number' || !Number.isFinite(v.weight) || v.weight < 0)
      throw bad(`versions[${i}].weight`, 'a number ≥ 0');
    if (seen.has(v.model.toLowerCase())) throw bad(`versions[${i}].model`, `'${v.model}' is listed twice`);
    seen.add(v.model.toLowerCase());
    return { model: v.model, weight: v.weight };
  });
  if (versions.reduce((s, v) => s + v.weight, 0) <= 0) throw bad('versions', 'the weights sum to 0');
  let shadow: SetDeploymentRequest['shadow'];
  if (req.shadow !== undefined) {
    parseModelUri(req.shadow.model, 'shadow.model');
    const share = req.shadow.share;
    if (typeof share !== 'number' || !(share >= 0 && share <= 1))
      throw bad('shadow.share', 'a number from 0 to 1');
    if (seen.has(req.shadow.model.toLowerCase()))
      throw bad('shadow.model', `'${req.shadow.model}' also takes live traffic`);
    shadow = { model: req.shadow.model, share };
  }
  return { name, versions, ...(shadow ? { shadow } : {}) };
}

function modelsNamed(d: { versions: DeploymentRoute[]; shadow?: { model: string } }): string[] {
  const names = [...d.versions, ...(d.shadow ? [d.shadow] : [])].map((v) => parseModelUri(v.model).name);
  return [...new Set(names)];
}

async function requireEditor(registry: SqlModelRegistry, actor: Actor, models: string[], what: string) {
  for (const model of models) {
    if (!(await hasRole(registry.db, actor.user, 'editor', model))) {
      throw new KilnError(
        'PERMISSION_DENIED',
        `${what} needs the editor role on '${model}'; ${actor.user} does not hold it (kiln auth grant --user ${actor.user} --role editor --scope ${model})`,
      );
    }
  }
}

export async function setDeployment(
  registry: SqlModelRegistry,
  input: SetDeploymentRequest,
  actor: Actor,
): Promise<StoredDeployment> {
  const req = checkRequest(input);
  const before = await findDeployment(registry, req.name);
  await requireEditor(
    registry,
    actor,
    [...new Set([...modelsNamed(req), ...(before ? modelsNamed(before) : [])])],
    `deploying ${req.name}`,
  );
  // Each reference must name something that exists now (a typo fails here, not in the server).
  const resolved: Record<string, string> = {};
  for (const v of [...req.versions, ...(req.shadow ? [req.shadow] : [])]) {
    const r = await resolveModelUri(registry, v.model);
    resolved[v.model] = `models:/${r.name}/${r.version}`;
  }
  const time = Date.now();
  const spec = { versions: req.versions, ...(req.shadow ? { shadow: req.shadow } : {}) };
  await registry.transaction(async (trx) => {
    const row = { spec_json: JSON.stringify(spec), updated_by: actor.user, updated_time: time };
    const updated = await trx
      .updateTable('serve_deployments')
      .set(row)
      .where('name', '=', req.name)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) === 0)
      await trx
        .insertInto('serve_deployments')
        .values({ name: req.name, ...row })
        .execute();
    const detail = {
      before: before ? { versions: before.versions, shadow: before.shadow } : null,
      after: spec,
      resolved,
      reason: actor.reason,
    };
    await appendAudit(trx, {
      actor: actor.user,
      action: 'deployment.set',
      target: `deployments:/${req.name}`,
      detail,
    });
    await publishEvent(trx, {
      type: 'deployment.set',
      subject: `deployments:/${req.name}`,
      actor: actor.user,
      payload: { name: req.name, ...detail },
    });
  });
  return { name: req.name, ...spec, updated_by: actor.user, updated_timestamp: time };
}

export async function deleteDeployment(
  registry: SqlModelRegistry,
  name: string,
  actor: Actor,
): Promise<void> {
  const before = await getDeployment(registry, name);
  await requireEditor(registry, actor, modelsNamed(before), `deleting deployment ${name}`);
  await registry.transaction(async (trx) => {
    await trx.deleteFrom('serve_deployments').where('name', '=', before.name).execute();
    await appendAudit(trx, {
      actor: actor.user,
      action: 'deployment.delete',
      target: `deployments:/${before.name}`,
      detail: { before: { versions: before.versions, shadow: before.shadow }, reason: actor.reason },
    });
  });
}

export async function getDeployment(registry: SqlModelRegistry, name: string): Promise<StoredDeployment> {
  const found = await findDeployment(registry, checkDeploymentName(name));
  if (!found)
    throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Deployment '${name}' not found (kiln deploy ls)`);
  return found;
}

export async function listDeployments(registry: SqlModelRegistry): Promise<StoredDeployment[]> {
  const rows = await registry.db.selectFrom('serve_deployments').selectAll().orderBy('name').execute();
  return rows.map(deploymentOf);
}

async function findDeployment(
  registry: SqlModelRegistry,
  name: string,
): Promise<StoredDeployment | undefined> {
  const row = await registry.db
    .selectFrom('serve_deployments')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  return row ? deploymentOf(row) : undefined;
}

function deploymentOf(r: {
  name: string;
  spec_json: string;
  updated_by: string;
  updated_time: number;
}): StoredDeployment {
  const spec = JSON.parse(r.spec_json) as Pick<StoredDeployment, 'versions' | 'shadow'>;
  return { name: r.name, ...spec, updated_by: r.updated_by, updated_timestamp: Number(r.updated_time) };
}

/** A deployment route serving a given version right now (its reference resolves to it). */
export interface DeploymentUse {
  deployment: string;
  via: string;
  /** Share of live traffic (0 for a shadow). */
  traffic: number;
  shadow: boolean;
}

/** Which stored deployments serve `name` version `version` now, resolving each alias as it stands. */
export async function deploymentsServing(
  registry: SqlModelRegistry,
  name: string,
  version: string,
): Promise<DeploymentUse[]> {
  const out: DeploymentUse[] = [];
  for (const d of await listDeployments(registry)) {
    const total = d.versions.reduce((s, v) => s + v.weight, 0);
    const routes = [
      ...d.versions.map((v) => ({ model: v.model, traffic: v.weight / total, shadow: false })),
      ...(d.shadow ? [{ model: d.shadow.model, traffic: 0, shadow: true }] : []),
    ];
    for (const r of routes) {
      if (parseModelUri(r.model).name !== name) continue;
      const resolved = await resolveModelUri(registry, r.model).catch(() => undefined);
      if (resolved?.version === version)
        out.push({ deployment: d.name, via: r.model, traffic: r.traffic, shadow: r.shadow });
    }
  }
  return out;
}
