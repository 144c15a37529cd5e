import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import {
  deleteDeployment,
  getDeployment,
  listDeployments,
  type StoredDeployment,
  setDeployment,
} from '../registry/index.js';
import { actorOf, common, type ModelsOptions, print, when, withRegistry } from './models.js';
import { renderTable } from './table.js';
import { collect } from './tracking-connection.js';

/**
 * `kiln deploy set|show|ls|rm`: stored deployments (registry versions with a traffic split and
 * a shadow), which `kiln serve deployments:/<name>` serves and follows. Every change is
 * role-checked (editor on each model named) and audited; `kiln models lineage` shows them.
 */
function reference(text: string, flag: string): { model: string; amount: number | undefined } {
  const eq = text.lastIndexOf('=');
  const ref = eq < 0 ? text : text.slice(0, eq);
  const amountText = eq < 0 ? undefined : text.slice(eq + 1);
  const amount = amountText === undefined ? undefined : Number(amountText);
  if (ref === '' || (amount !== undefined && (amountText === '' || !Number.isFinite(amount)))) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${flag} '${text}': expected NAME/VERSION[=N] or NAME@ALIAS[=N] (models:/ optional)`,
    );
  }
  return { model: /^models:\//i.test(ref) ? ref : `models:/${ref}`, amount };
}

function deploymentText(d: StoredDeployment): string {
  const total = d.versions.reduce((s, v) => s + v.weight, 0);
  return (
    `${d.name} (set by ${d.updated_by} at ${when(d.updated_timestamp)})\n` +
    renderTable(
      [
        ...d.versions.map((v) => ({ model: v.model, role: 'live', share: v.weight / total })),
        ...(d.shadow ? [{ model: d.shadow.model, role: 'shadow', share: d.shadow.share }] : []),
      ],
      [
        { header: 'MODEL', value: (r) => r.model, maxWidth: 60 },
        { header: 'ROLE', value: (r) => r.role },
        { header: 'SHARE', value: (r) => `${Math.round(r.share * 1000) / 10}%` },
      ],
    )
  );
}

export function registerDeployCommands(program: Command): void {
  const deploy = program
    .command('deploy')
    .description(
      'stored deployments: registry versions with a canary split and a shadow (kiln serve deployments:/NAME)',
    );

  common(
    deploy
      .command('set <name>')
      .description('create or change a deployment (servers following it swap within seconds)'),
  )
    .option(
      '--version <ref=weight>',
      'a live version and its traffic weight: flights/7=90, flights@challenger=10 (repeat)',
      collect,
      [],
    )
    .option(
      '--shadow <ref=share>',
      'mirror this share (0 to 1) of traffic to a version whose answers are only logged',
    )
    .option('--reason <text>', 'why (recorded in the audit log)')
    .action(async (name: string, opts: ModelsOptions & { version: string[]; shadow?: string }) => {
      if (opts.version.length === 0)
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          '--version is required (e.g. --version flights/7=90 --version flights/8=10)',
        );
      const versions = opts.version.map((v) => {
        const r = reference(v, '--version');
        return { model: r.model, weight: r.amount ?? 1 };
      });
      const shadow = opts.shadow === undefined ? undefined : reference(opts.shadow, '--shadow');
      const actor = actorOf(opts);
      await withRegistry(opts, async (registry) => {
        const d = await setDeployment(
          registry,
          {
            name,
            versions,
            ...(shadow ? { shadow: { model: shadow.model, share: shadow.amount ?? 1 } } : {}),
          },
          actor,
        );
        print(opts, d, () => deploymentText(d));
      });
    });

  common(deploy.command('show <name>').description('a stored deployment')).action(
    async (name: string, opts: ModelsOptions) => {
      await withRegistry(opts, async (registry) => {
        const d = await getDeployment(registry, name);
        print(opts, d, () => deploymentText(d));
      });
    },
  );

  common(deploy.command('ls').description('stored deployments')).action(async (opts: ModelsOptions) => {
    await withRegistry(opts, async (registry) => {
      const all = await listDeployments(registry);
      print(opts, all, () =>
        renderTable(
          all,
          [
            { header: 'NAME', value: (d) => d.name },
            {
              header: 'LIVE',
              value: (d) =>
                d.versions.map((v) => `${v.model.replace(/^models:\//, '')}=${v.weight}`).join(' '),
              maxWidth: 80,
            },
            {
              header: 'SHADOW',
              value: (d) => (d.shadow ? `${d.shadow.model.replace(/^models:\//, '')}=${d.shadow.share}` : ''),
            },
            { header: 'BY', value: (d) => d.updated_by },
            { header: 'UPDATED', value: (d) => when(d.updated_timestamp) },
          ],
          { empty: 'no deployments' },
        ),
      );
    });
  });

  common(
    deploy
      .command('rm <name>')
      .description('delete a stored deployment (servers keep serving its last split)'),
  )
    .option('--reason <text>', 'why (recorded in the audit log)')
    .action(async (name: string, opts: ModelsOptions) => {
      const actor = actorOf(opts);
      await withRegistry(opts, async (registry) => {
        await deleteDeployment(registry, name, actor);
        print(opts, { deleted: name }, () => `deleted deployment ${name}\n`);
      });
    });
}
