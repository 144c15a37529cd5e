import { KilnError } from '../errors.js';
import { EVENT_TYPES, type EventType } from './types.js';

/** Limits on what a subscription holds; the REST layer and the CLI both go through these checks. */
export const WEBHOOK_LIMITS = {
  urlLength: 2048,
  secretMinLength: 8,
  secretLength: 1024,
  descriptionLength: 1000,
  eventsPerSubscription: 50,
} as const;

const bad = (field: string, why: string) =>
  new KilnError('INVALID_PARAMETER_VALUE', `Invalid value for parameter '${field}': ${why}`);

/**
 * A receiver URL: http or https only (no file:, no data:, nothing a fetch would read locally),
 * and no user:password part, which would be stored and echoed back like any other URL.
 */
export function checkWebhookUrl(value: unknown, field = 'url'): string {
  if (typeof value !== 'string' || value === '') throw bad(field, 'expected an http(s):// URL');
  if (value.length > WEBHOOK_LIMITS.urlLength)
    throw bad(field, `longer than ${WEBHOOK_LIMITS.urlLength} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad(field, `'${value.slice(0, 100)}' is not a URL (expected http(s)://host[:port]/path)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad(field, `scheme '${url.protocol.replace(/:$/, '')}' is not allowed: only http and https`);
  if (url.username || url.password)
    throw bad(field, 'credentials in the URL are not allowed: authenticate the receiver with the signature');
  return url.toString();
}

export function checkWebhookSecret(value: unknown, field = 'secret'): string {
  if (typeof value !== 'string') throw bad(field, 'expected a string');
  if (value.length < WEBHOOK_LIMITS.secretMinLength)
    throw bad(field, `shorter than ${WEBHOOK_LIMITS.secretMinLength} characters`);
  if (value.length > WEBHOOK_LIMITS.secretLength)
    throw bad(field, `longer than ${WEBHOOK_LIMITS.secretLength} characters`);
  return value;
}

export function checkWebhookDescription(value: unknown, field = 'description'): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw bad(field, 'expected a string');
  if (value.length > WEBHOOK_LIMITS.descriptionLength)
    throw bad(field, `longer than ${WEBHOOK_LIMITS.descriptionLength} characters`);
  return value;
}

/**
 * Event patterns: a known type (`alias.moved`), a prefix (`alias.*`, matching at least one
 * known type), or `*`. Unknown types are refused so a typo does not subscribe to nothing.
 */
export function checkEventPatterns(value: unknown, field = 'events'): string[] {
  if (!Array.isArray(value) || value.length === 0)
    throw bad(field, `expected a non-empty list of event types (${EVENT_TYPES.join(', ')})`);
  if (value.length > WEBHOOK_LIMITS.eventsPerSubscription)
    throw bad(field, `more than ${WEBHOOK_LIMITS.eventsPerSubscription} entries`);
  const out: string[] = [];
  value.forEach((p, i) => {
    if (typeof p !== 'string') throw bad(`${field}[${i}]`, 'expected a string');
    const known = p === '*' || EVENT_TYPES.some((t) => eventMatches(p, t));
    if (!known)
      throw bad(
        `${field}[${i}]`,
        `'${p.slice(0, 80)}' is not an event type or pattern (types: ${EVENT_TYPES.join(', ')}; patterns: 'alias.*', '*')`,
      );
    if (!out.includes(p)) out.push(p);
  });
  return out;
}

export function checkEventType(value: unknown): EventType {
  if (typeof value !== 'string' || !(EVENT_TYPES as readonly string[]).includes(value))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `unknown event type '${String(value).slice(0, 80)}' (add it to EVENT_TYPES in src/events/types.ts)`,
    );
  return value as EventType;
}

/** Whether a subscription's pattern takes an event of `type`. */
export function eventMatches(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}
