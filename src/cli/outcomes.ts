import type { Command } from 'commander';
import { costModelSettings } from '../config.js';
import { parseDuration } from '../monitor/index.js';
import { type ModelOutcomes, modelOutcomes } from '../outcomes/index.js';
import { formatMoney } from '../registry/index.js';
import { common, type ModelsOptions, print, when, withRegistry } from './models.js';
import { renderTable } from './table.js';

/**
 * `kiln models outcomes NAME [--window 7d]`: the ROI line per version in production over the
 * window (outcomes/summary.ts says where each figure comes from).
 */
export function registerOutcomesCommand(program: Command): void {
  const models = program.commands.find((c) => c.name() === 'models');
  if (!models) throw new Error('registerOutcomesCommand: register the models commands first');
  common(
    models
      .command('outcomes <name>')
      .description(
        'per version served in the window: predictions, latency p50/p99, cost, realised value, value net of cost',
      ),
  )
    .option('--window <duration>', 'how far back from now, e.g. 7d, 24h, 90m', '7d')
    .action(async (name: string, opts: ModelsOptions & { window: string }) => {
      const windowMs = parseDuration(opts.window, '--window');
      const costModel = costModelSettings();
      const to = Date.now();
      const from = to - windowMs;
      const outcomes = await withRegistry(opts, (registry, workspace) =>
        modelOutcomes({ store: workspace.store!, registry }, { name, from, to, costModel }),
      );
      print(opts, outcomes, () => renderOutcomes(outcomes));
    });
}

export function renderOutcomes(o: ModelOutcomes): string {
  const money = (v: number | null | undefined) =>
    v === null || v === undefined ? '—' : formatMoney(v, o.currency);
  const head = `${o.name}: ${when(o.from)} → ${when(o.to)}${o.value_matrix ? `; value: ${o.value_matrix}` : '; no value matrix in the policy (value: section)'}\n`;
  return (
    head +
    renderTable(
      o.versions,
      [
        { header: 'VERSION', value: (v) => v.version },
        { header: 'ALIASES', value: (v) => v.aliases.join(',') },
        {
          header: 'PREDICTIONS',
          value: (v) => `${v.predictions}${v.predictions_sampled ? ' (logged)' : ''}`,
          align: 'right',
        },
        { header: 'P50 MS', value: (v) => v.latency_ms?.p50.toFixed(2) ?? '—', align: 'right' },
        { header: 'P99 MS', value: (v) => v.latency_ms?.p99.toFixed(2) ?? '—', align: 'right' },
        { header: 'COST', value: (v) => money(v.cost.total), align: 'right' },
        { header: 'COST/1K', value: (v) => money(v.cost.per_1k_predictions), align: 'right' },
        { header: 'LABELLED', value: (v) => v.value?.labelled ?? 0, align: 'right' },
        { header: 'REALISED VALUE', value: (v) => money(v.value?.total), align: 'right' },
        { header: 'VALUE/1K', value: (v) => money(v.value?.per1k), align: 'right' },
        { header: 'NET OF COST', value: (v) => money(v.net), align: 'right' },
      ],
      { empty: 'no version served in the window' },
    ) +
    o.comparisons
      .map(
        (c) =>
          `version ${c.version}${c.shadow ? ' (shadow)' : ''} vs ${c.against}: ${c.value_diff_per_1k >= 0 ? '+' : ''}${money(c.value_diff_per_1k)} per 1k predictions (95 % CI ${money(c.ci95[0])} … ${money(c.ci95[1])})\n`,
      )
      .join('')
  );
}
