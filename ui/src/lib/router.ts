import { useSyncExternalStore } from 'react';

/**
 * A few lines of history-API routing: every page is a URL (deep links, back/forward), the
 * query string carries page state worth sharing (a runs filter, chosen columns, compared runs).
 */
const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const l of listeners) l();
});

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
}

function subscribe(l: () => void) {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function useLocation(): { path: string; search: URLSearchParams } {
  const href = useSyncExternalStore(subscribe, () => location.pathname + location.search);
  const q = href.indexOf('?');
  return {
    path: q < 0 ? href : href.slice(0, q),
    search: new URLSearchParams(q < 0 ? '' : href.slice(q + 1)),
  };
}

/** Sets (or clears, with '') query parameters of the current URL without a new history entry. */
export function setSearch(changes: Record<string, string>): void {
  const search = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === '') search.delete(k);
    else search.set(k, v);
  }
  const qs = search.toString();
  navigate(location.pathname + (qs ? `?${qs}` : ''), { replace: true });
}
