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
    const e = KilnError.fromZod(undefined, error);
    reply.status(e.status).send({ error_code: e.code, message: e.message });
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
    reply.status(fe.statusCode === 413 ? 413 : 400).send({ error_code: code, message: fe.message });
    return;
  }
  request.log.error({ err: error }, 'unhandled error');
  reply.status(500).send({ error_code: 'INTERNAL_ERROR', message: 'internal error; see the server log' });
}
