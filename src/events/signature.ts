import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * How a webhook payload is signed, and how a receiver checks it.
 *
 * The signed text is `<timestamp>.<raw body>`, where the timestamp (Unix seconds) is sent as
 * `X-Kiln-Timestamp`; `X-Kiln-Signature` is `sha256=<hex HMAC-SHA256 of that text keyed by
 * the subscription's secret>`. Signing the timestamp with the body lets a receiver refuse a
 * replayed request: a captured request re-sent later carries an old timestamp, and changing it
 * breaks the signature.
 */
export const SIGNATURE_HEADER = 'x-kiln-signature';
export const TIMESTAMP_HEADER = 'x-kiln-timestamp';
export const EVENT_HEADER = 'x-kiln-event';
export const DELIVERY_HEADER = 'x-kiln-delivery';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * A receiver's check: the signature matches the raw body and timestamp, and the timestamp is
 * within `toleranceSeconds` of now (default 5 minutes). Compare before parsing the JSON.
 *
 * @example
 * ```ts
 * const ok = verifyWebhookSignature({
 *   secret, body: rawBody,
 *   signature: req.headers['x-kiln-signature'], timestamp: req.headers['x-kiln-timestamp'],
 * });
 * ```
 */
export function verifyWebhookSignature(input: {
  secret: string;
  body: string;
  signature: string | string[] | undefined;
  timestamp: string | string[] | undefined;
  toleranceSeconds?: number;
  nowSeconds?: number;
}): boolean {
  const { secret, body, signature, timestamp } = input;
  if (typeof signature !== 'string' || typeof timestamp !== 'string' || !/^\d{1,12}$/.test(timestamp))
    return false;
  const ts = Number(timestamp);
  const now = input.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - ts) > (input.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(secret, ts, body));
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
