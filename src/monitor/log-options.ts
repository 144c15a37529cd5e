import { createHash } from 'node:crypto';
import { KilnError } from '../errors.js';

/** What every prediction log (metadata DB or Parquet segments) does before storing: sample, redact, hash. */
export interface PredictionLogOptions {
  /** Share of requests kept, 0 < rate ≤ 1 (default 1). */
  sampleRate?: number;
  /** Input or output fields replaced by null before storage. */
  redact?: string[];
  /** Input or output fields replaced by sha256(salt + value) (hex, first 16 chars): joinable, not readable. */
  hash?: string[];
  hashSalt?: string;
  /** Rows older than this many milliseconds are deleted (checked at most once a minute on write). */
  retentionMs?: number;
}

export function checkPredictionLogOptions(
  o: PredictionLogOptions,
): Required<Omit<PredictionLogOptions, 'retentionMs'>> & { retentionMs?: number } {
  const rate = o.sampleRate ?? 1;
  if (!(rate > 0 && rate <= 1)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `prediction log: sampleRate must be in (0, 1], got ${o.sampleRate}`,
    );
  }
  if (o.retentionMs !== undefined && !(o.retentionMs > 0)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `prediction log: retention must be positive, got ${o.retentionMs} ms`,
    );
  }
  const both = (o.redact ?? []).filter((f) => (o.hash ?? []).includes(f));
  if (both.length) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `prediction log: field(s) ${both.join(', ')} both redacted and hashed`,
    );
  }
  return {
    sampleRate: rate,
    redact: o.redact ?? [],
    hash: o.hash ?? [],
    hashSalt: o.hashSalt ?? '',
    ...(o.retentionMs !== undefined ? { retentionMs: o.retentionMs } : {}),
  };
}

/** Whether a request id falls in the sample: the first 32 bits of its sha256 against the rate. */
export function sampledIn(requestId: string, rate: number): boolean {
  if (rate >= 1) return true;
  const h = createHash('sha256').update(requestId).digest().readUInt32BE(0);
  return h / 0x1_0000_0000 < rate;
}

export function hashValue(value: unknown, salt: string): string | null {
  if (value === null || value === undefined) return null;
  return createHash('sha256').update(salt).update(String(value)).digest('hex').slice(0, 16);
}

/** Fields redacted (null) or hashed as the log options say, before anything is stored. */
export function scrubFields(
  fields: Record<string, unknown[]>,
  opts: { redact: string[]; hash: string[]; hashSalt: string },
): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (opts.redact.includes(k)) out[k] = v.map(() => null);
    else if (opts.hash.includes(k)) out[k] = v.map((x) => hashValue(x, opts.hashSalt));
    else out[k] = v;
  }
  return out;
}
