import fs from 'node:fs';

/**
 * A small separable dataset and the training spec over it, for tests that need a model in
 * seconds (remote workspaces, S3): `late ⇔ x1 + w·x2 + noise > 0` from a fixed generator, and
 * a 10-round GBDT on the stored version `dataset@1`.
 */
export function writeSyntheticCsv(
  file: string,
  n: number,
  opts: { seed?: number; x2Weight?: number; noise?: number } = {},
): void {
  let seed = opts.seed ?? 7;
  const w = opts.x2Weight ?? 0.5;
  const noise = opts.noise ?? 0.4;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const lines = ['x1,x2,late'];
  for (let i = 0; i < n; i++) {
    const x1 = rand() * 2 - 1;
    const x2 = rand() * 2 - 1;
    lines.push([x1.toFixed(4), x2.toFixed(4), x1 + w * x2 + (rand() - 0.5) * noise > 0].join(','));
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}

/** Writes a training spec named `name` over the stored dataset `dataset@1` (x1, x2 → late). */
export function writeSyntheticTrainSpec(file: string, name: string, dataset = 'synth'): void {
  fs.writeFileSync(
    file,
    [
      `name: ${name}`,
      `data: { dataset: ${dataset}@1 }`,
      'features: [x1, x2]',
      'target: late',
      'split: { method: random, valid: 0.2, test: 0.2, seed: 1 }',
      'learner: { name: gbdt, params: { num_iterations: 10, num_leaves: 7 } }',
      'measure: { latency_rows: 20, batch_rows: 100 }',
      '',
    ].join('\n'),
  );
}
