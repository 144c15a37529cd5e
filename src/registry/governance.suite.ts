import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { grantRole, readAuditLog, verifyAuditChain } from '../auth/index.js';
import { ingestDataset, parseExpectations } from '../data/index.js';
import { approveVersion, listPromotions, promoteVersion } from './gate.js';
import { purgeDeletedRegistryEntries } from './gc.js';
import { datasetUsedBy, modelLineage } from './lineage.js';
import { getModelCard, renderModelCardMarkdown, updateModelCard } from './model-card.js';
import { getPromotionPolicy, parsePromotionPolicy, setPromotionPolicy } from './policy.js';
import { failure, type RegistryFixture } from './registry.suite.js';
import type { SqlModelRegistry } from './sql-registry.js';

const POLICY = `
aliases: [champion]
primary:
  metric: test.auc
  direction: maximize
  min_improvement: 0.005
guards:
  - metric: p99_latency_us
    direction: minimize
    max_regression_pct: 20
  - metric: test.logloss
    direction: minimize
    max_regression: 0.01
require_data_validation: true
approval:
  required: true
`;

/**
 * The governance layer on one backend: policies, the promotion gate (better, worse, failing
 * guard, different held-out data, unvalidated data, approvals and self-approval, --force),
 * model cards, lineage and gc, each checked in the alias history and the audit chain.
 */
export function runGovernanceSuite(label: string, makeFixture: () => Promise<RegistryFixture>): void {
  describe(`registry governance (${label})`, () => {
    let fx: RegistryFixture;
    let reg: SqlModelRegistry;
    let dir: string;
    let dataset: { name: string; version: number; hash: string };

    beforeEach(async () => {
      fx = await makeFixture();
      reg = fx.registry;
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-gov-'));
      const csv = path.join(dir, 'loans.csv');
      fs.writeFileSync(
        csv,
        `amount,income,label\n${Array.from({ length: 50 }, (_, i) => `${i * 10},${1000 + i},${i % 2}`).join('\n')}\n`,
      );
      const ingested = await ingestDataset(
        { store: reg.store, artifacts: reg.artifacts },
        {
          file: csv,
          name: 'loans',
          expectations: parseExpectations({ expectations: [{ column: 'amount', not_null: true }] }),
        },
      );
      expect(ingested.validation?.passed).toBe(true);
      dataset = { name: 'loans', version: ingested.version.version, hash: ingested.version.hash };
      await reg.createRegisteredModel({ name: 'credit' }, { user: 'alice' });
      await grantRole(reg.db, { user: 'bob', role: 'approver' }, 'admin-setup');
      await grantRole(reg.db, { user: 'root', role: 'admin' }, 'admin-setup');
      await grantRole(reg.db, { user: 'alice', role: 'editor' }, 'admin-setup');
    });
    afterEach(async () => {
      await fx.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    /** A run as `kiln train` logs it, registered as a new version by alice. */
    async function trainedVersion(
      metrics: Record<string, number>,
      options: {
        seed?: string;
        datasetTags?: boolean;
        dataset?: { name: string; version: number; hash: string };
        inputs?: { name: string; type: string; expr?: string }[];
      } = {},
    ): Promise<string> {
      const ds = options.dataset ?? dataset;
      const run = await fx.tracking.createRun({ experiment_id: '0', run_name: 'train' });
      const tags =
        options.datasetTags === false
          ? [{ key: 'kiln.data.file', value: '/tmp/x.csv' }]
          : [
              { key: 'kiln.dataset.name', value: ds.name },
              { key: 'kiln.dataset.version', value: String(ds.version) },
              { key: 'kiln.dataset.hash', value: ds.hash },
            ];
      await fx.tracking.logBatch({
        run_id: run.info.run_id,
        metrics: Object.entries(metrics).map(([key, value]) => ({
          key,
          value,
          timestamp: Date.now(),
          step: 0,
        })),
        params: [{ key: 'learning_rate', value: '0.1' }],
        tags: [
          ...tags,
          { key: 'kiln.split.method', value: 'random' },
          { key: 'kiln.split.seed', value: options.seed ?? '7' },
          { key: 'kiln.split.test', value: '0.2' },
          { key: 'kiln.learner', value: 'gbdt' },
          { key: 'kiln.task', value: 'binary' },
        ],
      });
      await fx.tracking.uploadArtifact(
        run.info.run_id,
        'model/signature.json',
        JSON.stringify({
          format: 1,
          inputs: options.inputs ?? [
            { name: 'amount', type: 'numeric' },
            { name: 'ratio', type: 'numeric', expr: 'amount / income' },
          ],
          target: { name: 'label', classes: ['0', '1'] },
          output: { task: 'binary', kind: 'probability', shape: [1] },
          learner: 'gbdt',
        }),
      );
      const mv = await reg.createModelVersion(
        { name: 'credit', source: `runs:/${run.info.run_id}/model`, run_id: run.info.run_id },
        { user: 'alice' },
      );
      return mv.version;
    }

    const good = { 'test.auc': 0.8, 'test.logloss': 0.45, p99_latency_us: 100 };

    it('parses policies and names the bad field', async () => {
      expect(parsePromotionPolicy(POLICY).guards).toHaveLength(2);
      expect(
        (await failure(Promise.resolve().then(() => parsePromotionPolicy('primary: [')))).message,
      ).toContain('not valid YAML');
      const noDir = await failure(
        Promise.resolve().then(() => parsePromotionPolicy('primary:\n  metric: auc\n')),
      );
      expect(noDir.message).toContain('primary.direction');
      const badGuard = await failure(
        Promise.resolve().then(() =>
          parsePromotionPolicy(
            'primary: {metric: a, direction: maximize}\nguards:\n  - {metric: b, direction: minimize}\n',
          ),
        ),
      );
      expect(badGuard.message).toContain('guards[0]');
      const unknown = await failure(
        Promise.resolve().then(() => parsePromotionPolicy('primary: {metric: a, direction: up}\n')),
      );
      expect(unknown.code).toBe('INVALID_PARAMETER_VALUE');
      await setPromotionPolicy(reg, 'credit', POLICY, { user: 'alice' });
      expect((await getPromotionPolicy(reg, 'credit'))?.policy.primary.min_improvement).toBe(0.005);
      // The governed alias is protected from then on.
      expect(await reg.protectedAliases('credit')).toEqual(['champion']);
    });

    it('refuses a challenger with a better AUC that loses value, naming the numbers', async () => {
      const policy = `
aliases: [champion]
primary: { metric: test.auc, direction: maximize }
require_data_validation: false
value:
  true_positive: 40
  false_positive: 5
  false_negative: 60
  min_gain_per_1k: 0
`;
      await setPromotionPolicy(reg, 'credit', policy, { user: 'alice' });
      // v1: 1000 test rows, tp 80 fp 100 fn 20 tn 800 → 3200 − 500 − 1200 = 1500 per 1000.
      const v1 = await trainedVersion({
        'test.auc': 0.8,
        'test.tp': 80,
        'test.fp': 100,
        'test.fn': 20,
        'test.tn': 800,
      });
      const first = await promoteVersion(
        reg,
        { name: 'credit', version: v1, alias: 'champion' },
        { user: 'alice' },
      );
      expect(first.decision).toBe('accepted');
      expect(first.rules.find((r) => r.rule === 'value')).toMatchObject({
        outcome: 'passed',
        candidate: 1500,
      });
      // v2 ranks better but flags fewer: tp 70 fp 20 fn 30 tn 880 → 2800 − 100 − 1800 = 900.
      const v2 = await trainedVersion({
        'test.auc': 0.85,
        'test.tp': 70,
        'test.fp': 20,
        'test.fn': 30,
        'test.tn': 880,
      });
      const second = await promoteVersion(
        reg,
        { name: 'credit', version: v2, alias: 'champion' },
        { user: 'alice' },
      );
      expect(second.decision).toBe('refused');
      const rule = second.rules.find((r) => r.rule === 'value')!;
      expect(rule).toMatchObject({ outcome: 'failed', candidate: 900, incumbent: 1500, threshold: 0 });
      expect(rule.detail).toBe(
        'value per 1k predictions on test (TP +40, TN +0, FP −5, FN −60): candidate 900 vs holder 1500: loses 600 < required gain 0',
      );
      expect(second.rules.find((r) => r.rule === 'primary:test.auc')!.outcome).toBe('passed');
      expect((await reg.getModelVersionByAlias('credit', 'champion')).version).toBe(v1);
      // A version without confusion counts cannot be priced: refused, saying which metric is missing.
      const v3 = await trainedVersion({ 'test.auc': 0.9 });
      const third = await promoteVersion(
        reg,
        { name: 'credit', version: v3, alias: 'champion' },
        { user: 'alice' },
      );
      expect(third.rules.find((r) => r.rule === 'value')!.detail).toContain('has no metric test.tp');
      // A policy with a half-regression, half-binary value is refused naming the field.
      const bad = await failure(
        Promise.resolve().then(() =>
          parsePromotionPolicy(
            'primary: {metric: a, direction: maximize}\nvalue: {per_unit_error: 1, true_positive: 2}\n',
          ),
        ),
      );
      expect(bad.message).toContain('value.per_unit_error: give either a regression value');
      const neg = await failure(
        Promise.resolve().then(() =>
          parsePromotionPolicy('primary: {metric: a, direction: maximize}\nvalue: {false_positive: -1}\n'),
        ),
      );
      expect(neg.message).toContain('value.false_positive');
    });

    it('a policy can forbid personal data as features or require an approval; the card lists it', async () => {
      const csv = path.join(dir, 'customers.csv');
      // Every 4th card number passes Luhn (and has a Visa prefix); the rest are Luhn-invalid. Written
      // in groups, as people type them (a bare run of digits would be read as a number column).
      const rows = Array.from({ length: 40 }, (_, i) =>
        [
          `user${i}@example.com`,
          i % 4 === 0 ? '4111 1111 1111 1111' : '4111 1111 1111 1112',
          `10.0.0.${i}`,
          i * 3,
          i % 2,
        ].join(','),
      );
      fs.writeFileSync(csv, `email,card,ip,amount,label\n${rows.join('\n')}\n`);
      const ingested = await ingestDataset(
        { store: reg.store, artifacts: reg.artifacts },
        { file: csv, name: 'customers' },
      );
      const customers = { name: 'customers', version: ingested.version.version, hash: ingested.version.hash };
      await setPromotionPolicy(
        reg,
        'credit',
        `
aliases: [champion]
primary: { metric: test.auc, direction: maximize }
require_data_validation: false
personal_data:
  forbid: [card_number]
  require_approval: true
`,
        { user: 'alice' },
      );
      // Reads card (forbidden) and, through an expression, email.
      const v1 = await trainedVersion(good, {
        dataset: customers,
        inputs: [
          { name: 'card', type: 'categorical' },
          { name: 'domain', type: 'categorical', expr: "split_part(email, '@', 2)" },
          { name: 'amount', type: 'numeric' },
        ],
      });
      const refused = await promoteVersion(
        reg,
        { name: 'credit', version: v1, alias: 'champion' },
        { user: 'alice' },
      );
      expect(refused.decision).toBe('refused');
      const rule = refused.rules.find((r) => r.rule === 'personal-data')!;
      expect(rule.outcome).toBe('failed');
      // Only the 10 Luhn-valid rows count as card numbers.
      expect(rule.detail).toBe(
        `version ${v1} uses personal data the policy forbids as features: card: card_number in 10 of 40 rows (customers@${customers.version})`,
      );
      // Email and IP (not forbidden) need an approval; ip is not read by this version.
      const v2 = await trainedVersion(good, {
        dataset: customers,
        inputs: [
          { name: 'email', type: 'categorical' },
          { name: 'amount', type: 'numeric' },
        ],
      });
      const needs = await promoteVersion(
        reg,
        { name: 'credit', version: v2, alias: 'champion' },
        { user: 'alice' },
      );
      const pd = needs.rules.find((r) => r.rule === 'personal-data')!;
      expect(pd.outcome).toBe('failed');
      expect(pd.detail).toContain(
        'features touch personal data (email: email in 40 of 40 rows), which needs an approval',
      );
      await approveVersion(reg, { name: 'credit', version: v2, alias: 'champion' }, { user: 'bob' });
      const approved = await promoteVersion(
        reg,
        { name: 'credit', version: v2, alias: 'champion' },
        { user: 'alice' },
      );
      expect(approved.decision, JSON.stringify(approved.rules)).toBe('accepted');
      // The card lists what the model touches; the audit log holds the refusal with its reason.
      const card = await getModelCard(reg, 'credit', v1);
      expect(card.personal_data_found).toMatchObject({
        checked: true,
        columns: ['amount', 'card', 'email'],
        findings: [
          { column: 'email', kind: 'email', rows: 40 },
          { column: 'card', kind: 'card_number', rows: 10 },
        ],
      });
      expect(renderModelCardMarkdown(card)).toContain('| card | card_number | 10 | 25.0 % |');
      const refusals: unknown[] = [];
      for await (const e of readAuditLog(reg.db, { target: 'models:/credit@champion' }))
        if (e.action === 'promotion.refused') refusals.push(e.detail);
      expect(JSON.stringify(refusals)).toContain('card: card_number in 10 of 40 rows');
    });

    it('accepts a better challenger once someone else approves, and records it all', async () => {
      await setPromotionPolicy(reg, 'credit', POLICY, { user: 'alice' });
      const v1 = await trainedVersion(good);
      // First promotion: no holder to beat, but approval is still required.
      const first = await promoteVersion(
        reg,
        { name: 'credit', version: v1, alias: 'champion' },
        { user: 'alice' },
      );
      expect(first.decision).toBe('refused');
      expect(first.rules.filter((r) => r.outcome === 'failed').map((r) => r.rule)).toEqual(['approval']);
      // Self-approval and approval without the role are refused.
      expect(
        (
          await failure(
            approveVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'alice' }),
          )
        ).code,
      ).toBe('PERMISSION_DENIED');
      const noRole = await failure(
        approveVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'carol' }),
      );
      expect(noRole.message).toContain('approver role');
      await approveVersion(
        reg,
        { name: 'credit', version: v1, alias: 'champion', comment: 'ok' },
        { user: 'bob' },
      );
      const accepted = await promoteVersion(
        reg,
        { name: 'credit', version: v1, alias: 'champion' },
        { user: 'alice' },
      );
      expect(accepted.decision).toBe('accepted');
      expect((await reg.getModelVersionByAlias('credit', 'champion')).version).toBe(v1);

      const v2 = await trainedVersion({ 'test.auc': 0.82, 'test.logloss': 0.44, p99_latency_us: 110 });
      await approveVersion(reg, { name: 'credit', version: v2, alias: 'champion' }, { user: 'bob' });
      const second = await promoteVersion(
        reg,
        { name: 'credit', version: v2, alias: 'champion' },
        { user: 'alice', reason: 'retrained' },
      );
      expect(second.decision, JSON.stringify(second.rules)).toBe('accepted');
      const primary = second.rules.find((r) => r.rule === 'primary:test.auc')!;
      expect(primary).toMatchObject({ outcome: 'passed', candidate: 0.82, incumbent: 0.8, threshold: 0.005 });
      expect(second.rules.find((r) => r.rule === 'same-held-out-data')?.outcome).toBe('passed');

      const history = await reg.aliasHistory('credit', 'champion');
      expect(history.map((e) => [e.from_version, e.to_version, e.promotion_id])).toEqual([
        [null, v1, accepted.promotion_id],
        [v1, v2, second.promotion_id],
      ]);
      expect(history[1]!.reason).toBe('retrained');
      const actions: string[] = [];
      for await (const e of readAuditLog(reg.db, { target: 'models:/credit' })) actions.push(e.action);
      expect(actions).toEqual(
        expect.arrayContaining([
          'policy.set',
          'promotion.refused',
          'approval.request',
          'approval.give',
          'promotion.accepted',
          'alias.set',
        ]),
      );
      expect((await verifyAuditChain(reg.db)).ok).toBe(true);
      expect((await listPromotions(reg, 'credit', 'champion')).map((p) => p.decision)).toEqual([
        'refused',
        'accepted',
        'accepted',
      ]);
    });

    it('refuses a worse challenger and one that fails a guard, naming each rule with its numbers', async () => {
      await setPromotionPolicy(reg, 'credit', POLICY.replace('required: true', 'required: false'), {
        user: 'alice',
      });
      const v1 = await trainedVersion(good);
      expect(
        (await promoteVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'alice' }))
          .decision,
      ).toBe('accepted');

      const worse = await trainedVersion({ 'test.auc': 0.802, 'test.logloss': 0.45, p99_latency_us: 100 });
      const refused = await promoteVersion(
        reg,
        { name: 'credit', version: worse, alias: 'champion' },
        { user: 'alice' },
      );
      expect(refused.decision).toBe('refused');
      const primary = refused.rules.find((r) => r.rule === 'primary:test.auc')!;
      expect(primary.outcome).toBe('failed');
      expect(primary.detail).toContain('0.802 vs holder 0.8');
      expect(primary.detail).toContain('< required margin 0.005');

      const slow = await trainedVersion({ 'test.auc': 0.9, 'test.logloss': 0.47, p99_latency_us: 130 });
      const guarded = await promoteVersion(
        reg,
        { name: 'credit', version: slow, alias: 'champion' },
        { user: 'alice' },
      );
      expect(guarded.decision).toBe('refused');
      const failed = guarded.rules.filter((r) => r.outcome === 'failed');
      expect(failed.map((r) => r.rule)).toEqual(['guard:p99_latency_us', 'guard:test.logloss']);
      expect(failed[0]!.detail).toContain('30 % worse, allowed 20 %');
      expect(failed[1]!.detail).toContain('worse by 0.02, allowed 0.01');
      // The alias did not move, and the refusals are in the audit log.
      expect((await reg.getModelVersionByAlias('credit', 'champion')).version).toBe(v1);
      const refusals: unknown[] = [];
      for await (const e of readAuditLog(reg.db))
        if (e.action === 'promotion.refused') refusals.push(e.detail);
      expect(refusals).toHaveLength(2);
      // Protected: nobody moves it by hand.
      expect((await failure(reg.setAlias('credit', 'champion', slow, { user: 'alice' }))).code).toBe(
        'PERMISSION_DENIED',
      );
    });

    it('refuses when the held-out data differs or the training data was never validated', async () => {
      await setPromotionPolicy(reg, 'credit', POLICY.replace('required: true', 'required: false'), {
        user: 'alice',
      });
      const v1 = await trainedVersion(good);
      await promoteVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'alice' });
      const otherSplit = await trainedVersion({ ...good, 'test.auc': 0.95 }, { seed: '8' });
      const result = await promoteVersion(
        reg,
        { name: 'credit', version: otherSplit, alias: 'champion' },
        { user: 'alice' },
      );
      expect(result.decision).toBe('refused');
      const rule = result.rules.find((r) => r.rule === 'same-held-out-data')!;
      expect(rule.outcome).toBe('failed');
      expect(rule.detail).toContain('kiln.split.seed differs: candidate 8, holder 7');
      // With a different split nothing data-dependent is compared at all.
      expect(result.rules.some((r) => r.rule === 'primary:test.auc')).toBe(false);

      const fromFile = await trainedVersion({ ...good, 'test.auc': 0.95 }, { datasetTags: false });
      const unvalidated = await promoteVersion(
        reg,
        { name: 'credit', version: fromFile, alias: 'champion' },
        { user: 'alice' },
      );
      expect(unvalidated.rules.find((r) => r.rule === 'data-validation')?.outcome).toBe('failed');
      expect(unvalidated.rules.find((r) => r.rule === 'same-held-out-data')?.detail).toContain(
        'kiln.dataset.hash',
      );
    });

    it('primary.floor_on_new_data judges a retrain on other held-out data against the floor', async () => {
      const policy = POLICY.replace('required: true', 'required: false').replace(
        'min_improvement: 0.005',
        'min_improvement: 0.005\n  floor_on_new_data: 0.75',
      );
      await setPromotionPolicy(reg, 'credit', policy, { user: 'alice' });
      const v1 = await trainedVersion(good);
      await promoteVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'alice' });
      // Below the holder's 0.8 but above the floor, on another split: accepted, and says why.
      const newWindow = await trainedVersion({ ...good, 'test.auc': 0.76 }, { seed: '8' });
      const accepted = await promoteVersion(
        reg,
        { name: 'credit', version: newWindow, alias: 'champion' },
        { user: 'alice' },
      );
      expect(accepted.decision, JSON.stringify(accepted.rules)).toBe('accepted');
      expect(accepted.rules.find((r) => r.rule === 'same-held-out-data')).toMatchObject({
        outcome: 'passed',
        detail: expect.stringContaining('kiln.split.seed differs'),
      });
      expect(accepted.rules.find((r) => r.rule === 'primary:test.auc')).toMatchObject({
        outcome: 'passed',
        candidate: 0.76,
        threshold: 0.75,
      });
      // The data-dependent regression guard is not compared across data; an absolute bound would be.
      expect(accepted.rules.some((r) => r.rule === 'guard:test.logloss')).toBe(false);
      const low = await trainedVersion({ ...good, 'test.auc': 0.74 }, { seed: '9' });
      const refused = await promoteVersion(
        reg,
        { name: 'credit', version: low, alias: 'champion' },
        { user: 'alice' },
      );
      expect(refused.decision).toBe('refused');
      expect(refused.rules.find((r) => r.rule === 'primary:test.auc')).toMatchObject({
        outcome: 'failed',
        detail: expect.stringContaining('< primary.floor_on_new_data 0.75'),
      });
      // On the same held-out data the holder is still to be beaten, floor or not.
      const same = await trainedVersion({ ...good, 'test.auc': 0.762 }, { seed: '8' });
      const compared = await promoteVersion(
        reg,
        { name: 'credit', version: same, alias: 'champion' },
        { user: 'alice' },
      );
      expect(compared.decision).toBe('refused');
      expect(compared.rules.find((r) => r.rule === 'primary:test.auc')!.detail).toContain(
        '< required margin 0.005',
      );
    });

    it('--force is for admins only and is audited with what it overrode', async () => {
      await setPromotionPolicy(reg, 'credit', POLICY, { user: 'alice' });
      const v1 = await trainedVersion(good);
      const denied = await failure(
        promoteVersion(
          reg,
          { name: 'credit', version: v1, alias: 'champion', force: true },
          { user: 'alice' },
        ),
      );
      expect(denied.code).toBe('PERMISSION_DENIED');
      expect(denied.message).toContain('admin');
      const forced = await promoteVersion(
        reg,
        { name: 'credit', version: v1, alias: 'champion', force: true },
        { user: 'root', reason: 'hotfix' },
      );
      expect(forced.decision).toBe('forced');
      expect((await reg.getModelVersionByAlias('credit', 'champion')).version).toBe(v1);
      const entries = [];
      for await (const e of readAuditLog(reg.db)) if (e.action === 'promotion.forced') entries.push(e);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.actor).toBe('root');
      expect(JSON.stringify(entries[0]!.detail)).toContain('needs an approval');
      expect(
        (
          await failure(
            promoteVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'root' }),
          )
        ).code,
      ).toBe('INVALID_STATE');
      const noPolicy = await reg.createRegisteredModel({ name: 'bare' });
      await reg.createModelVersion({ name: noPolicy.name, source: 's3://b/1' });
      expect(
        (
          await failure(
            promoteVersion(reg, { name: 'bare', version: '1', alias: 'champion' }, { user: 'root' }),
          )
        ).message,
      ).toContain('no promotion policy');
    });

    it('generates a model card from the run, keeps the edited fields, renders Markdown', async () => {
      const v1 = await trainedVersion(good);
      const card = await getModelCard(reg, 'credit', v1);
      expect(card.evaluation.parts.test).toEqual({ auc: 0.8, logloss: 0.45 });
      expect(card.evaluation.other).toEqual({ p99_latency_us: 100 });
      expect(card.parameters).toEqual([{ key: 'learning_rate', value: '0.1' }]);
      expect(card.training_data).toMatchObject({
        dataset: { name: 'loans', version: dataset.version, hash: dataset.hash },
        split: { method: 'random', seed: '7', test: '0.2' },
        validation: { passed: true, expectations: 1 },
      });
      const amount = card.signature!.inputs.find((i) => i.name === 'amount')!;
      expect(amount.range).toMatchObject({ min: 0, max: 490, missing: 0, count: 50 });
      expect(card.signature!.inputs.find((i) => i.name === 'ratio')).toEqual({
        name: 'ratio',
        type: 'numeric',
        expr: 'amount / income',
      });
      const edited = await updateModelCard(
        reg,
        'credit',
        v1,
        { intended_use: 'Credit pre-screening', owner: 'risk-team' },
        { user: 'alice' },
      );
      await updateModelCard(reg, 'credit', v1, { personal_data: 'income (aggregated)' }, { user: 'alice' });
      expect(edited.fields.owner).toBe('risk-team');
      const again = await getModelCard(reg, 'credit', v1);
      expect(again.fields).toEqual({
        intended_use: 'Credit pre-screening',
        owner: 'risk-team',
        personal_data: 'income (aggregated)',
      });
      const md = renderModelCardMarkdown(again);
      expect(md).toContain('# Model card: credit version 1');
      expect(md).toContain('| auc | 0.800000 |');
      expect(md).toContain('Credit pre-screening');
      expect(md).toContain('| amount | numeric | 0 … 490 (0 missing of 50) |');
      const bad = await failure(updateModelCard(reg, 'credit', v1, { owner: 5 }, { user: 'alice' }));
      expect(bad.message).toContain("'owner'");
      expect(
        (await failure(updateModelCard(reg, 'credit', v1, { colour: 'red' }, { user: 'alice' }))).message,
      ).toContain('colour');
    });

    it('traces lineage both ways and purges deleted entries with gc', async () => {
      await setPromotionPolicy(reg, 'credit', POLICY.replace('required: true', 'required: false'), {
        user: 'alice',
      });
      const v1 = await trainedVersion(good);
      await promoteVersion(reg, { name: 'credit', version: v1, alias: 'champion' }, { user: 'alice' });
      const lineage = await modelLineage(reg, 'credit@champion');
      expect(lineage.model.version).toBe(v1);
      expect(lineage.dataset).toMatchObject({ name: 'loans', version: dataset.version, hash: dataset.hash });
      expect(lineage.split).toMatchObject({ seed: '7' });
      expect(lineage.alias_events.map((e) => e.to_version)).toEqual([v1]);
      expect(lineage.promotions.map((p) => p.decision)).toEqual(['accepted']);
      const used = await datasetUsedBy(reg, 'loans', dataset.version);
      expect(used.flatMap((u) => u.model_versions)).toEqual([
        { name: 'credit', version: v1, aliases: ['champion'] },
      ]);

      const v2 = await trainedVersion(good);
      await reg.deleteModelVersion('credit', v2, { user: 'alice' });
      const dry = await purgeDeletedRegistryEntries(reg, { user: 'root' }, { dryRun: true });
      expect(dry.versions).toEqual([{ name: 'credit', version: Number(v2) }]);
      await purgeDeletedRegistryEntries(reg, { user: 'root' });
      expect((await failure(reg.restoreModelVersion('credit', v2))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      // Numbers are not reused after a purge.
      expect(Number(await trainedVersion(good))).toBe(Number(v2) + 1);

      await reg.createRegisteredModel({ name: 'imported' });
      const file = 'registry/imported/abc/model.onnx';
      await reg.artifacts.put(file, 'onnx bytes');
      await reg.createModelVersion({
        name: 'imported',
        source: `kiln-registry:/${path.posix.dirname(file)}`,
      });
      await reg.deleteRegisteredModel('imported', { user: 'alice' });
      const purged = await purgeDeletedRegistryEntries(reg, { user: 'root' });
      expect(purged.models).toEqual(['imported']);
      expect(purged.artifactsDeleted).toEqual(['registry/imported/abc']);
      expect(await reg.artifacts.exists(file)).toBe(false);
      // The name is free again, and the chain still verifies with the purges in it.
      await reg.createRegisteredModel({ name: 'imported' });
      expect((await verifyAuditChain(reg.db)).ok).toBe(true);
    });
  });
}
