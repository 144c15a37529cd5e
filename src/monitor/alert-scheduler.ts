import { type CheckResult, checkAlerts, modelsWithAlertRules } from './alerts.js';
import type { MonitorContext } from './model-reference.js';

/**
 * `kiln server`'s alert timer: every `intervalMs`, each model with a rule set is checked (as
 * `kiln monitor check NAME` does). One round at a time; a model whose check fails (its alias
 * deleted, its training profile gone) is logged and the others still run. Several servers on one
 * database may run it: the state transition in checkAlerts fires each alert once.
 */
export class AlertScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: MonitorContext,
    private readonly options: {
      intervalMs: number;
      log?: { warn(o: object, m: string): void };
      onRound?: (results: CheckResult[]) => void;
    },
  ) {}

  start(): this {
    this.schedule();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round now: every model with rules. */
  async round(now = Date.now()): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    for (const model of await modelsWithAlertRules(this.ctx)) {
      try {
        results.push(await checkAlerts(this.ctx, model, now));
      } catch (e) {
        this.options.log?.warn({ model, err: (e as Error).message }, 'monitor alert check failed');
      }
    }
    this.options.onRound?.(results);
    return results;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.round()
        .catch((e) => this.options.log?.warn({ err: (e as Error).message }, 'monitor alert round failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }
}
