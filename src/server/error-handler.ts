/**
 * The one place where failures become HTTP answers. Every error body is
 * `{ error: { code, message, details } }`: AgentPoolErrors keep their code and status; fastify's
 * own failures (schema validation, body too large, bad JSON, unknown route) get catalogue codes;
 * anything else is a 500 `INTERNAL_ERROR` whose cause is logged, never sent.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AgentPoolError, type ErrorDetails, isAgentPoolError } from '../core/errors.ts';

/** The wire form of an error. */
export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetails };
}

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Turns an ajv instance path (`/tools/0/name`) into the facade's field notation (`tools[0].name`). */
function fieldOf(issue: ValidationIssue): string {
  const parts = (issue.instancePath ?? '')
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra = issue.params?.['additionalProperty'] ?? issue.params?.['missingProperty'];
  if (typeof extra === 'string') parts.push(extra);
  let field = '';
  for (const part of parts) field += /^\d+$/.test(part) ? `[${part}]` : field === '' ? part : `.${part}`;
  return field;
}

/** A schema validation failure as a `VALIDATION_FAILED` error naming the field. */
export function validationFailure(
  issues: readonly ValidationIssue[],
  context: string | undefined,
): AgentPoolError {
  const issue = issues[0] ?? {};
  const where = context ?? 'body';
  const field = fieldOf(issue) || where;
  let message: string;
  if (issue.keyword === 'additionalProperties') message = `${field} is not a known field`;
  else if (issue.keyword === 'required') message = `${field} is required`;
  else message = `${field} ${issue.message ?? 'is invalid'}`;
  const details: ErrorDetails = { field, in: where };
  if (issue.keyword !== undefined) details['rule'] = issue.keyword;
  if (issue.params !== undefined) details['params'] = issue.params;
  return new AgentPoolError('VALIDATION_FAILED', message, details);
}

/** Maps any error to a status and an error body; every code comes from the catalogue. */
export function toErrorAnswer(err: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (isAgentPoolError(err)) return { status: err.status, body: err.toJSON(), internal: false };
  const e = err as Partial<FastifyError> & { validation?: ValidationIssue[] };
  if (Array.isArray(e.validation)) {
    return toErrorAnswer(validationFailure(e.validation, e.validationContext));
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return toErrorAnswer(
        new AgentPoolError('PAYLOAD_TOO_LARGE', 'the request body is larger than the server accepts'),
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return toErrorAnswer(
        new AgentPoolError('UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json'),
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return toErrorAnswer(
        new AgentPoolError('VALIDATION_FAILED', `body ${e.message ?? 'is not valid JSON'}`, {
          field: 'body',
          in: 'body',
        }),
      );
  }
  // Other client errors fastify raises (a JSON syntax error, a bad content length …).
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return toErrorAnswer(
      new AgentPoolError('VALIDATION_FAILED', e.message ?? 'bad request', {
        in: 'request',
        status: e.statusCode,
      }),
    );
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL_ERROR', message: 'internal error', details: {} } },
    internal: true,
  };
}

/** Sets `Retry-After` (whole seconds, at least 1) when the error says when to retry. */
export function setRetryAfter(reply: FastifyReply, details: Record<string, unknown>): void {
  const seconds = details['retryAfterSeconds'];
  if (typeof seconds === 'number') reply.header('retry-after', String(Math.max(1, Math.ceil(seconds))));
}

/** The server's error handler: answers with {@link toErrorAnswer}, logging unexpected errors. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body, internal } = toErrorAnswer(err);
  if (internal) request.log.error({ err }, 'unhandled error');
  setRetryAfter(reply, body.error.details);
  return reply.code(status).send(body);
}

/** The answer to a route that does not exist: 404 `NOT_FOUND`. */
export function handleNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = new AgentPoolError('NOT_FOUND', `no route ${request.method} ${request.url}`, {
    method: request.method,
    path: request.url.split('?')[0],
  });
  return reply.code(err.status).send(err.toJSON());
}

/**
 * The raw HTTP answer to a request Node's parser gave up on before fastify saw it (the
 * `clientError` event): the headers or the whole request took too long (408 `REQUEST_TIMEOUT`),
 * the headers were too large (431 `HEADERS_TOO_LARGE`), or the bytes were not HTTP (400
 * `VALIDATION_FAILED`). It always closes the connection: the rest of what the client sends cannot
 * be trusted to start a new request.
 */
export function clientErrorResponse(nodeCode: string | undefined): string {
  let err: AgentPoolError;
  if (nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT') {
    err = new AgentPoolError(
      'REQUEST_TIMEOUT',
      'the request was not received in time (headers, or the whole request with its body)',
    );
  } else if (nodeCode === 'HPE_HEADER_OVERFLOW') {
    err = new AgentPoolError('HEADERS_TOO_LARGE', 'the request headers are larger than the server accepts');
  } else {
    err = new AgentPoolError('VALIDATION_FAILED', 'the request is not valid HTTP', {
      in: 'request',
      ...(nodeCode !== undefined && { reason: nodeCode }),
    });
  }
  const body = JSON.stringify(err.toJSON());
  return (
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n` +
    `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `connection: close\r\n\r\n${body}`
  );
}
