import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';

/**
 * MLflow's registry REST API through the real fastify app: MLflow's JSON, codes and statuses,
 * and bad input on every route answered with a 4xx naming the field (never a 500). Runs on
 * SQLite and, with KILN_TEST_POSTGRES, on Postgres; the racing registrations go over real
 * HTTP on 127.0.0.1.
 */
type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

function registryRestSuite(
  label: string,
  openDb: (home: string) => Promise<{ db: string; drop(): Promise<void> }>,
) {
  describe(`registry REST (${label})`, () => {
    let dir: string;
    let store: Store;
    let app: FastifyInstance;
    let base: string;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-registry-rest-'));
      const target = await openDb(dir);
      drop = target.drop;
      const config = resolveConfig({ home: dir, db: target.db });
      store = await openStore({ db: config.db });
      app = await buildApp({
        store,
        artifacts: new LocalArtifactStore(config.artifacts),
        config,
        bodyLimit: 256 * 1024,
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    });

    afterAll(async () => {
      await app.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await drop();
    });

    async function call(method: Method, endpoint: string, payload?: unknown, prefix = '/api/2.0/mlflow') {
      const isQuery = method === 'GET';
      const res = await app.inject({
        method,
        url: `${prefix}/${endpoint}`,
        ...(isQuery
          ? { query: payload as Record<string, string> }
          : payload === undefined
            ? {}
            : { payload: payload as object }),
      });
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
    }
    async function ok(method: Method, endpoint: string, payload?: unknown) {
      const res = await call(method, endpoint, payload);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body;
    }
    async function err(
      method: Method,
      endpoint: string,
      payload: unknown,
      status: number,
      code: string,
      text?: string,
    ) {
      const res = await call(method, endpoint, payload);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body.error_code).toBe(code);
      if (text) expect(res.body.message).toContain(text);
      expect(JSON.stringify(res.body)).not.toMatch(/at .*\.ts:\d+/);
      return res.body;
    }

    it('registers a model and a version from a run as MLflow clients do', async () => {
      const exp = await ok('POST', 'experiments/create', { name: 'rest-exp' });
      const run = (await ok('POST', 'runs/create', { experiment_id: exp.experiment_id })).run;
      const created = await ok('POST', 'registered-models/create', {
        name: 'fraud',
        description: 'fraud model',
        tags: [{ key: 'team', value: 'risk' }],
      });
      expect(created.registered_model).toMatchObject({
        name: 'fraud',
        description: 'fraud model',
        tags: [{ key: 'team', value: 'risk' }],
      });
      await err(
        'POST',
        'registered-models/create',
        { name: 'fraud' },
        400,
        'RESOURCE_ALREADY_EXISTS',
        'already exists',
      );

      const mv = await ok('POST', 'model-versions/create', {
        name: 'fraud',
        source: `runs:/${run.info.run_id}/model`,
        run_id: run.info.run_id,
      });
      expect(mv.model_version).toMatchObject({
        name: 'fraud',
        version: '1',
        status: 'READY',
        current_stage: 'None',
      });
      const uri = await ok('GET', 'model-versions/get-download-uri', { name: 'fraud', version: '1' });
      expect(uri.artifact_uri).toBe(`${run.info.artifact_uri}/model`);

      await ok('POST', 'registered-models/alias', { name: 'fraud', alias: 'champion', version: '1' });
      const byAlias = await ok('GET', 'registered-models/alias', { name: 'fraud', alias: 'champion' });
      expect(byAlias.model_version).toMatchObject({ version: '1', aliases: ['champion'] });
      // The UI's prefix serves the same API.
      const viaAjax = await call('GET', 'registered-models/get', { name: 'fraud' }, '/ajax-api/2.0/mlflow');
      expect(viaAjax.body.registered_model.aliases).toEqual([{ alias: 'champion', version: '1' }]);

      await ok('PATCH', 'registered-models/update', { name: 'fraud', description: 'new' });
      await ok('PATCH', 'model-versions/update', { name: 'fraud', version: '1', description: 'v1' });
      await ok('POST', 'registered-models/set-tag', { name: 'fraud', key: 'k', value: 'v' });
      await ok('POST', 'model-versions/set-tag', { name: 'fraud', version: '1', key: 'k', value: 'v' });
      await ok('DELETE', 'registered-models/delete-tag', { name: 'fraud', key: 'k' });
      await ok('DELETE', 'model-versions/delete-tag', { name: 'fraud', version: '1', key: 'k' });
      const got = (await ok('GET', 'model-versions/get', { name: 'fraud', version: '1' })).model_version;
      expect(got).toMatchObject({ description: 'v1', tags: [] });

      const searched = await ok('GET', 'registered-models/search', {
        filter: "name LIKE 'fr%'",
        max_results: '10',
      });
      expect(searched.registered_models.map((m: { name: string }) => m.name)).toEqual(['fraud']);
      const versions = await ok('GET', 'model-versions/search', { filter: `run_id = '${run.info.run_id}'` });
      expect(versions.model_versions.map((v: { version: string }) => v.version)).toEqual(['1']);
      const staged = await ok('POST', 'model-versions/transition-stage', {
        name: 'fraud',
        version: '1',
        stage: 'Staging',
        archive_existing_versions: false,
      });
      expect(staged.model_version.current_stage).toBe('Staging');
      const latest = await ok('POST', 'registered-models/get-latest-versions', {
        name: 'fraud',
        stages: ['Staging'],
      });
      expect(latest.model_versions.map((v: { version: string }) => v.version)).toEqual(['1']);

      await ok('DELETE', 'registered-models/alias', { name: 'fraud', alias: 'champion' });
      await err(
        'GET',
        'registered-models/alias',
        { name: 'fraud', alias: 'champion' },
        400,
        'INVALID_PARAMETER_VALUE',
        'alias champion not found',
      );
      await ok('POST', 'registered-models/rename', { name: 'fraud', new_name: 'fraud2' });
      await ok('DELETE', 'model-versions/delete', { name: 'fraud2', version: '1' });
      await err(
        'GET',
        'model-versions/get',
        { name: 'fraud2', version: '1' },
        404,
        'RESOURCE_DOES_NOT_EXIST',
      );
      await ok('DELETE', 'registered-models/delete', { name: 'fraud2' });
      await err(
        'GET',
        'registered-models/get',
        { name: 'fraud2' },
        404,
        'RESOURCE_DOES_NOT_EXIST',
        'name=fraud2 not found',
      );
    });

    it('answers bad input on every route with a 4xx naming the field', async () => {
      await ok('POST', 'registered-models/create', { name: 'bad-input' });
      await ok('POST', 'model-versions/create', { name: 'bad-input', source: 's3://bucket/m' });
      const cases: [Method, string, unknown, number, string, string][] = [
        ['POST', 'registered-models/create', {}, 400, 'INVALID_PARAMETER_VALUE', "'name'"],
        ['POST', 'registered-models/create', { name: 5 }, 400, 'INVALID_PARAMETER_VALUE', "'name'"],
        [
          'POST',
          'registered-models/create',
          { name: 'x', tags: 'no' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'tags'",
        ],
        [
          'POST',
          'registered-models/create',
          { name: 'x'.repeat(300) },
          400,
          'INVALID_PARAMETER_VALUE',
          "'name'",
        ],
        [
          'POST',
          'registered-models/create',
          { name: 'x', tags: [{ key: 'k', value: 'v'.repeat(5001) }] },
          400,
          'INVALID_PARAMETER_VALUE',
          'tags[0].value',
        ],
        ['GET', 'registered-models/get', {}, 400, 'INVALID_PARAMETER_VALUE', "'name'"],
        ['GET', 'registered-models/get', { name: 'ghost' }, 404, 'RESOURCE_DOES_NOT_EXIST', 'ghost'],
        [
          'GET',
          'registered-models/search',
          { max_results: 'many' },
          400,
          'INVALID_PARAMETER_VALUE',
          'max_results',
        ],
        [
          'GET',
          'registered-models/search',
          { max_results: '5000' },
          400,
          'INVALID_PARAMETER_VALUE',
          'at most 1000',
        ],
        ['GET', 'registered-models/search', { filter: 'name = ' }, 400, 'INVALID_PARAMETER_VALUE', 'filter'],
        [
          'GET',
          'registered-models/search',
          { order_by: 'size DESC' },
          400,
          'INVALID_PARAMETER_VALUE',
          'order_by[0]',
        ],
        [
          'GET',
          'registered-models/search',
          { page_token: 'xyz' },
          400,
          'INVALID_PARAMETER_VALUE',
          'page_token',
        ],
        [
          'PATCH',
          'registered-models/update',
          { name: 'bad-input', description: 7 },
          400,
          'INVALID_PARAMETER_VALUE',
          "'description'",
        ],
        [
          'PATCH',
          'registered-models/update',
          { name: 'ghost', description: 'd' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'ghost',
        ],
        [
          'POST',
          'registered-models/rename',
          { name: 'bad-input' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'new_name'",
        ],
        [
          'POST',
          'registered-models/rename',
          { name: 'ghost', new_name: 'y' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'ghost',
        ],
        ['DELETE', 'registered-models/delete', {}, 400, 'INVALID_PARAMETER_VALUE', "'name'"],
        ['DELETE', 'registered-models/delete', { name: 'ghost' }, 404, 'RESOURCE_DOES_NOT_EXIST', 'ghost'],
        [
          'POST',
          'registered-models/set-tag',
          { name: 'bad-input', key: 'k' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'value'",
        ],
        [
          'POST',
          'registered-models/set-tag',
          { name: 'bad-input', key: 'a\nb', value: 'v' },
          400,
          'INVALID_PARAMETER_VALUE',
          'tag name',
        ],
        [
          'DELETE',
          'registered-models/delete-tag',
          { name: 'bad-input' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'key'",
        ],
        [
          'GET',
          'registered-models/get-latest-versions',
          { name: 'bad-input', stages: 'Prod' },
          400,
          'INVALID_PARAMETER_VALUE',
          'stage',
        ],
        [
          'POST',
          'registered-models/alias',
          { name: 'bad-input', alias: 'champion' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'version'",
        ],
        [
          'POST',
          'registered-models/alias',
          { name: 'bad-input', alias: 'champion', version: 'one' },
          400,
          'INVALID_PARAMETER_VALUE',
          'version',
        ],
        [
          'POST',
          'registered-models/alias',
          { name: 'bad-input', alias: 'latest', version: '1' },
          400,
          'INVALID_PARAMETER_VALUE',
          'reserved',
        ],
        [
          'POST',
          'registered-models/alias',
          { name: 'bad-input', alias: 'c', version: '99' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'version=99',
        ],
        [
          'DELETE',
          'registered-models/alias',
          { name: 'bad-input' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'alias'",
        ],
        [
          'GET',
          'registered-models/alias',
          { name: 'bad-input', alias: 'a'.repeat(300) },
          400,
          'INVALID_PARAMETER_VALUE',
          "'alias'",
        ],
        ['POST', 'model-versions/create', { name: 'bad-input' }, 400, 'INVALID_PARAMETER_VALUE', "'source'"],
        [
          'POST',
          'model-versions/create',
          { name: 'bad-input', source: '/etc/passwd' },
          400,
          'INVALID_PARAMETER_VALUE',
          'source',
        ],
        [
          'POST',
          'model-versions/create',
          { name: 'bad-input', source: 'file:///x/../../etc' },
          400,
          'INVALID_PARAMETER_VALUE',
          'relative path',
        ],
        [
          'POST',
          'model-versions/create',
          { name: 'bad-input', source: 's3://b/m', run_id: 'nope' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'nope',
        ],
        [
          'POST',
          'model-versions/create',
          { name: 'ghost', source: 's3://b/m' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'ghost',
        ],
        [
          'POST',
          'model-versions/create',
          { name: 'bad-input', source: 's3://b/m', description: 'd'.repeat(6000) },
          400,
          'INVALID_PARAMETER_VALUE',
          "'description'",
        ],
        ['GET', 'model-versions/get', { name: 'bad-input' }, 400, 'INVALID_PARAMETER_VALUE', "'version'"],
        [
          'GET',
          'model-versions/get',
          { name: 'bad-input', version: '-1' },
          400,
          'INVALID_PARAMETER_VALUE',
          'integer',
        ],
        [
          'GET',
          'model-versions/get',
          { name: 'bad-input', version: '42' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'version=42',
        ],
        [
          'GET',
          'model-versions/search',
          { filter: "run_id LIKE 'x' AND" },
          400,
          'INVALID_PARAMETER_VALUE',
          'filter',
        ],
        [
          'GET',
          'model-versions/search',
          { filter: "tags.k IN ('a')" },
          400,
          'INVALID_PARAMETER_VALUE',
          "comparator 'IN'",
        ],
        ['GET', 'model-versions/search', { max_results: '0' }, 400, 'INVALID_PARAMETER_VALUE', 'max_results'],
        [
          'PATCH',
          'model-versions/update',
          { name: 'bad-input', version: '1', description: false },
          400,
          'INVALID_PARAMETER_VALUE',
          "'description'",
        ],
        [
          'DELETE',
          'model-versions/delete',
          { name: 'bad-input', version: 'x' },
          400,
          'INVALID_PARAMETER_VALUE',
          'integer',
        ],
        [
          'POST',
          'model-versions/set-tag',
          { name: 'bad-input', version: '1', key: '', value: 'v' },
          400,
          'INVALID_PARAMETER_VALUE',
          'key',
        ],
        [
          'DELETE',
          'model-versions/delete-tag',
          { name: 'bad-input', version: '1' },
          400,
          'INVALID_PARAMETER_VALUE',
          "'key'",
        ],
        [
          'GET',
          'model-versions/get-download-uri',
          { name: 'bad-input', version: '5' },
          404,
          'RESOURCE_DOES_NOT_EXIST',
          'version=5',
        ],
        [
          'POST',
          'model-versions/transition-stage',
          { name: 'bad-input', version: '1', stage: 'Live' },
          400,
          'INVALID_PARAMETER_VALUE',
          'Invalid Model Version stage: Live',
        ],
        [
          'POST',
          'model-versions/transition-stage',
          { name: 'bad-input', version: '1', stage: 'Staging', archive_existing_versions: 'maybe' },
          400,
          'INVALID_PARAMETER_VALUE',
          'archive_existing_versions',
        ],
      ];
      for (const [method, endpoint, payload, status, code, text] of cases) {
        const res = await call(method, endpoint, payload);
        expect(
          [res.status, res.body.error_code],
          `${method} ${endpoint} ${JSON.stringify(payload).slice(0, 80)} → ${JSON.stringify(res.body)}`,
        ).toEqual([status, code]);
        expect(res.body.message, `${method} ${endpoint}`).toContain(text);
      }
      // Malformed JSON and a non-object body.
      const malformed = await app.inject({
        method: 'POST',
        url: '/api/2.0/mlflow/registered-models/create',
        headers: { 'content-type': 'application/json' },
        payload: '{"name": ',
      });
      expect(malformed.statusCode).toBe(400);
      expect(JSON.parse(malformed.body).error_code).toBe('INVALID_PARAMETER_VALUE');
      const array = await app.inject({
        method: 'POST',
        url: '/api/2.0/mlflow/model-versions/create',
        payload: [1, 2],
      });
      expect(array.statusCode).toBe(400);
      const huge = await app.inject({
        method: 'POST',
        url: '/api/2.0/mlflow/registered-models/create',
        payload: { name: 'big', description: 'x'.repeat(300 * 1024) },
      });
      expect(huge.statusCode).toBe(413);
      expect(JSON.parse(huge.body).error_code).toBe('RESOURCE_LIMIT_EXCEEDED');
      // Nothing half-written: the failed creates left no model behind.
      await err('GET', 'registered-models/get', { name: 'x' }, 404, 'RESOURCE_DOES_NOT_EXIST');
      await err('GET', 'registered-models/get', { name: 'big' }, 404, 'RESOURCE_DOES_NOT_EXIST');
    });

    it('serves the governance endpoints: history, protection, cards, policy, gate, lineage, audit', async () => {
      const basic = (user: string) => ({
        authorization: `Basic ${Buffer.from(`${user}:token`).toString('base64')}`,
      });
      const kiln = async (method: Method, url: string, payload?: object, user = 'alice') => {
        const res = await app.inject({
          method,
          url: `/api/kiln/${url}`,
          headers: basic(user),
          ...(payload ? { payload } : {}),
        });
        const type = String(res.headers['content-type'] ?? '');
        return {
          status: res.statusCode,
          body: type.includes('application/json') ? JSON.parse(res.body) : res.body,
          type,
        };
      };
      await ok('POST', 'registered-models/create', { name: 'gov' });
      await app.inject({
        method: 'POST',
        url: '/api/2.0/mlflow/model-versions/create',
        headers: basic('alice'),
        payload: { name: 'gov', source: 's3://b/1' },
      });
      await ok('POST', 'registered-models/alias', { name: 'gov', alias: 'staging', version: '1' });
      const history = await kiln(
        'GET',
        `registry/models/gov/aliases/staging/history?as_of=${Date.now() + 1000}`,
      );
      expect(history.status, JSON.stringify(history.body)).toBe(200);
      expect(history.body.events).toHaveLength(1);
      expect(history.body.version).toBe('1');
      expect(
        (await kiln('PUT', 'registry/models/gov/aliases/staging/protection', { protected: true })).status,
      ).toBe(200);
      await err(
        'POST',
        'registered-models/alias',
        { name: 'gov', alias: 'staging', version: '1' },
        403,
        'PERMISSION_DENIED',
        'protected',
      );
      const card = await kiln('GET', 'registry/models/gov/versions/1/card?format=markdown');
      expect(card.type).toContain('text/markdown');
      expect(card.body).toContain('# Model card: gov version 1');
      const edited = await kiln('PATCH', 'registry/models/gov/versions/1/card', {
        fields: { owner: 'risk' },
      });
      expect(edited.body.model_card.fields.owner).toBe('risk');
      const policy = await kiln('PUT', 'registry/models/gov/policy', {
        yaml: 'aliases: [champion]\nprimary: {metric: test.auc, direction: maximize}\nrequire_data_validation: false\n',
      });
      expect(policy.status).toBe(200);
      const promoted = await kiln('POST', 'registry/models/gov/promote', { version: '1', alias: 'champion' });
      expect(promoted.status).toBe(200);
      // The version has no run, so the gate refuses and says so.
      expect(promoted.body.promotion.decision).toBe('refused');
      expect(promoted.body.promotion.rules[0].detail).toContain('no readable run');
      const lineage = await kiln('GET', `registry/lineage?uri=${encodeURIComponent('models:/gov@staging')}`);
      expect(lineage.body.lineage.model).toMatchObject({ name: 'gov', version: '1' });
      const verify = await kiln('GET', 'audit/verify');
      expect(verify.body.ok).toBe(true);
      const exported = await kiln('GET', 'audit/export?target=models:/gov');
      expect(exported.type).toContain('application/x-ndjson');
      const lines = (exported.body as string)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines.map((l) => l.action)).toEqual([
        'model.create',
        'version.create',
        'alias.set',
        'alias.protect',
        'card.update',
        'alias.protect',
        'policy.set',
        'promotion.refused',
      ]);
      expect(lines[1].actor).toBe('alice');
      expect(lines[0].actor).toBe('anonymous');
      // Bad input on the governance routes: 4xx naming the field.
      const bad: [Method, string, object | undefined, number, string][] = [
        ['GET', 'registry/models/gov/aliases/latest/history', undefined, 400, 'reserved'],
        ['GET', 'registry/models/gov/aliases/staging/history?as_of=soon', undefined, 400, 'as_of'],
        ['PUT', 'registry/models/gov/aliases/staging/protection', { protected: 'yes' }, 400, 'protected'],
        ['GET', 'registry/models/gov/versions/x/card', undefined, 400, 'version'],
        ['GET', 'registry/models/gov/versions/1/card?format=pdf', undefined, 400, 'format'],
        ['GET', 'registry/models/gov/versions/9/card', undefined, 404, 'version=9'],
        ['PATCH', 'registry/models/gov/versions/1/card', { fields: { owner: 1 } }, 400, 'owner'],
        ['PUT', 'registry/models/gov/policy', { yaml: 'primary: {metric: x}' }, 400, 'primary.direction'],
        [
          'PUT',
          'registry/models/ghost/policy',
          { yaml: 'primary: {metric: x, direction: maximize}' },
          404,
          'ghost',
        ],
        ['GET', 'registry/models/ghost/policy', undefined, 404, 'ghost'],
        ['POST', 'registry/models/gov/promote', { alias: 'champion' }, 400, 'version'],
        ['POST', 'registry/models/gov/promote', { version: '1', alias: 'other' }, 400, 'not governed'],
        ['POST', 'registry/models/gov/approve', { version: '1', alias: 'champion' }, 403, 'approver role'],
        ['POST', 'registry/models/gov/restore', undefined, 400, 'not deleted'],
        ['GET', 'registry/lineage', undefined, 400, 'uri'],
        ['GET', 'registry/lineage?uri=models:/gov', undefined, 400, 'models:/'],
        ['GET', 'audit/verify?expect_head=abc', undefined, 400, 'expect_head'],
      ];
      for (const [method, url, payload, status, text] of bad) {
        const res = await kiln(method, url, payload);
        expect(res.status, `${method} ${url} → ${JSON.stringify(res.body)}`).toBe(status);
        expect(res.body.message, `${method} ${url}`).toContain(text);
      }
    });

    it('allocates distinct versions to registrations racing over HTTP', async () => {
      await ok('POST', 'registered-models/create', { name: 'race' });
      const responses = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          fetch(`${base}/api/2.0/mlflow/model-versions/create`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ name: 'race', source: `s3://bucket/model-${i}` }),
          }).then(async (r) => ({
            status: r.status,
            body: (await r.json()) as { model_version: { version: string } },
          })),
        ),
      );
      expect(responses.every((r) => r.status === 200)).toBe(true);
      const versions = responses.map((r) => Number(r.body.model_version.version)).sort((a, b) => a - b);
      expect(versions).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    });
  });
}

registryRestSuite('SQLite', async (home) => ({ db: path.join(home, 'kiln.db'), drop: async () => {} }));

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  registryRestSuite('Postgres', async () => {
    const name = `kiln_registry_rest_${process.pid}`;
    return {
      db: await freshPostgresDatabase(postgresUrl!, name),
      drop: () => dropPostgresDatabase(postgresUrl!, name),
    };
  });
});
