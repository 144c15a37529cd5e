import fs from 'node:fs';
import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import { attachLabels, parseFeedback } from '../monitor/index.js';
import { openWorkspace } from '../workspace.js';
import { common, type ModelsOptions, print } from './models.js';
import { workspaceTarget } from './tracking-connection.js';

/**
 * `kiln monitor …` on the workspace's metadata store (where `kiln serve --prediction-store`
 * logs). Against a server, POST /api/kiln/monitor/feedback does the same.
 */
export function registerMonitorCommands(program: Command): void {
  const monitor = program
    .command('monitor')
    .description('prediction log, labels (drift, performance and alerts: see docs/monitoring.md)');

  common(
    monitor
      .command('feedback')
      .description('attach ground truth to logged predictions (CSV request_id,label or JSON lines)'),
  )
    .argument('<file>', 'CSV with a request_id,label header, or JSON lines {"request_id","label"}')
    .action(async (file: string, opts: ModelsOptions & { json?: boolean }) => {
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new KilnError(
          'RESOURCE_DOES_NOT_EXIST',
          `${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? e})`,
        );
      }
      // Parsed whole before anything is written: a bad line applies nothing.
      const feedback = parseFeedback(text, file);
      const workspace = await openWorkspace(workspaceTarget(opts));
      try {
        if (!workspace.store) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--tracking-uri ${workspace.location}: kiln monitor feedback needs the metadata store itself (a folder, sqlite:// or postgres://); against a server use POST /api/kiln/monitor/feedback`,
          );
        }
        const summary = await attachLabels(workspace.store, feedback);
        print(
          opts,
          summary,
          () =>
            `labelled ${summary.labelled}, unchanged ${summary.unchanged}, unknown ${summary.unknown}${summary.unknown ? ` (e.g. ${summary.unknown_ids.slice(0, 5).join(', ')})` : ''}\n`,
        );
      } finally {
        await workspace.close();
      }
    });
}
