import { describe, expect, it } from 'vitest';
import { formatDuration, formatNumber, formatTimestamp, renderKeyValues, renderTable } from './table.js';

describe('renderTable', () => {
  const rows = [
    { name: 'shallow', auc: 0.8123456789, n: 3 },
    { name: 'a-much-longer-name', auc: 0.9, n: 12000 },
  ];

  it('aligns text left and numbers right under their headers', () => {
    const out = renderTable(rows, [
      { header: 'NAME', value: (r) => r.name },
      { header: 'AUC', value: (r) => r.auc },
      { header: 'N', value: (r) => r.n },
    ]);
    expect(out).toBe(
      [
        'NAME                     AUC      N',
        'shallow             0.812346      3',
        'a-much-longer-name       0.9  12000',
        '',
      ].join('\n'),
    );
  });

  it('cuts long cells with an ellipsis, flattens newlines, and prints the empty message', () => {
    const out = renderTable([{ v: 'abcdefghij\nk' }], [{ header: 'V', value: (r) => r.v, maxWidth: 6 }]);
    expect(out).toBe('V\nabcde…\n');
    expect(renderTable([{ v: 'a\nb' }], [{ header: 'V', value: (r) => r.v }])).toBe('V\na⏎b\n');
    expect(renderTable([], [{ header: 'V', value: () => 1 }], { empty: 'no runs' })).toBe('no runs\n');
  });

  it('renders key/value records', () => {
    expect(
      renderKeyValues([
        ['run id', 'abc'],
        ['status', 'FINISHED'],
        ['end', undefined],
      ]),
    ).toBe('run id  abc\nstatus  FINISHED\nend\n');
  });
});

describe('formatting', () => {
  it('formats numbers, times and durations for reading', () => {
    expect(formatNumber(3)).toBe('3');
    expect(formatNumber(0.123456789)).toBe('0.123457');
    expect(formatNumber(1.5e-7)).toBe('1.5000e-7');
    expect(formatNumber(Number.NaN)).toBe('NaN');
    expect(formatNumber(Number.NEGATIVE_INFINITY)).toBe('-inf');
    expect(formatTimestamp(Date.UTC(2024, 0, 2, 3, 4, 5))).toBe('2024-01-02 03:04:05');
    expect(formatTimestamp(undefined)).toBe('');
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_345)).toBe('12.3s');
    expect(formatDuration(245_000)).toBe('4m05s');
    expect(formatDuration(7_380_000)).toBe('2h03m');
  });
});
