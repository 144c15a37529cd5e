import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { parseExperimentOrderBy, parseRunOrderBy } from './order-by.js';
import { decodePageToken, encodePageToken } from './page-token.js';
import {
  EXPERIMENT_FILTER_TARGET,
  parseFilter,
  parseOrderClause,
  RUN_FILTER_TARGET,
  tokenize,
} from './search-filter.js';

function fails(filter: string, message: RegExp): void {
  let error: unknown;
  try {
    parseFilter(filter);
  } catch (e) {
    error = e;
  }
  expect(error, `expected '${filter}' to be rejected`).toBeInstanceOf(KilnError);
  expect((error as KilnError).code).toBe('INVALID_PARAMETER_VALUE');
  expect((error as KilnError).status).toBe(400);
  expect((error as KilnError).message).toMatch(message);
  expect((error as KilnError).message).toMatch(/filter/);
}

describe('search filter parser', () => {
  it('parses every identifier kind with MLflow prefixes and aliases', () => {
    expect(
      parseFilter(
        "metrics.acc > 0.9 AND params.lr = '0.1' and tags.team != \"ml\" AND attributes.status = 'FINISHED'",
      ),
    ).toEqual({
      kind: 'and',
      children: [
        { kind: 'cmp', entity: 'metric', key: 'acc', op: '>', value: 0.9 },
        { kind: 'cmp', entity: 'param', key: 'lr', op: '=', value: '0.1' },
        { kind: 'cmp', entity: 'tag', key: 'team', op: '!=', value: 'ml' },
        { kind: 'cmp', entity: 'attribute', key: 'status', op: '=', value: 'FINISHED' },
      ],
    });
    expect(parseFilter('metric.x <= -1.5e3')).toEqual({
      kind: 'cmp',
      entity: 'metric',
      key: 'x',
      op: '<=',
      value: -1500,
    });
    expect(parseFilter("parameter.p = 'a'")).toMatchObject({ entity: 'param', key: 'p' });
    expect(parseFilter('attr.created >= 5')).toMatchObject({
      entity: 'attribute',
      key: 'start_time',
      value: 5,
    });
    expect(parseFilter("run_name = 'x'")).toMatchObject({ entity: 'attribute', key: 'run_name' });
    expect(parseFilter('metrics.val.loss < .5')).toMatchObject({ key: 'val.loss', value: 0.5 });
    expect(parseFilter("tags.mlflow.runName = 'r'")).toMatchObject({ key: 'mlflow.runName' });
  });

  it('parses MLflow dataset filters on runs (datasets.name|digest|context) and refuses what MLflow refuses', () => {
    expect(parseFilter("datasets.name = 'iris'")).toEqual({
      kind: 'cmp',
      entity: 'dataset',
      key: 'name',
      op: '=',
      value: 'iris',
    });
    expect(parseFilter("dataset.digest IN ('a', 'b')")).toMatchObject({ entity: 'dataset', op: 'IN' });
    expect(parseFilter("datasets.context ILIKE 'TRAIN%'")).toMatchObject({ key: 'context', op: 'ILIKE' });
    expect(() => parseFilter("datasets.source = 'x'")).toThrow(/invalid dataset key 'source'/);
    expect(() => parseFilter("datasets.name NOT LIKE 'x'")).toThrow(/invalid comparator 'NOT LIKE'/);
    expect(() => parseFilter('datasets.name = 3')).toThrow(/quoted string/);
    expect(() => parseFilter('datasets.name IS NULL')).toThrow(/invalid comparator/);
    // Experiments have no datasets to filter on; order_by cannot name one.
    expect(() => parseFilter("datasets.name = 'x'", EXPERIMENT_FILTER_TARGET)).toThrow(
      /not searchable on experiments/,
    );
    expect(() => parseOrderClause('datasets.name', RUN_FILTER_TARGET, 'order_by', ['start_time'])).toThrow(
      /cannot order by a dataset/,
    );
  });

  it('reads quoted and backticked keys, including spaces and operators inside them', () => {
    expect(parseFilter('metrics."my metric" > 1')).toMatchObject({ entity: 'metric', key: 'my metric' });
    expect(parseFilter("params.`a b` = 'x'")).toMatchObject({ entity: 'param', key: 'a b' });
    expect(parseFilter("tags.`weird = key AND` = 'v'")).toMatchObject({ key: 'weird = key AND', value: 'v' });
    expect(parseFilter('"metrics.my metric" = 2')).toMatchObject({ entity: 'metric', key: 'my metric' });
    expect(parseFilter("params.p = 'it''s'")).toMatchObject({ value: "it's" });
    expect(parseFilter("params.p = 'a\\'b'")).toMatchObject({ value: "a'b" });
  });

  it('parses LIKE, ILIKE, IN, NOT IN and IS NULL', () => {
    expect(parseFilter("params.m LIKE 'x%'")).toMatchObject({ op: 'LIKE', value: 'x%' });
    expect(parseFilter("tags.m not ilike '%Y'")).toMatchObject({ op: 'NOT ILIKE' });
    expect(parseFilter("attributes.run_id IN ('a', 'b','c')")).toMatchObject({
      op: 'IN',
      value: ['a', 'b', 'c'],
    });
    expect(parseFilter("params.p NOT IN ('1')")).toMatchObject({ op: 'NOT IN', value: ['1'] });
    expect(parseFilter('tags.t IS NULL')).toMatchObject({ op: 'IS NULL', value: null });
    expect(parseFilter('tags.t is not null')).toMatchObject({ op: 'IS NOT NULL' });
  });

  it('binds AND tighter than OR and honours parentheses', () => {
    const a = { kind: 'cmp', entity: 'metric', key: 'a', op: '=', value: 1 };
    const b = { kind: 'cmp', entity: 'metric', key: 'b', op: '=', value: 2 };
    const c = { kind: 'cmp', entity: 'metric', key: 'c', op: '=', value: 3 };
    expect(parseFilter('metrics.a = 1 OR metrics.b = 2 AND metrics.c = 3')).toEqual({
      kind: 'or',
      children: [a, { kind: 'and', children: [b, c] }],
    });
    expect(parseFilter('(metrics.a = 1 OR metrics.b = 2) AND metrics.c = 3')).toEqual({
      kind: 'and',
      children: [{ kind: 'or', children: [a, b] }, c],
    });
    expect(parseFilter('((metrics.a = 1))')).toEqual(a);
  });

  it('treats blank filters as no filter', () => {
    expect(parseFilter(undefined)).toBeUndefined();
    expect(parseFilter('   ')).toBeUndefined();
  });

  it('types values as MLflow does', () => {
    fails("metrics.acc > '0.5'", /numeric value for metric 'acc'/);
    fails('params.lr = 0.1', /param 'lr' must be a quoted string/);
    fails('tags.t = 1', /quoted string/);
    fails("attributes.start_time > 'yesterday'", /numeric value/);
    fails('attributes.status = FINISHED', /quoted string/);
    fails("metrics.acc LIKE '1'", /invalid comparator 'LIKE' for metric/);
    fails('attributes.start_time IN (1, 2)', /invalid comparator 'IN'/);
    fails('metrics.acc IS NULL', /invalid comparator 'IS NULL'/);
  });

  it('rejects bad syntax with a 400 that says where', () => {
    fails('metrics.acc >', /ended|numeric value/);
    fails('metrics.acc 0.5', /invalid comparator/);
    fails("params.p = 'open", /unterminated ' quote at position 11/);
    fails('metrics.a = 1 AND', /filter ended/);
    fails('metrics.a = 1 metrics.b = 2', /unexpected 'metrics.b'/);
    fails('(metrics.a = 1', /expected '\)'/);
    fails('metrics.a = 1)', /unexpected '\)'/);
    fails('foo.bar = 1', /invalid identifier type 'foo'/);
    fails("attributes.nope = 'x'", /invalid attribute key 'nope'/);
    fails("params.p IN 'x'", /expected '\('/);
    fails("params.p IN ('x' 'y')", /expected ',' or '\)'/);
    fails('metrics.a = 1 ; drop table runs', /unexpected character ';'/);
    fails('metrics.a = 12abc', /malformed number/);
    fails('metrics. = 1', /expected a key|empty key/);
    fails('= 1', /expected an identifier/);
    fails('metrics.a = 1e999', /out of range/);
    fails(`${'('.repeat(60)}metrics.a = 1${')'.repeat(60)}`, /nested too deeply/);
    fails(`params.p = '${'x'.repeat(30000)}'`, /over the limit/);
  });

  it('never throws anything but a KilnError on random input', () => {
    const alphabet = [
      'metrics.a',
      'params.`b c`',
      "'s'",
      '"q"',
      '1',
      '-2.5',
      '(',
      ')',
      ',',
      'AND',
      'OR',
      'IN',
      'NOT',
      'LIKE',
      '=',
      '!=',
      '<',
      '>=',
      ' ',
      '.',
      '`',
      "'",
      'IS',
      'NULL',
      '\u0000',
      'é',
    ];
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let n = 0; n < 3000; n++) {
      const parts: string[] = [];
      const len = 1 + Math.floor(rand() * 10);
      for (let i = 0; i < len; i++) parts.push(alphabet[Math.floor(rand() * alphabet.length)]!);
      const input = parts.join(rand() < 0.5 ? ' ' : '');
      try {
        parseFilter(input);
      } catch (e) {
        expect(e, input).toBeInstanceOf(KilnError);
      }
    }
  });

  it('tokenizes operators and keeps positions', () => {
    const tokens = tokenize('metrics.a<>1', 'filter');
    expect(tokens.map((t) => [t.type, t.text, t.pos])).toEqual([
      ['word', 'metrics.a', 0],
      ['op', '!=', 9],
      ['number', '1', 11],
      ['end', '', 12],
    ]);
  });

  it('parses experiment filters over name, tags and times', () => {
    expect(parseFilter("name LIKE 'exp%' AND tags.team = 'a'", EXPERIMENT_FILTER_TARGET)).toMatchObject({
      kind: 'and',
    });
    expect(parseFilter('creation_time > 5', EXPERIMENT_FILTER_TARGET)).toMatchObject({
      key: 'creation_time',
    });
    expect(() => parseFilter('metrics.a > 1', EXPERIMENT_FILTER_TARGET)).toThrow(
      /not searchable on experiments/,
    );
  });
});

describe('order_by', () => {
  it('parses keys and directions', () => {
    expect(
      parseRunOrderBy(['metrics.x DESC', 'attributes.start_time', 'params.`a b` asc', 'tags."t"']),
    ).toEqual([
      { entity: 'metric', key: 'x', ascending: false },
      { entity: 'attribute', key: 'start_time', ascending: true },
      { entity: 'param', key: 'a b', ascending: true },
      { entity: 'tag', key: 't', ascending: true },
    ]);
    expect(parseExperimentOrderBy(['name DESC'])).toEqual([
      { entity: 'attribute', key: 'name', ascending: false },
    ]);
  });

  it('rejects what it cannot order by, naming the clause', () => {
    expect(() => parseRunOrderBy(['metrics.x DOWN'])).toThrow(/order_by\[0\].*unexpected 'DOWN'/);
    expect(() => parseRunOrderBy(['start_time', 'metrics.x sideways'])).toThrow(/order_by\[1\]/);
    expect(() => parseRunOrderBy(['attributes.lifecycle_stage'])).toThrow(/invalid attribute key/);
    expect(() => parseRunOrderBy(['metrics.x', 'metrics.x DESC'])).toThrow(/appears twice/);
    expect(() => parseRunOrderBy([''])).toThrow(/empty order_by/);
    expect(() => parseRunOrderBy([3 as unknown as string])).toThrow(/order_by\[0\].*expected a string/);
    expect(() => parseExperimentOrderBy(['params.p'])).toThrow(/not searchable on experiments/);
  });
});

describe('page tokens', () => {
  it('round-trips and refuses tokens from another query or forged ones', () => {
    const token = encodePageToken({ q: 'abc', k: [0, 0.5, 'x'] });
    expect(decodePageToken(token, 'abc')).toEqual({ q: 'abc', k: [0, 0.5, 'x'] });
    expect(decodePageToken(undefined, 'abc')).toBeUndefined();
    expect(() => decodePageToken(token, 'other')).toThrow(/different query/);
    expect(() => decodePageToken('!!!', 'abc')).toThrow(/page_token/);
    expect(() => decodePageToken(Buffer.from('[1]').toString('base64url'), 'abc')).toThrow(/page_token/);
    expect(() => decodePageToken(Buffer.from('{"q":"abc","o":-1}').toString('base64url'), 'abc')).toThrow(
      /offset/,
    );
    expect(() => decodePageToken(Buffer.from('{"q":"abc","k":[{}]}').toString('base64url'), 'abc')).toThrow(
      /position/,
    );
  });
});
