/** Matches a path against `/runs/:runId` patterns (pure: unit-tested without a browser). */
export interface Match {
  page: string;
  params: Record<string, string>;
}

/** Routes as `/runs/:runId`; the first pattern that matches wins. */
export function matchRoute(path: string, routes: [string, string][]): Match | null {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page] of routes) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      if (want[i]!.startsWith(':')) {
        try {
          params[want[i]!.slice(1)] = decodeURIComponent(parts[i]!);
        } catch {
          ok = false;
        }
      } else if (want[i] !== parts[i]) ok = false;
      if (!ok) break;
    }
    if (ok) return { page, params };
  }
  return null;
}
