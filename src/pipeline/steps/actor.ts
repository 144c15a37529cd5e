import os from 'node:os';
import type { Actor } from '../../registry/index.js';

/** Who a pipeline's registry changes are recorded as: KILN_USER, else the OS user. */
export function pipelineActor(): Actor {
  let user = process.env.KILN_USER;
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return { user, reason: 'kiln pipeline' };
}
