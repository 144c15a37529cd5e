import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { KilnError } from '../errors.js';

/**
 * Every error leaves the server as MLflow's `{ error_code, message }` with MLflow's status.
 * Bad input is always a 4xx naming the field; only a genuine bug is a 500, and even then
 * no stack trace reaches the client.
 */
export function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof KilnError) {
    reply.status(error.status).send({ error_code: error.code, message: error.message });
    return;
  }
  if (error instanceof ZodError) {
    const e = KilnError.fromZod(undefined, error, request.method === 'GET' ? request.query : request.body);
    reply.status(e.status).send({ error_code: e.code, message: e.message });
    return;
  }
  // PostgreSQL stores no NUL in text (22021) and nothing its encoding lacks (22P05): the value
  // was bad input, wherever in the request it came from.
  const pgCode = (error as { code?: unknown }).code;
  if (pgCode === '22021' || pgCode === '22P05') {
    reply.status(400).send({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: 'a value in the request contains a NUL byte or a character the database cannot store',
    });
    return;
  }
  const fe = error as FastifyError;
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code =
      fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? 'RESOURCE_LIMIT_EXCEEDED'
        : fe.statusCode === 404
          ? 'ENDPOINT_NOT_FOUND'
          : 'INVALID_PARAMETER_VALUE';
    const message =
      fe.code === 'FST_ERR_BAD_URL'
        ? `the URL is not valid: a '%' in it must start a percent-encoded byte (%XX) (${clipForMessage(request.url)})`
        : fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? `unsupported content type '${clipForMessage(String(request.headers['content-type'] ?? ''), 80)}': send application/json`
          : clipForMessage(fe.message);
    reply
      .status(fe.statusCode === 413 ? 413 : fe.statusCode === 404 ? 404 : 400)
      .send({ error_code: code, message });
    return;
  }
  // Logged once, with what was asked clipped: a 6 kB URL must not fill the log.
  request.log.error({ err: error, url: clipForMessage(request.url) }, 'unhandled error');
  reply.status(500).send({ error_code: 'INTERNAL_ERROR', message: 'internal error; see the server log' });
}

/** Client-supplied text in a message or log line: at most a few hundred characters. */
export function clipForMessage(text: string, keep = 200): string {
  return text.length <= keep ? text : `${text.slice(0, keep)}… (${text.length} characters)`;
}

/**
 * JSON request bodies. A key `__proto__` (or `constructor.prototype`) is refused by name: code
 * that copies such an object into another with plain assignment would change that object's
 * prototype, and no kiln or MLflow request has such a field.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') {
    throw new KilnError('INVALID_PARAMETER_VALUE', 'the request body is empty; send a JSON object');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `the request body is not valid JSON: ${clipForMessage((e as Error).message)}`,
    );
  }
  if (text.includes('__proto__') || text.includes('prototype')) {
    const bad = prototypeKey(value, '');
    if (bad) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `the request body has a key '${bad}': refused, because such a key can change object prototypes in JavaScript; rename it`,
      );
    }
  }
  return value;
}

function prototypeKey(value: unknown, at: string): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    const here = at === '' ? key : `${at}.${key}`;
    if (key === '__proto__') return here;
    if (key === 'constructor' && child !== null && typeof child === 'object' && 'prototype' in child)
      return `${here}.prototype`;
    const inner = prototypeKey(child, here);
    if (inner) return inner;
  }
  return undefined;
}
