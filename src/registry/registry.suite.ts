import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readAuditLog, verifyAuditChain } from '../auth/index.js';
import { KilnError } from '../errors.js';
import type { TrackingStore } from '../tracking/index.js';
import { resolveModelUri } from './model-uri.js';
import type { SqlModelRegistry } from './sql-registry.js';

export interface RegistryFixture {
  registry: SqlModelRegistry;
  tracking: TrackingStore;
  close(): Promise<void>;
}

/** What a KilnError-throwing call throws, for asserting code and message together. */
export async function failure(p: Promise<unknown>): Promise<KilnError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

const alice = { user: 'alice' };

/**
 * The registry's behaviour on one backend: MLflow's semantics for models, versions, tags and
 * aliases, kiln's soft delete, alias history and protection, race-free version numbers and
 * the audit chain. Each backend's test file calls this with its own fixture factory.
 */
export function runRegistrySuite(label: string, makeFixture: () => Promise<RegistryFixture>): void {
  describe(`model registry (${label})`, () => {
    let fx: RegistryFixture;
    let reg: SqlModelRegistry;
    beforeEach(async () => {
      fx = await makeFixture();
      reg = fx.registry;
    });
    afterEach(async () => fx.close());

    async function runWithModel(): Promise<string> {
      const run = await fx.tracking.createRun({ experiment_id: '0', run_name: 'train' });
      return run.info.run_id;
    }

    it('creates, gets, updates and tags a registered model with MLflow JSON', async () => {
      const created = await reg.createRegisteredModel(
        { name: 'fraud', description: 'card fraud', tags: [{ key: 'team', value: 'risk' }] },
        alice,
      );
      expect(created).toMatchObject({
        name: 'fraud',
        description: 'card fraud',
        tags: [{ key: 'team', value: 'risk' }],
        aliases: [],
        latest_versions: [],
        user_id: 'alice',
      });
      expect(created.creation_timestamp).toBeGreaterThan(0);
      const dup = await failure(reg.createRegisteredModel({ name: 'fraud' }));
      expect(dup.code).toBe('RESOURCE_ALREADY_EXISTS');
      expect(dup.message).toContain('Registered Model (name=fraud) already exists');

      await reg.updateRegisteredModel('fraud', 'v2 description', alice);
      await reg.setRegisteredModelTag('fraud', 'team', 'payments', alice);
      await reg.setRegisteredModelTag('fraud', 'tier', '1', alice);
      await reg.deleteRegisteredModelTag('fraud', 'tier', alice);
      const got = await reg.getRegisteredModel('fraud');
      expect(got.description).toBe('v2 description');
      expect(got.tags).toEqual([{ key: 'team', value: 'payments' }]);

      const missing = await failure(reg.getRegisteredModel('nope'));
      expect(missing.code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(missing.message).toBe('Registered Model with name=nope not found');
      expect((await failure(reg.createRegisteredModel({ name: '' }))).message).toContain('cannot be empty');
      expect((await failure(reg.createRegisteredModel({ name: 'a/b' }))).code).toBe(
        'INVALID_PARAMETER_VALUE',
      );
      const long = await failure(reg.createRegisteredModel({ name: 'x', description: 'd'.repeat(5001) }));
      expect(long.message).toContain("'description'");
    });

    it('searches registered models with MLflow filters, order_by and page tokens', async () => {
      for (const name of ['alpha', 'beta', 'gamma', 'Gamma-2']) {
        await reg.createRegisteredModel({
          name,
          tags: name.startsWith('g') ? [{ key: 'kind', value: 'g' }] : [],
        });
      }
      const all = await reg.searchRegisteredModels({});
      expect(all.items.map((m) => m.name)).toEqual(['Gamma-2', 'alpha', 'beta', 'gamma']);
      expect(
        (await reg.searchRegisteredModels({ filter: "name LIKE 'g%'" })).items.map((m) => m.name),
      ).toEqual(['gamma']);
      expect(
        (await reg.searchRegisteredModels({ filter: "name ILIKE 'g%'" })).items.map((m) => m.name),
      ).toEqual(['Gamma-2', 'gamma']);
      expect(
        (await reg.searchRegisteredModels({ filter: "tags.kind = 'g'" })).items.map((m) => m.name),
      ).toEqual(['gamma']);
      expect(
        (await reg.searchRegisteredModels({ filter: "name != 'alpha'", order_by: ['name DESC'] })).items.map(
          (m) => m.name,
        ),
      ).toEqual(['gamma', 'beta', 'Gamma-2']);
      const page1 = await reg.searchRegisteredModels({ max_results: 3 });
      expect(page1.items).toHaveLength(3);
      expect(page1.next_page_token).toBeTruthy();
      const page2 = await reg.searchRegisteredModels({ max_results: 3, page_token: page1.next_page_token });
      expect(page2.items.map((m) => m.name)).toEqual(['gamma']);
      expect(page2.next_page_token).toBeUndefined();

      const badAttr = await failure(reg.searchRegisteredModels({ filter: "run_id = 'x'" }));
      expect(badAttr.code).toBe('INVALID_PARAMETER_VALUE');
      expect(badAttr.message).toContain("invalid attribute key 'run_id'");
      expect((await failure(reg.searchRegisteredModels({ filter: "name IN ('a')" }))).message).toContain(
        "comparator 'IN'",
      );
      expect((await failure(reg.searchRegisteredModels({ max_results: 1001 }))).message).toContain(
        'at most 1000',
      );
      expect((await failure(reg.searchRegisteredModels({ order_by: ['bogus'] }))).code).toBe(
        'INVALID_PARAMETER_VALUE',
      );
      expect((await failure(reg.searchRegisteredModels({ page_token: 'garbage!' }))).message).toContain(
        'page_token',
      );
    });

    it('creates versions from runs, resolves runs:/ sources and searches them', async () => {
      const runId = await runWithModel();
      const run = await fx.tracking.getRun(runId);
      await reg.createRegisteredModel({ name: 'fraud' });
      const v1 = await reg.createModelVersion(
        { name: 'fraud', source: `runs:/${runId}/model`, run_id: runId },
        alice,
      );
      expect(v1).toMatchObject({
        name: 'fraud',
        version: '1',
        current_stage: 'None',
        status: 'READY',
        run_id: runId,
        user_id: 'alice',
      });
      expect(await reg.getModelVersionDownloadUri('fraud', '1')).toBe(`${run.info.artifact_uri}/model`);
      const v2 = await reg.createModelVersion({
        name: 'fraud',
        source: 'mlflow-artifacts:/0/abc/artifacts/model',
        tags: [{ key: 'k', value: 'v' }],
        description: 'second',
      });
      expect(v2.version).toBe('2');
      expect((await reg.getRegisteredModel('fraud')).latest_versions.map((v) => v.version)).toEqual(['2']);

      const byRun = await reg.searchModelVersions({ filter: `run_id = '${runId}'` });
      expect(byRun.items.map((v) => v.version)).toEqual(['1']);
      expect((await reg.searchModelVersions({ filter: `run_id IN ('${runId}', 'zzz')` })).items).toHaveLength(
        1,
      );
      expect(
        (await reg.searchModelVersions({ filter: "name = 'fraud' AND tags.k = 'v'" })).items.map(
          (v) => v.version,
        ),
      ).toEqual(['2']);
      expect(
        (await reg.searchModelVersions({ filter: 'version_number >= 2' })).items.map((v) => v.version),
      ).toEqual(['2']);
      expect(
        (
          await reg.searchModelVersions({ filter: "name = 'fraud'", order_by: ['version_number ASC'] })
        ).items.map((v) => v.version),
      ).toEqual(['1', '2']);
      const paged = await reg.searchModelVersions({ max_results: 1, order_by: ['version_number ASC'] });
      expect(paged.items.map((v) => v.version)).toEqual(['1']);
      const rest = await reg.searchModelVersions({
        max_results: 1,
        order_by: ['version_number ASC'],
        page_token: paged.next_page_token,
      });
      expect(rest.items.map((v) => v.version)).toEqual(['2']);

      await reg.updateModelVersion('fraud', '1', 'first', alice);
      await reg.setModelVersionTag('fraud', '1', 'validated', 'yes', alice);
      await reg.deleteModelVersionTag('fraud', '2', 'k', alice);
      const got1 = await reg.getModelVersion('fraud', '1');
      expect(got1.description).toBe('first');
      expect(got1.tags).toEqual([{ key: 'validated', value: 'yes' }]);
      expect((await reg.getModelVersion('fraud', '2')).tags).toEqual([]);

      const missingRun = await failure(
        reg.createModelVersion({ name: 'fraud', source: 'runs:/deadbeef/model' }),
      );
      expect(missingRun.code).toBe('RESOURCE_DOES_NOT_EXIST');
      const local = await failure(reg.createModelVersion({ name: 'fraud', source: '/etc/passwd' }));
      expect(local.code).toBe('INVALID_PARAMETER_VALUE');
      expect(local.message).toContain('Invalid model version source');
      const traversal = await failure(
        reg.createModelVersion({ name: 'fraud', source: 's3://b/models/..%2f..%2fsecret' }),
      );
      expect(traversal.message).toContain('relative path');
      expect((await failure(reg.createModelVersion({ name: 'nope', source: 's3://b/m' }))).code).toBe(
        'RESOURCE_DOES_NOT_EXIST',
      );
      expect((await failure(reg.getModelVersion('fraud', 'x'))).message).toContain(
        "Model version must be an integer, got 'x'",
      );
      const notThere = await failure(reg.getModelVersion('fraud', '9'));
      expect(notThere.code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(notThere.message).toBe('Model Version (name=fraud, version=9) not found');
    });

    it('gives concurrent registrations distinct consecutive versions', async () => {
      await reg.createRegisteredModel({ name: 'race' });
      const created = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          reg.createModelVersion({ name: 'race', source: `s3://bucket/m${i}` }),
        ),
      );
      expect(created.map((v) => Number(v.version)).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 12 }, (_, i) => i + 1),
      );
      const sources = new Map(created.map((v) => [v.version, v.source]));
      expect(sources.size).toBe(12);
      expect((await verifyAuditChain(reg.db)).ok).toBe(true);
    });

    it('racing alias sets (the first one included) all succeed, one after another, history and chain whole', async () => {
      await reg.createRegisteredModel({ name: 'race' });
      for (let i = 0; i < 6; i++) await reg.createModelVersion({ name: 'race', source: `s3://b/${i}` });
      // Six writers at once on an alias that does not exist yet (replicas behind a balancer).
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => reg.setAlias('race', 'champion', String(i + 1), { user: 'ops' })),
      );
      expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(
        Array(6).fill('ok'),
      );
      const history = await reg.aliasHistory('race', 'champion');
      expect(history).toHaveLength(6);
      // Each move starts where the previous one left the alias; the last is where it is.
      for (let i = 1; i < history.length; i++)
        expect(history[i]!.from_version).toBe(history[i - 1]!.to_version);
      expect((await reg.getModelVersionByAlias('race', 'champion')).version).toBe(history[5]!.to_version);
      expect((await verifyAuditChain(reg.db)).ok).toBe(true);
    });

    it('sets, gets and deletes aliases, with MLflow reserved names and the alias history', async () => {
      await reg.createRegisteredModel({ name: 'm' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/1' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/2' });
      await reg.setAlias('m', 'champion', '1', { user: 'alice', reason: 'first release' });
      const t1 = Date.now();
      await new Promise((r) => setTimeout(r, 5));
      await reg.setAlias('m', 'champion', '2', { user: 'bob', reason: 'better auc' });
      expect((await reg.getModelVersionByAlias('m', 'champion')).version).toBe('2');
      expect((await reg.getModelVersion('m', '2')).aliases).toEqual(['champion']);
      expect((await reg.getRegisteredModel('m')).aliases).toEqual([{ alias: 'champion', version: '2' }]);
      expect(await reg.aliasAt('m', 'champion', t1)).toBe('1');
      expect(await reg.aliasAt('m', 'champion', Date.now())).toBe('2');
      expect(await reg.aliasAt('m', 'champion', 0)).toBeNull();
      await reg.deleteAlias('m', 'champion', { user: 'carol', reason: 'incident 42' });
      const notFound = await failure(reg.getModelVersionByAlias('m', 'champion'));
      expect(notFound.code).toBe('INVALID_PARAMETER_VALUE');
      expect(notFound.message).toBe('Registered model alias champion not found.');
      const history = await reg.aliasHistory('m', 'champion');
      expect(history.map((e) => [e.from_version, e.to_version, e.actor, e.reason])).toEqual([
        [null, '1', 'alice', 'first release'],
        ['1', '2', 'bob', 'better auc'],
        ['2', null, 'carol', 'incident 42'],
      ]);
      expect((await failure(reg.setAlias('m', 'latest', '1'))).message).toContain("'latest' alias name");
      expect((await failure(reg.setAlias('m', 'v3', '1'))).message).toContain(
        "Version alias name 'v3' is reserved",
      );
      expect((await failure(reg.setAlias('m', 'bad alias', '1'))).message).toContain('Invalid alias name');
      expect((await failure(reg.setAlias('m', 'x', '7'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      // Setting the alias to where it already points records nothing new.
      await reg.setAlias('m', 'challenger', '1');
      await reg.setAlias('m', 'challenger', '1');
      expect(await reg.aliasHistory('m', 'challenger')).toHaveLength(1);
    });

    it('refuses to move a protected alias outside the gate and to delete the version holding it', async () => {
      await reg.createRegisteredModel({ name: 'm' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/1' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/2' });
      await reg.setAlias('m', 'champion', '1');
      await reg.protectAlias('m', 'champion', true, alice);
      expect(await reg.protectedAliases('m')).toEqual(['champion']);
      const moved = await failure(reg.setAlias('m', 'champion', '2'));
      expect(moved.code).toBe('PERMISSION_DENIED');
      expect(moved.message).toContain('protected');
      expect((await failure(reg.deleteAlias('m', 'champion'))).code).toBe('PERMISSION_DENIED');
      expect((await failure(reg.deleteModelVersion('m', '1'))).code).toBe('PERMISSION_DENIED');
      expect((await reg.getModelVersionByAlias('m', 'champion')).version).toBe('1');
      await reg.protectAlias('m', 'champion', false, alice);
      await reg.setAlias('m', 'champion', '2');
    });

    it('soft-deletes and restores versions and models; deleted names stay taken', async () => {
      await reg.createRegisteredModel({ name: 'm' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/1' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/2' });
      await reg.setAlias('m', 'champion', '2');
      await reg.deleteModelVersion('m', '2', { user: 'alice', reason: 'leak' });
      expect((await failure(reg.getModelVersion('m', '2'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect((await reg.searchModelVersions({ filter: "name = 'm'" })).items.map((v) => v.version)).toEqual([
        '1',
      ]);
      expect((await reg.getRegisteredModel('m')).aliases).toEqual([]);
      const history = await reg.aliasHistory('m', 'champion');
      expect(history.at(-1)).toMatchObject({ from_version: '2', to_version: null, reason: 'leak' });
      // The number is not handed out again.
      expect((await reg.createModelVersion({ name: 'm', source: 's3://b/3' })).version).toBe('3');
      expect((await reg.restoreModelVersion('m', '2', alice)).version).toBe('2');
      expect((await failure(reg.restoreModelVersion('m', '2'))).code).toBe('INVALID_STATE');

      await reg.deleteRegisteredModel('m', alice);
      expect((await failure(reg.getRegisteredModel('m'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect((await reg.searchRegisteredModels({})).items).toEqual([]);
      expect((await reg.searchModelVersions({})).items).toEqual([]);
      const taken = await failure(reg.createRegisteredModel({ name: 'm' }));
      expect(taken.code).toBe('RESOURCE_ALREADY_EXISTS');
      expect(taken.message).toContain('deleted');
      await reg.restoreRegisteredModel('m', alice);
      expect((await reg.getRegisteredModel('m')).latest_versions.map((v) => v.version)).toEqual(['3']);
    });

    it('renames a model with its versions, tags, aliases and history', async () => {
      await reg.createRegisteredModel({ name: 'old', tags: [{ key: 't', value: '1' }] });
      await reg.createModelVersion({ name: 'old', source: 's3://b/1', tags: [{ key: 'vt', value: 'x' }] });
      await reg.setAlias('old', 'champion', '1');
      const renamed = await reg.renameRegisteredModel('old', 'new', alice);
      expect(renamed).toMatchObject({
        name: 'new',
        tags: [{ key: 't', value: '1' }],
        aliases: [{ alias: 'champion', version: '1' }],
      });
      expect((await reg.getModelVersion('new', '1')).tags).toEqual([{ key: 'vt', value: 'x' }]);
      expect(await reg.aliasHistory('new', 'champion')).toHaveLength(1);
      expect((await failure(reg.getRegisteredModel('old'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      await reg.createRegisteredModel({ name: 'other' });
      expect((await failure(reg.renameRegisteredModel('other', 'new'))).code).toBe('RESOURCE_ALREADY_EXISTS');
      expect((await reg.createModelVersion({ name: 'new', source: 's3://b/2' })).version).toBe('2');
    });

    it('transitions stages for old clients, archiving the previous holder', async () => {
      await reg.createRegisteredModel({ name: 'm' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/1' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/2' });
      await reg.transitionModelVersionStage('m', '1', 'production', false);
      const v2 = await reg.transitionModelVersionStage('m', '2', 'Production', true);
      expect(v2.current_stage).toBe('Production');
      expect((await reg.getModelVersion('m', '1')).current_stage).toBe('Archived');
      expect((await reg.getLatestVersions('m', ['Production'])).map((v) => v.version)).toEqual(['2']);
      expect((await failure(reg.transitionModelVersionStage('m', '1', 'Prod', false))).message).toContain(
        'Invalid Model Version stage: Prod',
      );
      expect((await failure(reg.transitionModelVersionStage('m', '1', 'Archived', true))).message).toContain(
        'not an Active stage',
      );
    });

    it('resolves models:/ URIs by version, alias, latest and stage', async () => {
      await reg.createRegisteredModel({ name: 'm' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/1' });
      await reg.createModelVersion({ name: 'm', source: 's3://b/2' });
      await reg.setAlias('m', 'champion', '1');
      await reg.transitionModelVersionStage('m', '2', 'Staging', false);
      expect(await resolveModelUri(reg, 'models:/m/2')).toMatchObject({
        name: 'm',
        version: '2',
        storageLocation: 's3://b/2',
      });
      expect(await resolveModelUri(reg, 'MODELS:/m@champion')).toMatchObject({
        version: '1',
        alias: 'champion',
        storageLocation: 's3://b/1',
      });
      expect((await resolveModelUri(reg, 'models:/m/latest')).version).toBe('2');
      expect((await resolveModelUri(reg, 'models:/m/Staging')).version).toBe('2');
      expect((await failure(resolveModelUri(reg, 'models:/m@nobody'))).message).toContain(
        'alias nobody not found',
      );
      expect((await failure(resolveModelUri(reg, 'models:/m'))).code).toBe('INVALID_PARAMETER_VALUE');
      expect((await failure(resolveModelUri(reg, 'models:/m/abc'))).message).toContain(
        "'abc' is not a version",
      );
      expect((await failure(resolveModelUri(reg, 'models:/ghost/1'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      // A version registered from a models:/ source reads the files of the version it names.
      const copy = await reg.createModelVersion({ name: 'm', source: 'models:/m@champion' });
      expect(await reg.getModelVersionDownloadUri('m', copy.version)).toBe('s3://b/1');
    });

    it('records every mutation in the audit chain, in the same transaction', async () => {
      await reg.createRegisteredModel({ name: 'm' }, alice);
      await reg.createModelVersion({ name: 'm', source: 's3://b/1' }, alice);
      await reg.setAlias('m', 'champion', '1', { user: 'bob', reason: 'go' });
      await failure(reg.setAlias('m', 'champion', '9', alice));
      const entries = [];
      for await (const e of readAuditLog(reg.db)) entries.push(e);
      expect(entries.map((e) => [e.seq, e.actor, e.action, e.target])).toEqual([
        [1, 'alice', 'model.create', 'models:/m'],
        [2, 'alice', 'version.create', 'models:/m/1'],
        [3, 'bob', 'alias.set', 'models:/m@champion'],
      ]);
      expect(entries[2]!.detail).toMatchObject({
        before: { version: null },
        after: { version: 1 },
        reason: 'go',
      });
      expect(entries[1]!.prev_hash).toBe(entries[0]!.hash);
      expect(await verifyAuditChain(reg.db)).toEqual({ ok: true, entries: 3, head: entries[2]!.hash });
    });

    describe('audit verify catches tampering made directly in the database', () => {
      beforeEach(async () => {
        await reg.createRegisteredModel({ name: 'm' }, alice);
        for (let i = 1; i <= 3; i++)
          await reg.createModelVersion({ name: 'm', source: `s3://b/${i}` }, alice);
        await reg.setAlias('m', 'champion', '2', alice);
        expect((await verifyAuditChain(reg.db)).ok).toBe(true);
      });

      it('an edited entry', async () => {
        await sql`update audit_log set actor = 'mallory' where seq = 3`.execute(reg.db);
        expect(await verifyAuditChain(reg.db)).toMatchObject({
          ok: false,
          seq: 3,
          problem: expect.stringContaining('edited'),
        });
      });

      it('a deleted entry (middle and last)', async () => {
        await sql`delete from audit_log where seq = 2`.execute(reg.db);
        expect(await verifyAuditChain(reg.db)).toMatchObject({
          ok: false,
          seq: 2,
          problem: expect.stringContaining('deleted'),
        });
        await sql`delete from audit_log where seq >= 2`.execute(reg.db);
        expect(await verifyAuditChain(reg.db)).toMatchObject({
          ok: false,
          seq: 2,
          problem: expect.stringContaining('missing'),
        });
      });

      it('an inserted entry (past the head, and renumbered into the middle)', async () => {
        const last = await reg.db
          .selectFrom('audit_log')
          .selectAll()
          .where('seq', '=', 5)
          .executeTakeFirstOrThrow();
        await reg.db
          .insertInto('audit_log')
          .values({ ...last, seq: 6, prev_hash: last.hash })
          .execute();
        expect(await verifyAuditChain(reg.db)).toMatchObject({
          ok: false,
          seq: 6,
          problem: expect.stringContaining('past the chain head'),
        });
        await sql`delete from audit_log where seq = 6`.execute(reg.db);
        // Shift 3..5 up by one and put a forged entry at 3 (head bumped to match).
        for (const seq of [5, 4, 3])
          await sql`update audit_log set seq = ${seq + 1} where seq = ${seq}`.execute(reg.db);
        const second = await reg.db
          .selectFrom('audit_log')
          .selectAll()
          .where('seq', '=', 2)
          .executeTakeFirstOrThrow();
        await reg.db
          .insertInto('audit_log')
          .values({ ...second, seq: 3, actor: 'mallory', prev_hash: second.hash })
          .execute();
        await sql`update audit_head set seq = 6`.execute(reg.db);
        expect(await verifyAuditChain(reg.db)).toMatchObject({ ok: false, seq: 3 });
      });

      it('two swapped entries', async () => {
        const rows = await reg.db
          .selectFrom('audit_log')
          .selectAll()
          .where('seq', 'in', [2, 3])
          .orderBy('seq')
          .execute();
        const [a, b] = rows as [(typeof rows)[0], (typeof rows)[0]];
        await sql`update audit_log set seq = -1 where seq = 2`.execute(reg.db);
        await sql`update audit_log set seq = 2 where seq = 3`.execute(reg.db);
        await sql`update audit_log set seq = 3 where seq = -1`.execute(reg.db);
        expect(a.hash).not.toBe(b.hash);
        expect(await verifyAuditChain(reg.db)).toMatchObject({ ok: false, seq: 2 });
      });

      it('a rewritten chain, against a head recorded earlier', async () => {
        const { head } = (await verifyAuditChain(reg.db)) as { head: string };
        expect((await verifyAuditChain(reg.db, { expectHead: head })).ok).toBe(true);
        await reg.createModelVersion({ name: 'm', source: 's3://b/4' }, alice);
        expect((await verifyAuditChain(reg.db, { expectHead: head })).ok).toBe(true);
        expect(await verifyAuditChain(reg.db, { expectHead: 'f'.repeat(64) })).toMatchObject({ ok: false });
      });
    });
  });
}
