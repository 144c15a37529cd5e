import { type FormEvent, useState } from 'react';
import { ErrorState } from '../components/common.js';
import { api, getToken, KILN, setToken } from '../lib/api.js';
import { navigate, useLocation } from '../lib/router.js';

/**
 * Token login for `kiln server --auth`: the token (from `kiln auth token create`) is checked
 * against a viewer route, kept in this browser's localStorage and sent as a Bearer token.
 */
export function LoginPage({ onLogin }: { onLogin: () => void }) {
  const { search } = useLocation();
  const [token, setTokenText] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const previous = getToken();
    setToken(token.trim());
    try {
      await api(`${KILN}/datasets`);
      onLogin();
      const next = search.get('next');
      navigate(next?.startsWith('/') && !next.startsWith('//') ? next : '/experiments');
    } catch (err) {
      setToken(previous);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="login card">
      <h1>Sign in</h1>
      <p className="muted">
        This kiln server requires a token. Create one with{' '}
        <code>kiln auth token create --user you --role viewer</code> and paste it here. It is kept in this
        browser only and sent as <code>Authorization: Bearer</code>.
      </p>
      <form onSubmit={submit} className="row">
        <input
          className="grow mono"
          type="password"
          aria-label="token"
          placeholder="kiln_…"
          value={token}
          onChange={(e) => setTokenText(e.target.value)}
        />
        <button className="primary" type="submit" disabled={busy || !token.trim()}>
          Sign in
        </button>
      </form>
      {error !== null && <ErrorState error={error} />}
    </div>
  );
}
