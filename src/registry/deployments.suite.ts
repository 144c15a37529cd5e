import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { grantRole, readAuditLog, verifyAuditChain } from '../auth/index.js';
import { listEvents } from '../events/index.js';
import { deleteDeployment, getDeployment, listDeployments, setDeployment } from './deployments.js';
import { modelLineage } from './lineage.js';
import { failure, type RegistryFixture } from './registry.suite.js';
import type { SqlModelRegistry } from './sql-registry.js';

/**
 * Stored deployments on one backend: the editor role is required on every model named, bad
 * references are refused by field with nothing written, every change is audited with its
 * before and after and published as an event, and lineage shows which deployments serve a
 * version (directly or through an alias, as the alias stands now).
 */
export function runDeploymentsSuite(label: string, makeFixture: () => Promise<RegistryFixture>): void {
  describe(`stored deployments (${label})`, () => {
    let fx: RegistryFixture;
    let reg: SqlModelRegistry;
    const ana = { user: 'ana' };

    beforeEach(async () => {
      fx = await makeFixture();
      reg = fx.registry;
      for (const name of ['fraud', 'other']) {
        await reg.createRegisteredModel({ name }, ana);
        for (let i = 0; i < 2; i++)
          await reg.createModelVersion(
            { name, source: `mlflow-artifacts:/0/${name}${i}/artifacts/model` },
            ana,
          );
      }
      await reg.setAlias('fraud', 'champion', '1', ana);
    });
    afterEach(async () => fx.close());

    const canary = {
      name: 'web',
      versions: [
        { model: 'models:/fraud/1', weight: 90 },
        { model: 'models:/fraud@champion', weight: 10 },
      ],
      shadow: { model: 'models:/fraud/2', share: 0.25 },
    };

    it('needs the editor role on each model it names; refuses bad references by field, writing nothing', async () => {
      const denied = await failure(setDeployment(reg, canary, ana));
      expect(denied.code).toBe('PERMISSION_DENIED');
      expect(denied.message).toContain("editor role on 'fraud'");
      await grantRole(reg.db, { user: 'ana', role: 'editor', scope: 'fraud' }, 'admin');
      const otherDenied = await failure(
        setDeployment(reg, { name: 'web', versions: [{ model: 'models:/other/1', weight: 1 }] }, ana),
      );
      expect(otherDenied.message).toContain("editor role on 'other'");

      const bad = async (req: Record<string, unknown>) =>
        (await failure(setDeployment(reg, { ...canary, ...req } as never, ana))).message;
      expect(await bad({ versions: [{ model: 'runs:/abc/model', weight: 1 }] })).toContain(
        "'versions[0].model'",
      );
      expect(await bad({ versions: [{ model: '/etc/passwd', weight: 1 }] })).toContain('Invalid model URI');
      expect(await bad({ versions: [] })).toContain("'versions'");
      expect(await bad({ versions: [{ model: 'models:/fraud/1', weight: 0 }] })).toContain('sum to 0');
      expect(await bad({ versions: [{ model: 'models:/fraud/1', weight: -1 }] })).toContain('weight');
      expect(
        await bad({
          versions: [
            { model: 'models:/fraud/1', weight: 1 },
            { model: 'models:/FRAUD/1', weight: 1 },
          ],
        }),
      ).toContain('listed twice');
      expect(await bad({ shadow: { model: 'models:/fraud/2', share: 2 } })).toContain("'shadow.share'");
      expect(await bad({ shadow: { model: 'models:/fraud/1', share: 0.5 } })).toContain(
        'also takes live traffic',
      );
      expect(await bad({ name: '../x' })).toContain("'name'");
      const missing = await failure(
        setDeployment(reg, { name: 'web', versions: [{ model: 'models:/fraud/9', weight: 1 }] }, ana),
      );
      expect(missing.code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(await listDeployments(reg)).toEqual([]);
      const audit = [];
      for await (const e of readAuditLog(reg.db)) audit.push(e.action);
      expect(audit).not.toContain('deployment.set');
      expect((await listEvents(reg.db, { type: 'deployment.set' })).length).toBe(0);
    });

    it('sets, changes and deletes, each audited and published; lineage shows who serves a version', async () => {
      await grantRole(reg.db, { user: 'ana', role: 'editor', scope: 'fraud' }, 'admin');
      const first = await setDeployment(reg, canary, { ...ana, reason: 'canary 10%' });
      expect(first).toMatchObject({
        name: 'web',
        versions: canary.versions,
        shadow: canary.shadow,
        updated_by: 'ana',
      });
      expect(await getDeployment(reg, 'web')).toEqual(first);

      const lineage1 = await modelLineage(reg, 'fraud/1');
      expect(lineage1.deployments).toEqual([
        { deployment: 'web', via: 'models:/fraud/1', traffic: 0.9, shadow: false },
        { deployment: 'web', via: 'models:/fraud@champion', traffic: 0.1, shadow: false },
      ]);
      expect((await modelLineage(reg, 'fraud/2')).deployments).toEqual([
        { deployment: 'web', via: 'models:/fraud/2', traffic: 0, shadow: true },
      ]);
      // The alias route follows the alias: after a move it serves version 2.
      await reg.setAlias('fraud', 'champion', '2', ana);
      expect((await modelLineage(reg, 'fraud@champion')).deployments.map((d) => d.via)).toEqual([
        'models:/fraud@champion',
        'models:/fraud/2',
      ]);

      await setDeployment(reg, { name: 'web', versions: [{ model: 'models:/fraud/2', weight: 1 }] }, ana);
      const entries = [];
      for await (const e of readAuditLog(reg.db, { target: 'deployments:/web' })) entries.push(e);
      expect(entries.map((e) => e.action)).toEqual(['deployment.set', 'deployment.set']);
      expect(entries[0]!.detail).toMatchObject({ before: null, reason: 'canary 10%' });
      expect(entries[1]!.detail).toMatchObject({
        before: { versions: canary.versions, shadow: canary.shadow },
        after: { versions: [{ model: 'models:/fraud/2', weight: 1 }] },
        resolved: { 'models:/fraud/2': 'models:/fraud/2' },
      });
      const events = await listEvents(reg.db, { type: 'deployment.set' });
      expect(events).toHaveLength(2);
      expect(events[0]).toMatchObject({ subject: 'deployments:/web', actor: 'ana' });

      const outsider = await failure(deleteDeployment(reg, 'web', { user: 'mallory' }));
      expect(outsider.code).toBe('PERMISSION_DENIED');
      await deleteDeployment(reg, 'web', ana);
      expect((await failure(getDeployment(reg, 'web'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect((await modelLineage(reg, 'fraud/2')).deployments).toEqual([]);
      expect((await verifyAuditChain(reg.db)).ok).toBe(true);
    });
  });
}
