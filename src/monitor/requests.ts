import { KilnError } from '../errors.js';
import type { ColumnDriftOptions } from './drift/choose.js';
import { DRIFT_TEST_NAMES } from './drift/tests.js';
import type { DriftTestName } from './drift/types.js';
import type { WindowRequest } from './drift-check.js';
import { parseDuration } from './prediction-log.js';
import type { DriftOptions } from './window-drift.js';

/**
 * The one reading of a monitoring request's options, shared by `kiln monitor …` (flags) and
 * the REST routes (query parameters), so both refuse the same input with the same message.
 * `name` maps an option to what the user typed (`--window` or `window`).
 */
export interface RawDriftRequest {
  window?: string;
  end?: string;
  share?: string;
  thresholds?: string;
  chunks?: string;
  /** `amount=ks,origin=psi:0.2`: a test per feature, with an optional threshold. */
  test?: string;
}

export function parseWindowRequest(raw: RawDriftRequest, name: (o: string) => string): WindowRequest {
  const windowMs = parseDuration(raw.window ?? '24h', name('window'));
  let end: number | undefined;
  if (raw.end !== undefined) {
    end = Date.parse(raw.end);
    if (!Number.isFinite(end)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${name('end')}: expected an ISO time like 2026-06-01T00:00:00Z, got '${raw.end.slice(0, 60)}'`,
      );
    }
  }
  return { windowMs, ...(end !== undefined ? { end } : {}) };
}

export function parseDriftOptions(raw: RawDriftRequest, name: (o: string) => string): DriftOptions {
  const out: DriftOptions = {};
  if (raw.share !== undefined) {
    const share = Number(raw.share);
    if (!(share > 0 && share <= 1)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${name('share')}: expected a share in (0, 1], got '${raw.share.slice(0, 40)}'`,
      );
    }
    out.shareThreshold = share;
  }
  if (raw.thresholds !== undefined) {
    if (raw.thresholds !== 'test' && raw.thresholds !== 'chunks') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${name('thresholds')}: expected 'test' (each test's own threshold) or 'chunks' (NannyML's reference band), got '${raw.thresholds.slice(0, 40)}'`,
      );
    }
    out.thresholds = raw.thresholds;
  }
  if (raw.chunks !== undefined) {
    const chunks = Number(raw.chunks);
    if (!Number.isInteger(chunks) || chunks < 1 || chunks > 1000) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${name('chunks')}: expected a whole number from 1 to 1000, got '${raw.chunks.slice(0, 40)}'`,
      );
    }
    out.chunks = chunks;
  }
  if (raw.test !== undefined && raw.test !== '') {
    const perColumn: Record<string, ColumnDriftOptions> = {};
    for (const part of raw.test.split(',')) {
      const m = /^([^=]+)=([a-z]+)(?::([0-9.eE+-]+))?$/.exec(part.trim());
      if (!m || !DRIFT_TEST_NAMES.includes(m[2] as DriftTestName)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${name('test')}: expected FEATURE=TEST[:THRESHOLD] with TEST one of ${DRIFT_TEST_NAMES.join(', ')}, got '${part.slice(0, 80)}'`,
        );
      }
      const threshold = m[3] === undefined ? undefined : Number(m[3]);
      if (threshold !== undefined && !Number.isFinite(threshold)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${name('test')}: '${part.slice(0, 80)}' has no numeric threshold`,
        );
      }
      perColumn[m[1]!.trim()] = {
        test: m[2] as DriftTestName,
        ...(threshold !== undefined ? { threshold } : {}),
      };
    }
    out.perColumn = perColumn;
  }
  return out;
}
