import type { Command } from 'commander';
import type { Experiment } from '../tracking/index.js';
import { formatTimestamp, printJson, renderTable } from './table.js';
import {
  addWorkspaceOptions,
  collect,
  parseKeyValue,
  parsePositiveInt,
  parseViewType,
  type WorkspaceCommandOptions,
  withWorkspace,
} from './tracking-connection.js';

interface ListOptions extends WorkspaceCommandOptions {
  view?: string;
  filter?: string;
  orderBy?: string[];
  maxResults?: string;
}

interface CreateOptions extends WorkspaceCommandOptions {
  tag?: string[];
  artifactLocation?: string;
}

/** `kiln experiments ls|create`. */
export function registerExperimentsCommands(program: Command): void {
  const group = program.command('experiments').description('list and create tracking experiments');

  addWorkspaceOptions(
    group
      .command('ls')
      .description('list experiments')
      .option('--view <active|deleted|all>', 'which lifecycle stage to show (default active)')
      .option('--filter <expr>', 'MLflow filter, e.g. "name LIKE \'fraud%\'"')
      .option('--order-by <clause>', "e.g. 'name' or 'creation_time DESC' (repeatable)", collect)
      .option('--max-results <n>', 'show at most n experiments'),
  ).action(async (opts: ListOptions) => {
    const viewType = parseViewType(opts.view);
    const maxResults = parsePositiveInt('--max-results', opts.maxResults);
    const experiments = await withWorkspace(opts, (kiln) =>
      kiln.experiments.list({ viewType, filter: opts.filter, orderBy: opts.orderBy, maxResults }),
    );
    if (opts.json) {
      printJson({ experiments });
      return;
    }
    const showStage = viewType !== undefined && viewType !== 'ACTIVE_ONLY';
    process.stdout.write(
      renderTable<Experiment>(
        experiments,
        [
          { header: 'ID', value: (e) => e.experiment_id, align: 'right' },
          { header: 'NAME', value: (e) => e.name },
          ...(showStage ? [{ header: 'STAGE', value: (e: Experiment) => e.lifecycle_stage }] : []),
          { header: 'CREATED (UTC)', value: (e) => formatTimestamp(e.creation_time) },
          { header: 'ARTIFACT LOCATION', value: (e) => e.artifact_location, maxWidth: 80 },
        ],
        { empty: 'no experiments' },
      ),
    );
  });

  addWorkspaceOptions(
    group
      .command('create <name>')
      .description('create an experiment')
      .option('--tag <key=value>', 'experiment tag (repeatable)', collect)
      .option('--artifact-location <uri>', 'where its runs store artifacts (default: the server decides)'),
  ).action(async (name: string, opts: CreateOptions) => {
    const tags = Object.fromEntries((opts.tag ?? []).map((t) => parseKeyValue('--tag', t)));
    const experiment = await withWorkspace(opts, (kiln) =>
      kiln.experiments.create(name, { tags, artifactLocation: opts.artifactLocation }),
    );
    if (opts.json) printJson({ experiment });
    else
      process.stdout.write(`created experiment '${experiment.name}' with id ${experiment.experiment_id}\n`);
  });
}
