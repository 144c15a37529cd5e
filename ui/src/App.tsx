import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link } from './components/common.js';
import { getToken, setToken } from './lib/api.js';
import { matchRoute } from './lib/route-match.js';
import { navigate, useLocation } from './lib/router.js';
import { AuditPage } from './pages/Audit.js';
import { ComparePage } from './pages/Compare.js';
import { DatasetPage, DatasetsPage } from './pages/Datasets.js';
import { DeploymentPage, DeploymentsPage } from './pages/Deployments.js';
import { ExperimentsPage } from './pages/Experiments.js';
import { LoginPage } from './pages/Login.js';
import { ModelPage, ModelsPage } from './pages/Models.js';
import { RunPage } from './pages/Run.js';
import { RunsPage } from './pages/Runs.js';
import { StudiesPage, StudyPage } from './pages/Studies.js';

const ROUTES: [string, string][] = [
  ['/', 'experiments'],
  ['/experiments', 'experiments'],
  ['/experiments/:experimentId', 'runs'],
  ['/runs/:runId', 'run'],
  ['/runs/:runId/:tab', 'run'],
  ['/compare', 'compare'],
  ['/models', 'models'],
  ['/models/:name', 'model'],
  ['/models/:name/:tab', 'model'],
  ['/studies', 'studies'],
  ['/studies/:studyId', 'study'],
  ['/datasets', 'datasets'],
  ['/datasets/:name', 'dataset'],
  ['/deployments', 'deployments'],
  ['/deployments/:name', 'deployment'],
  ['/audit', 'audit'],
  ['/login', 'login'],
];

const NAV = [
  ['Experiments', '/experiments', ['experiments', 'runs', 'run', 'compare']],
  ['Models', '/models', ['models', 'model']],
  ['Studies', '/studies', ['studies', 'study']],
  ['Datasets', '/datasets', ['datasets', 'dataset']],
  ['Deployments', '/deployments', ['deployments', 'deployment']],
  ['Audit', '/audit', ['audit']],
] as const;

export function App() {
  const { path } = useLocation();
  const match = matchRoute(path, ROUTES);
  const client = useQueryClient();
  const [theme, setTheme] = useState(document.documentElement.dataset.theme ?? 'light');
  const [hasToken, setHasToken] = useState(!!getToken());

  useEffect(() => {
    // Any 401 sends the user to the login page, then back to where they were.
    const onUnauth = () => {
      if (location.pathname !== '/login') {
        navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      }
    };
    window.addEventListener('kiln:unauthenticated', onUnauth);
    return () => window.removeEventListener('kiln:unauthenticated', onUnauth);
  }, []);
  useEffect(() => {
    document.title = `kiln · ${match?.page ?? 'not found'}`;
  }, [match?.page]);

  const toggleTheme = () => {
    const next = theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('kiln.theme', next);
    setTheme(next);
  };
  const signOut = () => {
    setToken(null);
    setHasToken(false);
    client.clear();
    navigate('/login');
  };

  let page: React.ReactNode;
  const p = match?.params ?? {};
  switch (match?.page) {
    case 'experiments':
      page = <ExperimentsPage />;
      break;
    case 'runs':
      page = <RunsPage experimentId={p.experimentId!} />;
      break;
    case 'run':
      page = <RunPage runId={p.runId!} tab={p.tab ?? 'overview'} />;
      break;
    case 'compare':
      page = <ComparePage />;
      break;
    case 'models':
      page = <ModelsPage />;
      break;
    case 'model':
      page = <ModelPage name={p.name!} tab={p.tab ?? 'versions'} />;
      break;
    case 'studies':
      page = <StudiesPage />;
      break;
    case 'study':
      page = <StudyPage studyId={p.studyId!} />;
      break;
    case 'datasets':
      page = <DatasetsPage />;
      break;
    case 'dataset':
      page = <DatasetPage name={p.name!} />;
      break;
    case 'deployments':
      page = <DeploymentsPage />;
      break;
    case 'deployment':
      page = <DeploymentPage name={p.name!} />;
      break;
    case 'audit':
      page = <AuditPage />;
      break;
    case 'login':
      page = (
        <LoginPage
          onLogin={() => {
            setHasToken(true);
            client.clear();
          }}
        />
      );
      break;
    default:
      page = (
        <div className="state error">
          No page at {path}. <Link to="/experiments">Experiments</Link>
        </div>
      );
  }

  return (
    <div className="app">
      <nav className="nav" aria-label="main">
        <div className="brand">kiln</div>
        {NAV.map(([label, to, pages]) => (
          <Link
            key={to}
            to={to}
            className={(pages as readonly string[]).includes(match?.page ?? '') ? 'active' : undefined}
          >
            {label}
          </Link>
        ))}
        <div className="spacer" />
        <button type="button" onClick={toggleTheme} aria-label="toggle dark theme">
          {theme === 'dark' ? '☀ Light' : '☾ Dark'}
        </button>
        {hasToken ? (
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        ) : (
          <Link to="/login">Sign in with a token</Link>
        )}
      </nav>
      <main>{page}</main>
    </div>
  );
}
