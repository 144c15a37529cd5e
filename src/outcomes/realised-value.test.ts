import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { LoggedPrediction } from '../monitor/index.js';
import { compareValue, realisedValue } from './realised-value.js';

const logged = (score: number | number[], label: unknown, i: number): LoggedPrediction => ({
  request_id: `r${i}`,
  model: 'm',
  version: '1',
  shadow: false,
  time: i,
  latency_ms: 1,
  inputs: {},
  outputs: { predictions: Array.isArray(score) ? score : [score] },
  ...(label === undefined ? {} : { label, label_time: i }),
});

const matrix = { true_positive: 10, false_positive: 2, false_negative: 5, true_negative: 0, threshold: 0.5 };

describe('realised value', () => {
  it('prices labelled single-row predictions as hand-computed; counts what it cannot price', () => {
    const rows = [
      logged(0.9, 1, 0), // TP +10
      logged(0.8, 'true', 1), // TP +10
      logged(0.7, 0, 2), // FP −2
      logged(0.2, true, 3), // FN −5
      logged(0.1, '0', 4), // TN 0
      logged([0.9, 0.1], 1, 5), // two rows, one label: unpriced
      logged(0.6, undefined, 6), // no label: unpriced
    ];
    const v = realisedValue(rows, matrix);
    expect(v.counts).toEqual({ tp: 2, fp: 1, fn: 1, tn: 1 });
    expect(v.total).toBe(13);
    expect(v.labelled).toBe(5);
    expect(v.unpriced).toBe(2);
    expect(v.per1k).toBeCloseTo(2600, 9);
    const reg = realisedValue([logged(3, 1, 0), logged(-1, 1, 1)], { per_unit_error: 0.5, loss: 'squared' });
    expect(reg.total).toBe(-0.5 * (4 + 4));
  });

  it('gives the standard error numpy gives, and a Welch interval for the difference', () => {
    const a = Array.from({ length: 40 }, (_, i) => logged(i % 3 === 0 ? 0.9 : 0.2, i % 4 === 0 ? 1 : 0, i));
    const b = Array.from({ length: 30 }, (_, i) => logged(i % 2 === 0 ? 0.9 : 0.2, i % 5 === 0 ? 1 : 0, i));
    const va = realisedValue(a, matrix);
    const vb = realisedValue(b, matrix);
    const perRow = (rows: LoggedPrediction[]) =>
      rows.map((r) => {
        const flag = Number(r.outputs.predictions![0]) >= 0.5;
        const pos = r.label === 1;
        return flag && pos ? 10 : flag ? -2 : pos ? -5 : 0;
      });
    const py = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import json,sys,numpy as np; a,b=json.load(sys.stdin); se=lambda x: 1000*np.std(x,ddof=1)/np.sqrt(len(x)); print(json.dumps([se(a), se(b)]))',
      ],
      { input: JSON.stringify([perRow(a), perRow(b)]), encoding: 'utf8' },
    );
    expect(py.status, py.stderr).toBe(0);
    const [sa, sb] = JSON.parse(py.stdout) as [number, number];
    expect(va.per1kStderr).toBeCloseTo(sa, 9);
    expect(vb.per1kStderr).toBeCloseTo(sb, 9);
    const c = compareValue(va, vb);
    expect(c.diffPer1k).toBeCloseTo(va.per1k - vb.per1k, 9);
    const half = 1.959964 * Math.sqrt(sa ** 2 + sb ** 2);
    expect(c.ci95[0]).toBeCloseTo(c.diffPer1k - half, 9);
    expect(c.ci95[1]).toBeCloseTo(c.diffPer1k + half, 9);
  });
});
