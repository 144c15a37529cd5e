import fs from 'node:fs';
import type { Command } from 'commander';
import {
  createToken,
  grantRole,
  listRoleGrants,
  listTokens,
  localUser,
  parseRole,
  readAuditLog,
  revokeRole,
  revokeToken,
  type TokenInfo,
  verifyAuditChain,
} from '../auth/index.js';
import { runHeartbeatSettings } from '../config.js';
import { KilnError } from '../errors.js';
import { SqlPipelineStore, sweepAbandonedStaging } from '../pipeline/index.js';
import {
  type Actor,
  approveVersion,
  datasetUsedBy,
  getModelCard,
  getPromotionPolicy,
  importOnnxModel,
  type ModelVersion,
  modelLineage,
  type PromotionResult,
  parseModelUri,
  promoteVersion,
  purgeDeletedRegistryEntries,
  type RegisteredModel,
  renderModelCardMarkdown,
  type SqlModelRegistry,
  setPromotionPolicy,
  updateModelCard,
} from '../registry/index.js';
import type { SqlTrackingStore } from '../tracking/index.js';
import { openWorkspace, type Workspace } from '../workspace.js';
import { renderKeyValues, renderTable } from './table.js';
import {
  addWorkspaceOptions,
  collect,
  parseAge,
  parseKeyValue,
  type WorkspaceCommandOptions,
  workspaceTarget,
} from './tracking-connection.js';

/**
 * `kiln models …` (the registry and its governance), `kiln audit …`, `kiln auth grant|revoke|ls`
 * and `kiln gc`. Every command opens the same store `kiln train` writes to (`--tracking-uri`,
 * else KILN_TRACKING_URI / MLFLOW_TRACKING_URI, else ./.kiln), prints a table, or JSON with
 * `--json`. Who acts is `--user`, else KILN_USER, else the OS user: a declared name that the
 * alias history and the audit log record (proven identities need `kiln server --auth`).
 */
export interface ModelsOptions extends WorkspaceCommandOptions {
  user?: string;
  reason?: string;
}

export function actorOf(opts: ModelsOptions): Actor {
  const user = opts.user || localUser();
  if (!user || user.length > 256)
    throw new KilnError('INVALID_PARAMETER_VALUE', '--user: 1 to 256 characters');
  return { user, ...(opts.reason ? { reason: opts.reason } : {}) };
}

export async function withRegistry<T>(
  opts: ModelsOptions,
  fn: (registry: SqlModelRegistry, workspace: Workspace) => Promise<T>,
): Promise<T> {
  const workspace = await openWorkspace(workspaceTarget(opts));
  try {
    if (!workspace.registry) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--tracking-uri ${workspace.location}: the models, audit, auth and gc commands need the metadata store itself (a folder, sqlite:// or postgres://); against a server use its REST API (/api/2.0/mlflow/registered-models/…, /api/kiln/registry/…)`,
      );
    }
    return await fn(workspace.registry, workspace);
  } finally {
    await workspace.close();
  }
}

export function common(cmd: Command): Command {
  return addWorkspaceOptions(cmd).option(
    '--user <name>',
    'who is acting (default: KILN_USER, else the OS user)',
  );
}

export function print(opts: { json?: boolean }, value: unknown, text: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : text());
}

export const when = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');

function parseVersionFlag(text: string | undefined, flag = '--version'): string {
  if (text === undefined || !/^\d{1,9}$/.test(text) || Number(text) < 1) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${flag} must be a version number, got '${text ?? ''}'`);
  }
  return text;
}

/** `name`, `name/3` or `name@alias` (with or without `models:/`). */
function parseModelRef(text: string): { name: string; version?: string; alias?: string } {
  if (!/[/@]/.test(text.replace(/^models:\/+/i, ''))) return { name: text.replace(/^models:\/+/i, '') };
  const ref = parseModelUri(text.startsWith('models:') ? text : `models:/${text}`, 'model');
  if (ref.alias !== undefined) return { name: ref.name, alias: ref.alias };
  if (ref.version !== undefined) return { name: ref.name, version: String(ref.version) };
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    `model '${text}': expected NAME, NAME/VERSION or NAME@ALIAS`,
  );
}

/** `30d`, `12h`, `45m`, `0` → milliseconds. */
function tokenState(t: TokenInfo): string {
  if (t.revoked_time) return `revoked ${when(t.revoked_time)} by ${t.revoked_by}`;
  if (t.expires_time && t.expires_time <= Date.now()) return 'expired';
  return 'active';
}

/** An ISO date/time or milliseconds since the epoch. */
function parseTime(text: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--at must be an ISO time or epoch milliseconds, got '${text}'`,
    );
  return ms;
}

function versionTable(versions: ModelVersion[]): string {
  return renderTable(
    versions,
    [
      { header: 'VERSION', value: (v) => Number(v.version) },
      { header: 'ALIASES', value: (v) => v.aliases.join(',') },
      { header: 'STAGE', value: (v) => v.current_stage },
      { header: 'RUN', value: (v) => v.run_id ?? '' },
      { header: 'BY', value: (v) => v.user_id ?? '' },
      { header: 'CREATED', value: (v) => when(v.creation_timestamp) },
      { header: 'SOURCE', value: (v) => v.source, maxWidth: 50 },
    ],
    { empty: 'no versions' },
  );
}

function promotionText(result: PromotionResult): string {
  const head = `${result.decision.toUpperCase()}: ${result.name} version ${result.version} → @${result.alias} (holder: ${result.incumbent_version ?? 'none'}, decision ${result.promotion_id})\n`;
  return (
    head +
    renderTable(result.rules, [
      { header: 'RULE', value: (r) => r.rule },
      { header: 'RESULT', value: (r) => r.outcome },
      { header: 'DETAIL', value: (r) => r.detail, maxWidth: 140 },
    ])
  );
}

export function registerModelsCommands(program: Command): void {
  const models = program
    .command('models')
    .description('model registry: versions, aliases, cards, the promotion gate');

  common(models.command('ls').description('list registered models'))
    .option('--filter <expr>', 'MLflow filter, e.g. "name LIKE \'fraud%\'"')
    .action(async (opts: ModelsOptions & { filter?: string }) => {
      await withRegistry(opts, async (registry) => {
        const all: RegisteredModel[] = [];
        let token: string | undefined;
        do {
          const page = await registry.searchRegisteredModels({
            filter: opts.filter,
            max_results: 1000,
            page_token: token,
          });
          all.push(...page.items);
          token = page.next_page_token;
        } while (token);
        print(opts, all, () =>
          renderTable(
            all,
            [
              { header: 'NAME', value: (m) => m.name },
              {
                header: 'LATEST',
                value: (m) => Math.max(0, ...m.latest_versions.map((v) => Number(v.version))) || '',
              },
              { header: 'ALIASES', value: (m) => m.aliases.map((a) => `${a.alias}=${a.version}`).join(' ') },
              { header: 'UPDATED', value: (m) => when(m.last_updated_timestamp) },
              { header: 'DESCRIPTION', value: (m) => m.description ?? '', maxWidth: 50 },
            ],
            { empty: 'no registered models' },
          ),
        );
      });
    });

  common(
    models
      .command('show <model>')
      .description('a model and its versions, or one version (NAME/V, NAME@ALIAS)'),
  ).action(async (model: string, opts: ModelsOptions) => {
    await withRegistry(opts, async (registry) => {
      const ref = parseModelRef(model);
      if (ref.version || ref.alias) {
        const v = ref.alias
          ? await registry.getModelVersionByAlias(ref.name, ref.alias)
          : await registry.getModelVersion(ref.name, ref.version!);
        return print(opts, v, () =>
          renderKeyValues([
            ['name', v.name],
            ['version', v.version],
            ['aliases', v.aliases.join(', ')],
            ['stage', v.current_stage],
            ['source', v.source],
            ['run', v.run_id ?? ''],
            ['registered by', v.user_id ?? ''],
            ['created', when(v.creation_timestamp)],
            ['description', v.description ?? ''],
            ...v.tags.map((t) => [`tag ${t.key}`, t.value] as [string, string]),
          ]),
        );
      }
      const m = await registry.getRegisteredModel(ref.name);
      const versions = await registry.searchModelVersions({
        filter: `name = '${m.name.replace(/'/g, "\\'")}'`,
        order_by: ['version_number DESC'],
      });
      const protectedAliases = await registry.protectedAliases(m.name);
      print(
        opts,
        { ...m, versions: versions.items, protected_aliases: protectedAliases },
        () =>
          renderKeyValues([
            ['name', m.name],
            ['description', m.description ?? ''],
            [
              'aliases',
              m.aliases
                .map(
                  (a) => `${a.alias}=${a.version}${protectedAliases.includes(a.alias) ? ' (protected)' : ''}`,
                )
                .join(', '),
            ],
            ['protected', protectedAliases.join(', ')],
            ['created', when(m.creation_timestamp)],
            ...m.tags.map((t) => [`tag ${t.key}`, t.value] as [string, string]),
          ]) + `\n${versionTable(versions.items)}`,
      );
    });
  });

  common(
    models
      .command('register <name>')
      .description("register a run's model as a new version (creates the model if needed)"),
  )
    .option('--run <id>', 'the run that logged the model')
    .option('--path <path>', "the model's folder inside the run's artifacts", 'model')
    .option('--source <uri>', 'register from a URI instead of a run (s3://…, mlflow-artifacts:/…, models:/…)')
    .option('--description <text>', 'version description')
    .option('--tag <key=value>', 'version tag (repeatable)', collect, [])
    .action(
      async (
        name: string,
        opts: ModelsOptions & {
          run?: string;
          path: string;
          source?: string;
          description?: string;
          tag: string[];
        },
      ) => {
        if (!opts.run && !opts.source)
          throw new KilnError('INVALID_PARAMETER_VALUE', 'give --run <id> (or --source <uri>)');
        await withRegistry(opts, async (registry) => {
          const actor = actorOf(opts);
          try {
            await registry.getRegisteredModel(name);
          } catch (e) {
            if (
              !(e instanceof KilnError) ||
              e.code !== 'RESOURCE_DOES_NOT_EXIST' ||
              e.message.includes('deleted')
            )
              throw e;
            // A registration racing this one may create it first: then it exists, as wanted
            // (MLflow's client does the same).
            await registry.createRegisteredModel({ name }, actor).catch((c) => {
              if (
                !(c instanceof KilnError) ||
                c.code !== 'RESOURCE_ALREADY_EXISTS' ||
                c.message.includes('deleted')
              )
                throw c;
            });
          }
          const tags = opts.tag.map((t) => parseKeyValue('--tag', t)).map(([key, value]) => ({ key, value }));
          const v = await registry.createModelVersion(
            {
              name,
              source: opts.source ?? `runs:/${opts.run}/${opts.path.replace(/^\/+/, '')}`,
              ...(opts.run ? { run_id: opts.run } : {}),
              ...(opts.description ? { description: opts.description } : {}),
              tags,
            },
            actor,
          );
          print(opts, v, () => `registered ${v.name} version ${v.version} from ${v.source}\n`);
        });
      },
    );

  common(
    models
      .command('import <file>')
      .description('register an ONNX file as a new version (signature read from the file)'),
  )
    .requiredOption('--name <name>', 'the registered model (created if needed)')
    .option('--description <text>', 'version description')
    .option('--tag <key=value>', 'version tag (repeatable)', collect, [])
    .action(
      async (file: string, opts: ModelsOptions & { name: string; description?: string; tag: string[] }) => {
        await withRegistry(opts, async (registry) => {
          const tags = opts.tag.map((t) => parseKeyValue('--tag', t)).map(([key, value]) => ({ key, value }));
          const { version, signature } = await importOnnxModel(
            registry,
            { file, name: opts.name, ...(opts.description ? { description: opts.description } : {}), tags },
            actorOf(opts),
          );
          print(
            opts,
            { model_version: version, signature },
            () =>
              `imported ${file} as ${version.name} version ${version.version}\n` +
              renderTable(signature.inputs, [
                { header: 'INPUT', value: (i) => i.name },
                { header: 'TYPE', value: (i) => i.type },
                { header: 'SHAPE', value: (i) => `[${i.shape.join(', ')}]` },
              ]),
          );
        });
      },
    );

  common(
    models
      .command('alias <name> <alias>')
      .description('point an alias at a version (not a protected one: use promote)'),
  )
    .option('--version <v>', 'the version')
    .option('--delete', 'remove the alias')
    .option('--reason <text>', 'why (kept in the alias history)')
    .action(
      async (name: string, alias: string, opts: ModelsOptions & { version?: string; delete?: boolean }) => {
        await withRegistry(opts, async (registry) => {
          if (opts.delete) await registry.deleteAlias(name, alias, actorOf(opts));
          else await registry.setAlias(name, alias, parseVersionFlag(opts.version), actorOf(opts));
          print(opts, { name, alias, version: opts.delete ? null : opts.version }, () =>
            opts.delete ? `removed ${name}@${alias}\n` : `${name}@${alias} → version ${opts.version}\n`,
          );
        });
      },
    );

  common(
    models
      .command('protect <name> <alias>')
      .description('only the promotion gate may move a protected alias'),
  )
    .option('--off', 'remove the protection')
    .option('--reason <text>', 'why')
    .action(async (name: string, alias: string, opts: ModelsOptions & { off?: boolean }) => {
      await withRegistry(opts, async (registry) => {
        await registry.protectAlias(name, alias, !opts.off, actorOf(opts));
        print(
          opts,
          { name, alias, protected: !opts.off },
          () => `${name}@${alias} is ${opts.off ? 'no longer ' : ''}protected\n`,
        );
      });
    });

  common(
    models.command('history <model>').description('who moved NAME@ALIAS when and why (all aliases for NAME)'),
  )
    .option('--at <time>', 'which version the alias held at this moment (ISO time or epoch ms)')
    .action(async (model: string, opts: ModelsOptions & { at?: string }) => {
      await withRegistry(opts, async (registry) => {
        const ref = parseModelRef(model);
        if (ref.version)
          throw new KilnError('INVALID_PARAMETER_VALUE', `history takes NAME or NAME@ALIAS, got '${model}'`);
        if (opts.at !== undefined) {
          if (!ref.alias) throw new KilnError('INVALID_PARAMETER_VALUE', '--at needs NAME@ALIAS');
          const at = parseTime(opts.at);
          const version = await registry.aliasAt(ref.name, ref.alias, at);
          return print(
            opts,
            { name: ref.name, alias: ref.alias, at, version },
            () =>
              `${ref.name}@${ref.alias} at ${when(at)}: ${version === null ? 'pointed nowhere' : `version ${version}`}\n`,
          );
        }
        const events = await registry.aliasHistory(ref.name, ref.alias);
        print(opts, events, () =>
          renderTable(
            events,
            [
              { header: 'TIME', value: (e) => when(e.time) },
              { header: 'ALIAS', value: (e) => e.alias },
              { header: 'FROM', value: (e) => e.from_version ?? '-' },
              { header: 'TO', value: (e) => e.to_version ?? '(deleted)' },
              { header: 'BY', value: (e) => e.actor },
              {
                header: 'GATE',
                value: (e) => (e.promotion_id !== undefined ? `decision ${e.promotion_id}` : ''),
              },
              { header: 'REASON', value: (e) => e.reason ?? '', maxWidth: 60 },
            ],
            { empty: 'no alias moves recorded' },
          ),
        );
      });
    });

  const policy = models.command('policy').description("the model's promotion policy (YAML)");
  common(
    policy.command('set <name> <file>').description('store the policy (its aliases become protected)'),
  ).action(async (name: string, file: string, opts: ModelsOptions) => {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `cannot read policy file ${file}: ${(e as Error).message}`,
      );
    }
    await withRegistry(opts, async (registry) => {
      const stored = await setPromotionPolicy(registry, name, text, actorOf(opts)).catch((e) => {
        if (e instanceof KilnError && e.message.startsWith('policy:'))
          throw new KilnError(e.code, `${file}${e.message.slice('policy'.length)}`);
        throw e;
      });
      print(
        opts,
        stored,
        () =>
          `policy for ${name} stored (sha256 ${stored.sha256.slice(0, 12)}); governs ${stored.policy.aliases.join(', ')}\n`,
      );
    });
  });
  common(policy.command('show <name>')).action(async (name: string, opts: ModelsOptions) => {
    await withRegistry(opts, async (registry) => {
      const stored = await getPromotionPolicy(registry, name);
      if (!stored)
        throw new KilnError('RESOURCE_DOES_NOT_EXIST', `registered model '${name}' has no promotion policy`);
      print(opts, stored, () => (stored.yaml.endsWith('\n') ? stored.yaml : `${stored.yaml}\n`));
    });
  });

  common(
    models
      .command('promote <name>')
      .description("move an alias through the promotion gate (the model's policy)"),
  )
    .requiredOption('--version <v>', 'the candidate version')
    .requiredOption('--alias <alias>', 'the alias, e.g. champion')
    .option('--force', 'admins only: move it even if rules fail (audited)')
    .option('--reason <text>', 'why (kept in the alias history and audit log)')
    .action(
      async (name: string, opts: ModelsOptions & { version: string; alias: string; force?: boolean }) => {
        await withRegistry(opts, async (registry) => {
          const result = await promoteVersion(
            registry,
            { name, version: parseVersionFlag(opts.version), alias: opts.alias, force: opts.force },
            actorOf(opts),
          );
          print(opts, result, () => promotionText(result));
          if (result.decision === 'refused') {
            const failed = result.rules.filter((r) => r.outcome === 'failed');
            throw new KilnError(
              'PERMISSION_DENIED',
              `promotion refused by ${failed.length} rule(s): ${failed.map((r) => `${r.rule}: ${r.detail}`).join('; ')}`,
            );
          }
        });
      },
    );

  common(
    models
      .command('approve <name>')
      .description('approve a version for an alias (approver role; not your own)'),
  )
    .requiredOption('--version <v>', 'the version')
    .requiredOption('--alias <alias>', 'the alias it is approved for')
    .option('--comment <text>', 'note kept with the approval')
    .action(
      async (name: string, opts: ModelsOptions & { version: string; alias: string; comment?: string }) => {
        await withRegistry(opts, async (registry) => {
          const approval = await approveVersion(
            registry,
            {
              name,
              version: parseVersionFlag(opts.version),
              alias: opts.alias,
              ...(opts.comment ? { comment: opts.comment } : {}),
            },
            actorOf(opts),
          );
          print(
            opts,
            approval,
            () =>
              `${approval.approver} approved ${name} version ${approval.version} for @${approval.alias}\n`,
          );
        });
      },
    );

  common(
    models
      .command('card <model>')
      .description('the model card of NAME/V or NAME@ALIAS (Markdown, or JSON with --json)'),
  )
    .option(
      '--set <field=value>',
      'edit a field: intended_use, owner, limitations, personal_data, notes (repeatable)',
      collect,
      [],
    )
    .option('--out <file>', 'write the Markdown to a file')
    .action(async (model: string, opts: ModelsOptions & { set: string[]; out?: string }) => {
      await withRegistry(opts, async (registry) => {
        const ref = parseModelRef(model);
        const version = ref.alias
          ? (await registry.getModelVersionByAlias(ref.name, ref.alias)).version
          : ref.version;
        if (!version)
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `card takes NAME/VERSION or NAME@ALIAS, got '${model}'`,
          );
        let card = await getModelCard(registry, ref.name, version);
        if (opts.set.length) {
          const fields = Object.fromEntries(opts.set.map((s) => parseKeyValue('--set', s)));
          card = await updateModelCard(registry, ref.name, version, fields, actorOf(opts));
        }
        const markdown = renderModelCardMarkdown(card);
        if (opts.out) fs.writeFileSync(opts.out, markdown);
        print(opts, card, () => (opts.out ? `wrote ${opts.out}\n` : markdown));
      });
    });

  common(
    models
      .command('lineage <model>')
      .description('data → split → run → version → alias moves, for NAME/V or NAME@ALIAS'),
  ).action(async (model: string, opts: ModelsOptions) => {
    await withRegistry(opts, async (registry) => {
      const l = await modelLineage(registry, model);
      print(opts, l, () => {
        const lines = [
          `dataset   ${l.dataset ? `${l.dataset.name}@${l.dataset.version} (${l.dataset.hash.slice(0, 12)})${l.dataset.parents.length ? ` from ${l.dataset.parents.map((p) => `${p.name}@${p.version}`).join(', ')}` : ''}` : (l.data_file ?? 'unknown')}`,
          `split     ${
            l.split
              ? Object.entries(l.split)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(' ')
              : 'not recorded'
          }`,
          `run       ${l.run ? `${l.run.run_id} (${l.run.run_name}, experiment ${l.run.experiment_id})${l.run.study ? ` study ${l.run.study} trial ${l.run.trial ?? '?'}` : ''}` : 'none'}`,
          `version   ${l.model.name}/${l.model.version}${l.model.registered_by ? ` by ${l.model.registered_by}` : ''} at ${when(l.model.creation_timestamp)}`,
          `aliases   ${l.aliases.join(', ') || 'none'}`,
          ...l.alias_events.map(
            (e) =>
              `  ${when(e.time)} @${e.alias} ${e.from_version ?? '-'} → ${e.to_version ?? '(deleted)'} by ${e.actor}${e.reason ? ` (${e.reason})` : ''}`,
          ),
          ...l.promotions.map(
            (p) => `  gate ${p.promotion_id}: ${p.decision} for @${p.alias} by ${p.actor} at ${when(p.time)}`,
          ),
          `deployed  ${l.deployments.length ? '' : 'nowhere (kiln deploy set)'}`,
          ...l.deployments.map(
            (d) =>
              `  ${d.deployment} via ${d.via}: ${d.shadow ? 'shadow' : `${Math.round(d.traffic * 1000) / 10}% of traffic`}`,
          ),
        ];
        return `${lines.join('\n')}\n`;
      });
    });
  });

  common(
    models
      .command('delete <model>')
      .description('soft-delete NAME or NAME/V (restore brings it back until kiln gc)'),
  )
    .option('--reason <text>', 'why')
    .action(async (model: string, opts: ModelsOptions) => {
      await withRegistry(opts, async (registry) => {
        const ref = parseModelRef(model);
        if (ref.alias)
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            'delete takes NAME or NAME/VERSION; remove an alias with kiln models alias --delete',
          );
        if (ref.version) await registry.deleteModelVersion(ref.name, ref.version, actorOf(opts));
        else await registry.deleteRegisteredModel(ref.name, actorOf(opts));
        print(
          opts,
          { deleted: model },
          () => `deleted ${model} (kiln models restore ${model} brings it back until kiln gc)\n`,
        );
      });
    });

  common(models.command('restore <model>').description('undo a delete of NAME or NAME/V')).action(
    async (model: string, opts: ModelsOptions) => {
      await withRegistry(opts, async (registry) => {
        const ref = parseModelRef(model);
        if (ref.version) await registry.restoreModelVersion(ref.name, ref.version, actorOf(opts));
        else await registry.restoreRegisteredModel(ref.name, actorOf(opts));
        print(opts, { restored: model }, () => `restored ${model}\n`);
      });
    },
  );

  common(
    models
      .command('used-by <dataset>')
      .description('runs and model versions trained on dataset NAME@VERSION'),
  ).action(async (dataset: string, opts: ModelsOptions) => printUsedBy(dataset, opts));
  // `kiln data used-by` is the same question asked from the data side.
  const data = program.commands.find((c) => c.name() === 'data');
  if (data) {
    common(
      data
        .command('used-by <dataset>')
        .description('runs and model versions trained on dataset NAME@VERSION'),
    ).action(async (dataset: string, opts: ModelsOptions) => printUsedBy(dataset, opts));
  }

  registerAuditCommands(program);
}

async function printUsedBy(dataset: string, opts: ModelsOptions): Promise<void> {
  const m = /^([^@]+)@(\d+)$/.exec(dataset);
  if (!m) throw new KilnError('INVALID_PARAMETER_VALUE', `dataset must be NAME@VERSION, got '${dataset}'`);
  await withRegistry(opts, async (registry) => {
    const uses = await datasetUsedBy(registry, m[1]!, Number(m[2]));
    print(opts, uses, () =>
      renderTable(
        uses,
        [
          { header: 'RUN', value: (u) => u.run_id },
          { header: 'NAME', value: (u) => u.run_name },
          { header: 'EXPERIMENT', value: (u) => u.experiment_id },
          {
            header: 'MODEL VERSIONS',
            value: (u) =>
              u.model_versions
                .map((v) => `${v.name}/${v.version}${v.aliases.length ? ` (${v.aliases.join(',')})` : ''}`)
                .join(' '),
          },
        ],
        { empty: `no runs trained on ${dataset}` },
      ),
    );
  });
}

function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  common(audit.command('verify').description('re-walk the hash chain; names the first bad entry'))
    .option('--expect-head <hash>', 'a head hash recorded earlier: catches a rewritten chain')
    .action(async (opts: ModelsOptions & { expectHead?: string }) => {
      await withRegistry(opts, async (registry) => {
        const result = await verifyAuditChain(registry.db, { expectHead: opts.expectHead });
        print(opts, result, () =>
          result.ok ? `audit chain ok: ${result.entries} entries, head ${result.head}\n` : '',
        );
        if (!result.ok)
          throw new KilnError(
            'INVALID_STATE',
            `audit chain broken at entry ${result.seq}: ${result.problem}`,
          );
      });
    });
  common(audit.command('export').description('every entry as JSONL (one JSON object a line)'))
    .option('--out <file>', 'write to a file instead of stdout')
    .option('--target <uri>', 'only entries about this target, e.g. models:/fraud')
    .action(async (opts: ModelsOptions & { out?: string; target?: string }) => {
      await withRegistry(opts, async (registry) => {
        const out: NodeJS.WritableStream = opts.out ? fs.createWriteStream(opts.out) : process.stdout;
        let n = 0;
        for await (const entry of readAuditLog(registry.db, { target: opts.target })) {
          if (!out.write(`${JSON.stringify(entry)}\n`))
            await new Promise<void>((r) => out.once('drain', () => r()));
          n++;
        }
        if (opts.out) {
          await new Promise<void>((resolve, reject) =>
            (out as fs.WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())),
          );
          process.stderr.write(`wrote ${n} entries to ${opts.out}\n`);
        }
      });
    });

  const auth = program
    .command('auth')
    .description('roles (viewer < editor < approver < admin), per model or name pattern, and API tokens');
  common(auth.command('grant').description('grant a role'))
    .requiredOption('--to <user>', 'the user receiving the role')
    .requiredOption('--role <role>', 'viewer, editor, approver or admin')
    .option('--model <pattern>', "a registered model name or glob ('fraud-*'); default every model", '*')
    .action(async (opts: ModelsOptions & { to: string; role: string; model: string }) => {
      await withRegistry(opts, async (registry) => {
        await grantRole(
          registry.db,
          { user: opts.to, role: parseRole(opts.role, '--role'), scope: opts.model },
          actorOf(opts).user,
        );
        print(
          opts,
          { user: opts.to, role: opts.role, scope: opts.model },
          () => `${opts.to} is ${opts.role} on ${opts.model}\n`,
        );
      });
    });
  common(auth.command('revoke').description('revoke a role'))
    .requiredOption('--from <user>', 'the user')
    .requiredOption('--role <role>', 'the role')
    .option('--model <pattern>', 'the scope it was granted on', '*')
    .action(async (opts: ModelsOptions & { from: string; role: string; model: string }) => {
      await withRegistry(opts, async (registry) => {
        const removed = await revokeRole(
          registry.db,
          { user: opts.from, role: parseRole(opts.role, '--role'), scope: opts.model },
          actorOf(opts).user,
        );
        if (!removed)
          throw new KilnError(
            'RESOURCE_DOES_NOT_EXIST',
            `${opts.from} holds no ${opts.role} grant on ${opts.model}`,
          );
        print(opts, { revoked: true }, () => `revoked ${opts.role} on ${opts.model} from ${opts.from}\n`);
      });
    });
  common(auth.command('ls').description('role grants')).action(async (opts: ModelsOptions) => {
    await withRegistry(opts, async (registry) => {
      const grants = await listRoleGrants(registry.db);
      print(opts, grants, () =>
        renderTable(
          grants,
          [
            { header: 'USER', value: (g) => g.user_id },
            { header: 'ROLE', value: (g) => g.role },
            { header: 'SCOPE', value: (g) => g.scope },
            { header: 'BY', value: (g) => g.granted_by },
            { header: 'SINCE', value: (g) => when(g.time) },
          ],
          { empty: 'no role grants' },
        ),
      );
    });
  });

  const token = auth
    .command('token')
    .description('API tokens for `kiln server --auth` (shown once, stored as a scrypt hash)');
  // `--user` names the token's holder here; who issues it is KILN_USER, else the OS user.
  addWorkspaceOptions(token.command('create').description('issue a token and print it once'))
    .requiredOption('--user <name>', 'the user the token authenticates')
    .requiredOption('--role <role>', 'viewer, editor, approver or admin')
    .option('--scope <scope>', "'*', experiment:ID, model:NAME or model:PATTERN*", '*')
    .option('--expires <age>', 'lifetime: 30d, 12h, 45m (default: never)')
    .option('--description <text>', 'what the token is for')
    .action(
      async (
        opts: WorkspaceCommandOptions & {
          user: string;
          role: string;
          scope: string;
          expires?: string;
          description?: string;
        },
      ) => {
        const expiresInMs = parseAge('--expires', opts.expires);
        await withRegistry({ ...opts, user: undefined }, async (registry) => {
          const created = await createToken(
            registry.db,
            {
              user: opts.user,
              role: parseRole(opts.role, '--role'),
              scope: opts.scope,
              expiresInMs,
              description: opts.description,
            },
            localUser(),
          );
          print(
            opts,
            { token: created.token, ...created.info },
            () =>
              `${created.token}\n` +
              `token ${created.info.token_id} for ${created.info.user}: ${created.info.role} on ${created.info.scope}` +
              `${created.info.expires_time ? `, expires ${when(created.info.expires_time)}` : ''}\n` +
              'This is the only time the token is shown; kiln keeps only its hash.\n',
          );
        });
      },
    );
  addWorkspaceOptions(
    token.command('revoke <id>').description('revoke a token (its id, or the token itself)'),
  ).action(async (id: string, opts: WorkspaceCommandOptions) => {
    await withRegistry(opts, async (registry) => {
      const info = await revokeToken(registry.db, id, localUser());
      print(opts, info, () => `revoked token ${info.token_id} of ${info.user}\n`);
    });
  });
  addWorkspaceOptions(token.command('ls').description('every token issued (never the secrets)'))
    .option('--user <name>', "only this user's tokens")
    .action(async (opts: WorkspaceCommandOptions & { user?: string }) => {
      await withRegistry({ ...opts, user: undefined }, async (registry) => {
        const tokens = await listTokens(registry.db, { user: opts.user });
        print(opts, tokens, () =>
          renderTable(
            tokens,
            [
              { header: 'ID', value: (t: TokenInfo) => t.token_id },
              { header: 'USER', value: (t) => t.user },
              { header: 'ROLE', value: (t) => t.role },
              { header: 'SCOPE', value: (t) => t.scope },
              { header: 'STATE', value: (t) => tokenState(t) },
              { header: 'CREATED', value: (t) => `${when(t.created_time)} by ${t.created_by}` },
              { header: 'EXPIRES', value: (t) => (t.expires_time ? when(t.expires_time) : 'never') },
            ],
            { empty: 'no tokens' },
          ),
        );
      });
    });

  common(
    program
      .command('gc')
      .description('purge deleted model versions and models for real (frees the names; audited)'),
  )
    .option(
      '--older-than <age>',
      'only what was deleted at least this long ago: 30d, 12h, 45m (default: all)',
    )
    .option('--dry-run', 'list what would be purged (or closed, with --stale)')
    .option(
      '--stale',
      'instead of purging: end RUNNING runs whose owner stopped beating (kill -9, a crash) as FAILED, tagged kiln.error.code STALE_RUN; audited',
    )
    .option(
      '--staging',
      "instead of purging: delete the BullMQ executor's staging folders of pipeline runs no longer RUNNING (left by a killed kiln pipeline run or a worker that delivered late)",
    )
    .option(
      '--stale-after <age>',
      'with --stale: no heartbeat for this long, e.g. 10m, 90s (default KILN_RUN_STALE_MS, else 2m)',
    )
    .action(
      async (
        opts: ModelsOptions & {
          olderThan?: string;
          dryRun?: boolean;
          stale?: boolean;
          staleAfter?: string;
          staging?: boolean;
        },
      ) => {
        if (opts.staging) {
          if (opts.stale || opts.olderThan !== undefined || opts.staleAfter !== undefined)
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              '--staging sweeps staging folders; it goes with --dry-run only',
            );
          await withRegistry(opts, async (_registry, workspace) => {
            const result = await sweepAbandonedStaging(
              new SqlPipelineStore(workspace.store!),
              workspace.artifacts!,
              { dryRun: opts.dryRun === true },
            );
            print(
              opts,
              { dry_run: opts.dryRun === true, ...result },
              () =>
                `${opts.dryRun ? 'would remove' : 'removed'} ${result.removed.length} abandoned staging folder(s)${result.removed.length ? `: ${result.removed.map((r) => `${r.jobId} (${r.why})`).join(', ')}` : ''}; kept ${result.kept.length}\n`,
            );
          });
          return;
        }
        if (opts.stale) {
          if (opts.olderThan !== undefined)
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              '--older-than is for purging; --stale closes stale runs',
            );
          await closeStaleRuns(opts);
          return;
        }
        if (opts.staleAfter !== undefined)
          throw new KilnError('INVALID_PARAMETER_VALUE', '--stale-after goes with --stale');
        const olderThanMs = parseAge('--older-than', opts.olderThan);
        await withRegistry(opts, async (registry) => {
          const result = await purgeDeletedRegistryEntries(registry, actorOf(opts), {
            olderThanMs,
            dryRun: opts.dryRun,
          });
          print(
            opts,
            result,
            () =>
              `${opts.dryRun ? 'would purge' : 'purged'} ${result.versions.length} model version(s)${result.versions.length ? ` (${result.versions.map((v) => `${v.name}/${v.version}`).join(', ')})` : ''}, ${result.models.length} model(s)${result.models.length ? ` (${result.models.join(', ')})` : ''}, ${result.artifactsDeleted.length} artifact folder(s)\n`,
          );
        });
      },
    );
}

/** `kiln gc --stale`: the metadata store's stale runs, closed (or listed with --dry-run). */
async function closeStaleRuns(
  opts: ModelsOptions & { dryRun?: boolean; staleAfter?: string },
): Promise<void> {
  const olderThanMs = parseAge('--stale-after', opts.staleAfter) ?? runHeartbeatSettings().staleAfterMs;
  const actor = actorOf(opts);
  await withRegistry(opts, async (_registry, workspace) => {
    // A workspace with a registry is a local one: its tracking store is the SQL one.
    const tracking = workspace.tracking as SqlTrackingStore;
    const runs = await tracking.staleRuns({
      olderThanMs,
      close: opts.dryRun !== true,
      reason: `closed by kiln gc --stale: no heartbeat for ${Math.round(olderThanMs / 1000)} s`,
      actor: actor.user,
    });
    print(opts, { stale_after_ms: olderThanMs, dry_run: opts.dryRun === true, runs }, () =>
      runs.length === 0
        ? 'no stale runs\n'
        : `${opts.dryRun ? 'would close' : 'closed'} ${runs.length} stale run(s) as FAILED:\n${renderTable(
            runs,
            [
              { header: 'RUN ID', value: (r) => r.run_id },
              { header: 'NAME', value: (r) => r.run_name, maxWidth: 30 },
              { header: 'EXPERIMENT', value: (r) => r.experiment_id },
              { header: 'LAST HEARTBEAT (UTC)', value: (r) => when(r.heartbeat_ms) },
            ],
            { empty: '' },
          )}`,
    );
  });
}
