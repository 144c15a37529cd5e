import cliProgress from 'cli-progress';

/**
 * The quickstart's progress: one bar per long step on a terminal (stderr, so stdout stays the
 * story and the summary), nothing but the step's closing line otherwise.
 */
export interface StepBar {
  update(value: number, note?: string): void;
  setTotal(total: number): void;
  stop(): void;
}

export function stepBar(label: string, total: number, unit: string): StepBar {
  if (!process.stderr.isTTY) return { update() {}, setTotal() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `   ${label.padEnd(10)} [{bar}] {value}/{total} ${unit}  {note}`,
      hideCursor: true,
      stream: process.stderr,
      clearOnComplete: true,
      barsize: 30,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { note: '' });
  return {
    update: (value, note) => bar.update(value, { note: note ?? '' }),
    setTotal: (t) => bar.setTotal(t),
    stop: () => bar.stop(),
  };
}

export const say = (line = '') => process.stdout.write(`${line}\n`);

export function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}
