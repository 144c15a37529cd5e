import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../data/index.js';
import { KilnError } from '../errors.js';
import { type LearnerDefinition, loadModel } from './learners.js';
import type { Task, TrainingData } from './types.js';

/**
 * The contract every learner in the table keeps (types.ts), checked the same way for each:
 * learners.test.ts runs this over every entry of LEARNERS, so a new learner gets the whole
 * suite by being added to the table.
 *
 * - fit → predict → serialize → loadModel gives bit-identical predictions and raw margins;
 * - bad input fails with a KilnError, never a TypeError or a silent model: labels and rows of
 *   different lengths, NaN labels (supervised learners), no rows, a matrix missing a column
 *   at predict time;
 * - the thread count (when the learner has one) does not change a single bit.
 */
export function runLearnerSuite(def: LearnerDefinition): void {
  const task: Task = def.task ?? 'binary';
  const create = (extra: Record<string, unknown> = {}) => def.create({ ...def.quickParams, ...extra }, task);

  describe(`learner '${def.name}' keeps the Learner contract`, () => {
    it('fit → predict → serialize → load: bit-identical predictions', async () => {
      const data = syntheticData(3000, 1);
      const model = await create().fit(data);
      expect(model.learner).toBe(def.name);
      expect(model.task).toBe(task);
      const test = syntheticData(500, 2).x;
      const p = model.predict(test);
      expect(p).toBeInstanceOf(Float64Array);
      expect(p.length).toBe(500 * model.nOutputs);
      expect(p.every(Number.isFinite)).toBe(true);
      const loaded = loadModel(model.serialize());
      expect(loaded.learner).toBe(def.name);
      expect(Array.from(loaded.predict(test))).toEqual(Array.from(p));
      expect(Array.from(loaded.predictRaw(test))).toEqual(Array.from(model.predictRaw(test)));
      // A second round trip writes the same bytes: nothing is lost or re-derived on load.
      expect(Buffer.from(loaded.serialize()).equals(Buffer.from(model.serialize()))).toBe(true);
    });

    it('the model learns: predictions follow the signal', async () => {
      const model = await create().fit(syntheticData(3000, 1));
      const test = syntheticData(1000, 4);
      const p = model.predict(test.x);
      // Mean prediction on positive rows above that on negative rows (probability or anomaly score).
      let pos = 0;
      let neg = 0;
      let nPos = 0;
      for (let i = 0; i < test.y!.length; i++) {
        if (test.y![i] === 1) {
          pos += p[i]!;
          nPos++;
        } else neg += p[i]!;
      }
      expect(pos / nPos).toBeGreaterThan(neg / (test.y!.length - nPos));
    });

    it('rejects labels and rows of different lengths', async () => {
      const data = syntheticData(300, 1);
      await expectKilnError(create().fit({ ...data, y: data.y!.subarray(0, 299) }));
    });

    it.skipIf(def.task === 'anomaly')('rejects NaN labels, naming them', async () => {
      const data = syntheticData(300, 1);
      const y = Float64Array.from(data.y!);
      y[17] = Number.NaN;
      await expectKilnError(create().fit({ ...data, y }), /NaN|missing|label|target/i);
    });

    it('rejects empty training data', async () => {
      const data = syntheticData(300, 1);
      const empty: TrainingData = {
        x: {
          nRows: 0,
          columns: data.x.columns.map((c) =>
            c.kind === 'numeric'
              ? { ...c, values: new Float64Array(0) }
              : { ...c, codes: new Int32Array(0), levels: c.levels },
          ),
        },
        y: new Float64Array(0),
        classes: data.classes,
      };
      await expectKilnError(create().fit(empty));
    });

    it('rejects a matrix missing a training column at predict time', async () => {
      const model = await create().fit(syntheticData(600, 1));
      const test = syntheticData(50, 2).x;
      const missing: FeatureMatrix = { nRows: 50, columns: test.columns.slice(1) };
      expect(() => model.predict(missing)).toThrow(KilnError);
    });

    it.skipIf(def.threadsParam === undefined)('gives the same bits on 1 and 3 threads', async () => {
      const data = syntheticData(6000, 5);
      const one = await create({ [def.threadsParam!]: 1 }).fit(data);
      const three = await create({ [def.threadsParam!]: 3 }).fit(data);
      const test = syntheticData(500, 6).x;
      expect(Array.from(three.predict(test))).toEqual(Array.from(one.predict(test)));
    });
  });
}

async function expectKilnError(p: Promise<unknown>, message?: RegExp): Promise<void> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected a KilnError, got success').toBeInstanceOf(KilnError);
  if (message) expect((e as KilnError).message).toMatch(message);
}

/**
 * n rows: two numeric features, one categorical; y = 1 when x1 + 0.5·x2 + (colour effect) +
 * noise > 1 (about a quarter of the rows, so an isolation forest's anomalies are the positives
 * too: they sit in the far corner). Seeded: the same n and seed give the same data.
 */
export function syntheticData(n: number, seed: number): TrainingData {
  let s = (seed * 2654435761) >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 4294967296;
  };
  const x1 = new Float64Array(n);
  const x2 = new Float64Array(n);
  const colour = new Int32Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x1[i] = rand() * 2 - 1;
    x2[i] = rand() * 2 - 1;
    colour[i] = Math.floor(rand() * 3);
    const score = x1[i]! + 0.5 * x2[i]! + (colour[i] === 2 ? 0.3 : 0) + (rand() - 0.5) * 0.3;
    y[i] = score > 0.6 ? 1 : 0;
  }
  return {
    x: {
      nRows: n,
      columns: [
        { kind: 'numeric', name: 'x1', values: x1 },
        { kind: 'numeric', name: 'x2', values: x2 },
        { kind: 'categorical', name: 'colour', codes: colour, levels: ['red', 'green', 'blue'] },
      ],
    },
    y,
    classes: ['0', '1'],
  };
}
