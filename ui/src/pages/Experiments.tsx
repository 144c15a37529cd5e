import { useQuery } from '@tanstack/react-query';
import { Link, NavTable, QueryView } from '../components/common.js';
import { api, MLFLOW } from '../lib/api.js';
import { formatTime } from '../lib/format.js';

interface Experiment {
  experiment_id: string;
  name: string;
  lifecycle_stage: string;
  creation_time?: number;
  last_update_time?: number;
  tags?: { key: string; value: string }[];
}

export function ExperimentsPage() {
  const query = useQuery({
    queryKey: ['experiments'],
    queryFn: async () => {
      const out: Experiment[] = [];
      let page_token: string | undefined;
      do {
        const r = await api<{ experiments?: Experiment[]; next_page_token?: string }>(
          `${MLFLOW}/experiments/search`,
          {
            body: { max_results: 1000, page_token, order_by: ['last_update_time DESC'] },
          },
        );
        out.push(...(r.experiments ?? []));
        page_token = r.next_page_token;
      } while (page_token && out.length < 10_000);
      return out;
    },
  });
  return (
    <>
      <h1>Experiments</h1>
      <QueryView
        query={query}
        what="experiments"
        isEmpty={(d) => d.length === 0}
        empty={
          <>
            No experiments yet. Train a model (<code>kiln train spec.yaml</code>) or point an MLflow client at
            this server.
          </>
        }
      >
        {(experiments) => (
          <NavTable
            label="experiments"
            rows={experiments}
            rowKey={(e) => e.experiment_id}
            href={(e) => `/experiments/${e.experiment_id}`}
            columns={[
              { title: 'Name', cell: (e) => <Link to={`/experiments/${e.experiment_id}`}>{e.name}</Link> },
              { title: 'ID', cell: (e) => <span className="mono">{e.experiment_id}</span> },
              { title: 'Last update', cell: (e) => formatTime(e.last_update_time) },
              { title: 'Created', cell: (e) => formatTime(e.creation_time) },
              {
                title: 'Tags',
                cell: (e) =>
                  (e.tags ?? [])
                    .filter((t) => !t.key.startsWith('mlflow.'))
                    .map((t) => `${t.key}=${t.value}`)
                    .join(', '),
              },
            ]}
          />
        )}
      </QueryView>
    </>
  );
}
