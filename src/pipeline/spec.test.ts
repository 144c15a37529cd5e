import { describe, expect, it } from 'vitest';
import { checkPipeline } from './run.js';
import { applyParamOverrides } from './spec.js';

const ref = (r: string) => `\${${r}}`;
const check = (value: unknown) => checkPipeline(value, 'kiln.yaml', '/project/kiln.yaml');
const cmd = (extra: Record<string, unknown> = {}) => ({ command: ['/bin/true'], ...extra });

describe('kiln.yaml', () => {
  it('builds the DAG from references and after, in file order among ready steps', () => {
    const { dag } = check({
      steps: {
        report: cmd({ inputs: { m: ref('steps.train.outputs.x') } }),
        prep: cmd(),
        train: cmd({ command: ['/bin/echo', ref('steps.prep.outputs.y')] }),
        lint: cmd({ after: ['prep'] }),
      },
    });
    expect(dag.order).toEqual(['prep', 'train', 'report', 'lint']);
    expect(dag.needs.report).toEqual(['train']);
    expect(dag.dependants.prep).toEqual(['train', 'lint']);
  });

  it('names the steps of a cycle', () => {
    expect(() =>
      check({
        steps: {
          a: cmd({ after: ['c'] }),
          b: cmd({ after: ['a'] }),
          c: cmd({ inputs: { x: ref('steps.b.outputs.o') } }),
          free: cmd(),
        },
      }),
    ).toThrow('kiln.yaml: the steps form a cycle: a → b → c → a');
    expect(() => check({ steps: { a: cmd({ after: ['a'] }) } })).toThrow(
      'kiln.yaml: steps.a: a step cannot depend on itself',
    );
  });

  it('refuses unknown steps, parameters and outputs, naming the field', () => {
    expect(() => check({ steps: { a: cmd({ env: { X: ref('steps.nope.outputs.y') } }) } })).toThrow(
      `kiln.yaml: steps.a.env.X: ${ref('steps.nope.outputs.y')}: step a refers to unknown step 'nope'`,
    );
    expect(() => check({ steps: { a: cmd({ command: ['/bin/echo', ref('params.rows')] }) } })).toThrow(
      `kiln.yaml: steps.a.command.1: ${ref('params.rows')} names no parameter`,
    );
    expect(() => check({ steps: { a: cmd({ after: ['ghost'] }) } })).toThrow(
      "kiln.yaml: steps.a.after: unknown step 'ghost'",
    );
    expect(() =>
      check({
        steps: {
          ingest: { kind: 'ingest', params: { file: 'x.csv', name: 'x' } },
          b: cmd({ command: ['/bin/echo', ref('steps.ingest.outputs.version')] }),
        },
      }),
    ).toThrow(
      "kiln.yaml: steps.b.command.1: step 'ingest' has no output 'version' (it has dataset, hash, rows)",
    );
    expect(() => check({ steps: { a: cmd({ command: ['/bin/echo', ref('steps.a')] }) } })).toThrow(
      `kiln.yaml: steps.a.command.1: '${ref('steps.a')}' is not a reference`,
    );
  });

  it('checks a built-in kind’s parameters at their place in the file', () => {
    expect(() =>
      check({ steps: { train: { kind: 'train', params: { spec: 'train.yaml', x: 1 } } } }),
    ).toThrow('kiln.yaml: steps.train.params.x: unknown field');
    expect(() => check({ steps: { reg: { kind: 'register', params: { name: 'm', run: 'abc' } } } })).toThrow(
      'kiln.yaml: steps.reg.params.run: a run id: 32 hex characters',
    );
    // A parameter's default is checked; an upstream output only once it resolves.
    expect(() =>
      check({
        params: { n: 'three' },
        steps: { t: { kind: 'tune', params: { spec: 's.yaml', trials: ref('params.n') } } },
      }),
    ).toThrow('kiln.yaml: steps.t.params.trials:');
    expect(() =>
      check({
        steps: {
          i: { kind: 'ingest', params: { file: 'x.csv', name: 'x' } },
          t: { kind: 'tune', params: { spec: 's.yaml', trials: ref('steps.i.outputs.rows') } },
        },
      }),
    ).not.toThrow();
  });

  it('checks the params of deploy, monitor-check and transform, refuses unknown kinds and command fields on built-in steps', () => {
    expect(() => check({ steps: { d: { kind: 'deploy', params: { name: 'web' } } } })).toThrow(
      'kiln.yaml: steps.d.params.model: give model (one version, all traffic) or versions (a split), not both',
    );
    expect(() =>
      check({
        steps: { d: { kind: 'deploy', params: { name: 'web', model: 'm/1', versions: [{ model: 'm/2' }] } } },
      }),
    ).toThrow('steps.d.params.model: give model');
    expect(() =>
      check({ steps: { d: { kind: 'deploy', params: { name: 'web', model: 'm@champion' } } } }),
    ).not.toThrow();
    expect(() => check({ steps: { m: { kind: 'monitor-check' } } })).toThrow(
      'kiln.yaml: steps.m.params.model',
    );
    expect(() =>
      check({
        steps: { m: { kind: 'monitor-check', params: { model: 'm', check: 'drift', window: '7x' } } },
      }),
    ).toThrow('steps.m.params.window: window: expected a duration like 7d');
    expect(() =>
      check({ steps: { m: { kind: 'monitor-check', params: { model: 'm', check: 'perf' } } } }),
    ).toThrow('steps.m.params.check');
    expect(() =>
      check({
        steps: { t: { kind: 'transform', params: { dataset: 'd@1', name: 'e', sql: 'SELECT 1; DROP x' } } },
      }),
    ).toThrow('steps.t.params.sql: one SELECT statement');
    expect(() => check({ steps: { x: { kind: 'bake' } } })).toThrow(
      "kiln.yaml: steps.x.kind: unknown kind 'bake'",
    );
    expect(() => check({ steps: { x: {} } })).toThrow('kiln.yaml: steps.x: give a kind');
    expect(() =>
      check({ steps: { s: { kind: 'split', params: { dataset: 'd', spec: 's.yaml' }, cwd: 'sub' } } }),
    ).toThrow('kiln.yaml: steps.s.cwd: only command steps take cwd');
    expect(() =>
      check({
        steps: { s: { kind: 'split', params: { dataset: 'd', spec: 's.yaml' }, outputs: { a: 'b' } } },
      }),
    ).toThrow('kiln.yaml: steps.s.outputs:');
  });

  it('keeps cwd, code and outputs inside the project, and checks durations and names', () => {
    expect(() => check({ steps: { a: cmd({ cwd: '../elsewhere' }) } })).toThrow(
      "kiln.yaml: steps.a.cwd: '../elsewhere' must be a path inside the project folder",
    );
    expect(() => check({ steps: { a: cmd({ code: ['/etc/passwd'] }) } })).toThrow('steps.a.code.0');
    expect(() => check({ steps: { a: cmd({ outputs: { o: 'x/../../y' } }) } })).toThrow('steps.a.outputs.o');
    expect(() => check({ steps: { a: cmd({ timeout: 'soon' }) } })).toThrow('kiln.yaml: steps.a.timeout:');
    expect(check({ steps: { a: cmd({ timeout: '1.5s', retry_delay: 2 }) } }).spec.steps.a).toMatchObject({
      timeout: 1500,
      retry_delay: 2000,
    });
    expect(() => check({ steps: { '9lives': cmd() } })).toThrow('kiln.yaml: steps.9lives: step names');
    expect(() => check({ steps: { a: cmd({ retries: -1 }) } })).toThrow('kiln.yaml: steps.a.retries:');
    expect(() => check({ steps: { a: cmd({ exclude_from_key: ['nope'] }) } })).toThrow(
      "kiln.yaml: steps.a.exclude_from_key: 'nope' is neither an input",
    );
    expect(() => check({ steps: {} })).toThrow('kiln.yaml: steps: a pipeline needs at least one step');
    expect(() => check({ stepz: {} })).toThrow('stepz: unknown field');
  });

  it('overrides declared parameters only, typed as YAML reads them', () => {
    const { spec } = check({ params: { rows: 10, where: 'a', on: false }, steps: { a: cmd() } });
    expect(applyParamOverrides(spec, { rows: '20', where: 'day(date) <= 2', on: 'true' })).toEqual({
      rows: 20,
      where: 'day(date) <= 2',
      on: true,
    });
    expect(() => applyParamOverrides(spec, { row: '1' })).toThrow(
      "--param row: the pipeline declares no parameter 'row' (it has rows, where, on)",
    );
  });
});
