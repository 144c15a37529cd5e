import { describe, expect, it } from 'vitest';
import { buildAxis, diffRuns } from './compare.js';
import { formatDuration, formatNumber } from './format.js';
import { prettyJson, previewKind } from './preview.js';
import { matchRoute } from './route-match.js';
import {
  cellValue,
  defaultColumns,
  discoverColumns,
  orderByClause,
  parseColumnId,
  quoteKey,
  toRow,
} from './runs.js';

const run = (id: string, metrics: Record<string, number | string>, params: Record<string, string>) =>
  toRow({
    info: {
      run_id: id,
      run_name: `r-${id}`,
      experiment_id: '1',
      status: 'FINISHED',
      start_time: 1000,
      end_time: 4000,
    },
    data: {
      metrics: Object.entries(metrics).map(([key, value]) => ({ key, value, timestamp: 0, step: 0 })),
      params: Object.entries(params).map(([key, value]) => ({ key, value })),
      tags: [
        { key: 'mlflow.user', value: 'x' },
        { key: 'team', value: 'risk' },
      ],
    },
  });

describe('runs table columns', () => {
  it('maps columns to MLflow order_by, backquoting keys that are not identifiers', () => {
    expect(orderByClause({ kind: 'metrics', key: 'test.auc' }, true)).toBe('metrics.test.auc DESC');
    expect(orderByClause({ kind: 'params', key: 'learning rate' }, false)).toBe('params.`learning rate` ASC');
    expect(orderByClause({ kind: 'attr', key: 'start_time' }, true)).toBe('attributes.start_time DESC');
    expect(orderByClause({ kind: 'attr', key: 'duration' }, true)).toBeNull();
    expect(quoteKey('a-b')).toBe('`a-b`');
  });
  it('parses column ids and reads cells, NaN metrics included', () => {
    expect(parseColumnId('metrics:a:b')).toEqual({ kind: 'metrics', key: 'a:b' });
    expect(parseColumnId('bogus:x')).toBeNull();
    const r = run('a', { loss: 'NaN', acc: 0.5 }, { lr: '0.1' });
    expect(cellValue(r, { kind: 'metrics', key: 'loss' })).toBeNaN();
    expect(cellValue(r, { kind: 'params', key: 'lr' })).toBe('0.1');
    expect(cellValue(r, { kind: 'attr', key: 'duration' })).toBe(3000);
  });
  it('offers every key but mlflow.* tags, and defaults to held-out metrics first', () => {
    const cols = discoverColumns([run('a', { cpu: 1, 'test.auc': 1 }, { lr: '1' })]);
    expect(cols.map((c) => `${c.kind}:${c.key}`)).toEqual([
      'metrics:cpu',
      'metrics:test.auc',
      'params:lr',
      'tags:team',
    ]);
    const d = defaultColumns(cols, 1);
    expect(d.filter((c) => c.kind === 'metrics')).toEqual([{ kind: 'metrics', key: 'test.auc' }]);
  });
});

describe('compare', () => {
  it('marks the params and metrics that differ', () => {
    const diff = diffRuns([run('a', { acc: 1 }, { lr: '0.1', d: '3' }), run('b', { acc: 1 }, { lr: '0.2' })]);
    expect(diff.map((d) => [d.kind, d.key, d.differs])).toEqual([
      ['params', 'd', true],
      ['params', 'lr', true],
      ['metrics', 'acc', false],
    ]);
  });
  it('builds numeric and categorical parallel axes', () => {
    const num = buildAxis('p', 'p', ['1', '3', undefined, 2]);
    expect([
      num.kind,
      num.position('1'),
      num.position(2),
      num.position('3'),
      num.position(undefined),
    ]).toEqual(['numeric', 0, 0.5, 1, null]);
    const cat = buildAxis('o', 'o', ['sgd', 'adam', 'sgd']);
    expect([cat.kind, cat.position('adam'), cat.position('sgd'), cat.position('x')]).toEqual([
      'categorical',
      0,
      1,
      null,
    ]);
  });
});

describe('pages and formats', () => {
  it('matches deep links and decodes parameters', () => {
    const routes: [string, string][] = [
      ['/runs/:runId', 'run'],
      ['/models/:name/:tab', 'model'],
    ];
    expect(matchRoute('/models/fraud%20v2/history', routes)).toEqual({
      page: 'model',
      params: { name: 'fraud v2', tab: 'history' },
    });
    expect(matchRoute('/runs/%zz', routes)).toBeNull();
    expect(matchRoute('/nope', routes)).toBeNull();
  });
  it('chooses previews by name and size', () => {
    expect(previewKind('evaluation/report.html')).toBe('html');
    expect(previewKind('a/b.json', 10)).toBe('json');
    expect(previewKind('plot.PNG')).toBe('image');
    expect(previewKind('model/MLmodel')).toBe('text');
    expect(previewKind('model.kiln')).toBe('none');
    expect(previewKind('big.txt', 10 * 1024 * 1024)).toBe('none');
    expect(prettyJson('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyJson('not json')).toBe('not json');
  });
  it('formats numbers and durations', () => {
    expect([
      formatNumber(3),
      formatNumber(0.123456789),
      formatNumber(1e-7),
      formatNumber(Number.NaN),
    ]).toEqual(['3', '0.12346', '1.000e-7', 'NaN']);
    expect([formatDuration(250), formatDuration(61_000), formatDuration(3_720_000)]).toEqual([
      '250 ms',
      '1 min 1 s',
      '1 h 2 min',
    ]);
  });
});
