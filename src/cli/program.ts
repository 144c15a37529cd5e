import { Command } from 'commander';
import { registerDataCommands } from './data.js';
import { registerDeployCommands } from './deploy.js';
import { registerExperimentsCommands } from './experiments.js';
import { registerModelsCommands } from './models.js';
import { registerMonitorCommands } from './monitor.js';
import { registerOutcomesCommand } from './outcomes.js';
import { registerPipelineCommands } from './pipeline.js';
import { registerRunsCommands } from './runs.js';
import { registerServeCommand } from './serve.js';
import { registerServerCommand } from './server.js';
import { registerTrainCommand } from './train.js';
import { registerTuneCommands } from './tune.js';
import { registerWebhooksCommands } from './webhooks.js';
import { registerWorkerCommand } from './worker.js';

/**
 * The `kiln` command. Each command group lives in its own file and registers itself here;
 * every command prints a readable table by default and JSON with --json. `main.ts` runs it;
 * `reference.ts` renders docs/cli.md from it, so the reference cannot drift from the code.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('kiln')
    .description('kiln: data → train / tune → track → register → serve → monitor → retrain')
    .version('0.1.0')
    // Usage errors come back as CommanderError (inherited by every subcommand registered
    // below) so main prints them as `kiln: CODE: message` and exits 2, like every other error.
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    // Root options only before the command: `kiln models promote NAME --version 3` is the
    // model's version, not kiln's.
    .enablePositionalOptions();
  registerServerCommand(program);
  registerServeCommand(program);
  registerTrainCommand(program);
  registerExperimentsCommands(program);
  registerRunsCommands(program);
  registerDataCommands(program);
  registerTuneCommands(program);
  registerModelsCommands(program);
  registerOutcomesCommand(program);
  registerWebhooksCommands(program);
  registerPipelineCommands(program);
  registerDeployCommands(program);
  registerMonitorCommands(program);
  registerWorkerCommand(program);
  return program;
}
