import os from 'node:os';

/**
 * Who acts when no server names a user: KILN_USER, else the OS user. A declared name, recorded
 * as such in the audit log; only a token (`kiln server --auth`) proves one.
 */
export function localUser(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_USER) return env.KILN_USER;
  try {
    return os.userInfo().username;
  } catch {
    // Containers often run as a uid with no passwd entry.
    return env.USER || 'unknown';
  }
}
