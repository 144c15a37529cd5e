import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { Chart } from '../components/Chart.js';
import { KeyValues, Link, NavTable, QueryView } from '../components/common.js';
import { api, KILN } from '../lib/api.js';
import { formatNumber, formatTime } from '../lib/format.js';
import { bestSoFar, type Direction, paretoFront, varianceExplained } from '../lib/study-math.js';
import { Bars } from './Run.js';

interface Study {
  id: number;
  name: string;
  directions: Direction[];
  spec: {
    sampler?: { name: string };
    pruner?: { name: string } | null;
    objective?: { name: string };
    maxTrials?: number;
  };
  experimentId: string | null;
  creationTime: number;
}
interface Trial {
  id: number;
  number: number;
  state: 'WAITING' | 'RUNNING' | 'COMPLETE' | 'PRUNED' | 'FAILED';
  params: Record<string, number | string>;
  values: number[] | null;
  intermediate: [number, number][] | { step: number; value: number }[];
  startTime: number | null;
  endTime: number | null;
  runId: string | null;
  userAttrs?: Record<string, unknown>;
  systemAttrs?: Record<string, unknown>;
}

export function StudiesPage() {
  const studies = useQuery({
    queryKey: ['studies'],
    queryFn: async () => (await api<{ studies: Study[] }>(`${KILN}/studies`)).studies,
  });
  return (
    <>
      <h1>Studies</h1>
      <QueryView
        query={studies}
        what="studies"
        isEmpty={(s) => s.length === 0}
        empty={
          <>
            No tuning studies yet: <code>kiln tune spec.yaml</code>.
          </>
        }
      >
        {(list) => (
          <NavTable
            label="studies"
            rows={list}
            rowKey={(s) => String(s.id)}
            href={(s) => `/studies/${s.id}`}
            columns={[
              { title: 'Name', cell: (s) => <Link to={`/studies/${s.id}`}>{s.name}</Link> },
              { title: 'Objectives', cell: (s) => s.directions.join(', ') },
              { title: 'Sampler', cell: (s) => s.spec.sampler?.name ?? '' },
              { title: 'Pruner', cell: (s) => s.spec.pruner?.name ?? 'none' },
              { title: 'Budget', cell: (s) => s.spec.maxTrials ?? '', num: true },
              { title: 'Created', cell: (s) => formatTime(s.creationTime) },
            ]}
          />
        )}
      </QueryView>
    </>
  );
}

export function StudyPage({ studyId }: { studyId: string }) {
  const study = useQuery({
    queryKey: ['study', studyId],
    queryFn: async () => {
      const all = (await api<{ studies: Study[] }>(`${KILN}/studies`)).studies;
      const s = all.find((x) => String(x.id) === studyId);
      if (!s) throw new Error(`No study with id ${studyId}`);
      return s;
    },
  });
  const trials = useQuery({
    queryKey: ['trials', studyId],
    queryFn: async () => {
      const out: Trial[] = [];
      let afterId = 0;
      for (;;) {
        const page = (
          await api<{ trials: Trial[] }>(`${KILN}/studies/${studyId}/trials/search`, { body: { afterId } })
        ).trials;
        out.push(...page);
        if (page.length === 0) break;
        const last = page[page.length - 1]!.id;
        if (last <= afterId) break;
        afterId = last;
      }
      return out.sort((a, b) => a.number - b.number);
    },
    refetchInterval: 10_000,
  });
  return (
    <>
      <div className="crumbs">
        <Link to="/studies">Studies</Link> / {study.data?.name ?? studyId}
      </div>
      <QueryView query={study} what="study">
        {(s) => (
          <>
            <h1>{s.name}</h1>
            <QueryView
              query={trials}
              what="trials"
              isEmpty={(t) => t.length === 0}
              empty="This study has no trials yet: start a worker (kiln tune --worker NAME)."
            >
              {(ts) => <StudyView study={s} trials={ts} />}
            </QueryView>
          </>
        )}
      </QueryView>
    </>
  );
}

function StudyView({ study, trials }: { study: Study; trials: Trial[] }) {
  const counts = useMemo(() => {
    const c: Record<string, number> = { COMPLETE: 0, PRUNED: 0, FAILED: 0, RUNNING: 0, WAITING: 0 };
    for (const t of trials) c[t.state] = (c[t.state] ?? 0) + 1;
    return c;
  }, [trials]);
  const complete = trials.filter((t) => t.state === 'COMPLETE' && t.values);
  const multi = study.directions.length > 1;
  const paramKeys = [...new Set(trials.flatMap((t) => Object.keys(t.params)))].sort();
  const best = useMemo(() => {
    if (multi || complete.length === 0) return null;
    const dir = study.directions[0]!;
    return complete.reduce((a, b) =>
      (dir === 'minimize' ? b.values![0]! < a.values![0]! : b.values![0]! > a.values![0]!) ? b : a,
    );
  }, [complete, multi, study.directions]);
  const front = useMemo(
    () =>
      multi
        ? new Set(
            paretoFront(
              complete.map((t) => t.values!),
              study.directions,
            ).map((i) => complete[i]!.number),
          )
        : new Set<number>(),
    [complete, multi, study.directions],
  );
  const importances = useMemo(() => {
    if (complete.length < 4) return [];
    const objective = complete.map((t) => t.values![0]!);
    return paramKeys.map((k) => ({
      label: k,
      value: varianceExplained(
        complete.map((t) => t.params[k] ?? ''),
        objective,
      ),
    }));
  }, [complete, paramKeys]);

  return (
    <>
      <div className="row" style={{ marginBottom: 10 }}>
        {Object.entries(counts).map(([state, n]) => (
          <span key={state} className={`badge status-${state}`}>
            {state.toLowerCase()} {n}
          </span>
        ))}
        <span className="muted">
          {study.spec.sampler?.name} sampler, objective {study.spec.objective?.name ?? 'user'},{' '}
          {study.directions.join(' / ')}
        </span>
      </div>
      {best && (
        <div className="card" style={{ marginBottom: 12 }}>
          <KeyValues
            entries={[
              ['best trial', `#${best.number}`],
              ['value', formatNumber(best.values![0])],
              [
                'params',
                Object.entries(best.params)
                  .map(([k, v]) => `${k}=${typeof v === 'number' ? formatNumber(v) : v}`)
                  .join(', '),
              ],
            ]}
          />
        </div>
      )}
      <div className="grid2">
        {!multi ? (
          <Chart
            title="Optimisation history (dots) and best so far (line)"
            testId="optimisation-history"
            xLabel="trial"
            series={[
              {
                label: 'objective',
                x: Float64Array.from(complete.map((t) => t.number)),
                y: Float64Array.from(complete.map((t) => t.values![0]!)),
              },
              {
                label: 'best so far',
                x: Float64Array.from(complete.map((t) => t.number)),
                y: Float64Array.from(
                  bestSoFar(
                    complete.map((t) => t.values![0]!),
                    study.directions[0]!,
                  ).map((v) => v ?? Number.NaN),
                ),
              },
            ]}
          />
        ) : (
          <ParetoPlot study={study} trials={complete} front={front} />
        )}
        <div className="card">
          <h2 style={{ marginTop: 0 }}>Parameter importance</h2>
          {importances.length ? (
            <>
              <Bars label="parameter importance" items={importances} format={(v) => v.toFixed(3)} />
              <p className="muted">
                Share of the {multi ? "first objective's" : "objective's"} variance each parameter explains
                alone (one-way η² over 5 quantile bins); interactions are not counted.
              </p>
            </>
          ) : (
            <p className="muted">Needs four or more complete trials.</p>
          )}
        </div>
      </div>
      <h2>Trials</h2>
      <NavTable
        label="trials"
        rows={trials}
        rowKey={(t) => String(t.id)}
        columns={[
          { title: '#', cell: (t) => t.number, num: true },
          {
            title: 'State',
            cell: (t) => (
              <span className={`status-${t.state}`}>
                {t.state}
                {front.has(t.number) ? ' · Pareto' : ''}
              </span>
            ),
          },
          ...study.directions.map((d, i) => ({
            title: `value ${i + 1} (${d})`,
            cell: (t: Trial) => formatNumber(t.values?.[i]),
            num: true,
          })),
          ...paramKeys.map((k) => ({
            title: k,
            cell: (t: Trial) =>
              typeof t.params[k] === 'number' ? formatNumber(t.params[k] as number) : (t.params[k] ?? ''),
            num: true,
          })),
          { title: 'Steps reported', cell: (t) => t.intermediate?.length ?? 0, num: true },
          {
            title: 'Duration',
            cell: (t) =>
              t.startTime && t.endTime ? `${((t.endTime - t.startTime) / 1000).toFixed(2)} s` : '',
            num: true,
          },
          {
            title: 'Run',
            cell: (t) => (t.runId ? <Link to={`/runs/${t.runId}`}>{t.runId.slice(0, 8)}</Link> : ''),
          },
        ]}
      />
    </>
  );
}

function ParetoPlot({ study, trials, front }: { study: Study; trials: Trial[]; front: Set<number> }) {
  const onFront = trials.filter((t) => front.has(t.number)).sort((a, b) => a.values![0]! - b.values![0]!);
  const others = trials.filter((t) => !front.has(t.number)).sort((a, b) => a.values![0]! - b.values![0]!);
  return (
    <Chart
      title={`Pareto front (${onFront.length} of ${trials.length} complete trials), objectives 1 and 2: ${study.directions.slice(0, 2).join(', ')}`}
      testId="pareto-front"
      xLabel="objective 1"
      scatter
      series={[
        {
          label: 'Pareto front',
          x: Float64Array.from(onFront.map((t) => t.values![0]!)),
          y: Float64Array.from(onFront.map((t) => t.values![1]!)),
        },
        {
          label: 'dominated',
          x: Float64Array.from(others.map((t) => t.values![0]!)),
          y: Float64Array.from(others.map((t) => t.values![1]!)),
        },
      ]}
    />
  );
}
