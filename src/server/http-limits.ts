/**
 * The HTTP server's limits against slow, numerous and malformed requests: how long receiving a
 * request may take, how many connections are open at once (in all and per client address), and
 * how deep a JSON body may nest. Without them a client could hold a socket forever by sending a
 * body a byte a minute (fastify turns Node's request timeout off by default), or fill the server
 * with such sockets, or crash a request with `{"a":{"a":…}}` 5,000 levels deep.
 *
 * What is timed is receiving the request only. Once its body is in, the answer may take as long
 * as it takes: a wait-mode run or an SSE stream is never cut by these timeouts (Node stops timing
 * a request when its last byte arrives; no socket inactivity timeout is set).
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { validationError } from '../core/errors.ts';
import { intOption, objectOption } from '../core/options.ts';
import { clientErrorResponse } from './error-handler.ts';

/** Limits of the HTTP server (`ServerOptions.http`). */
export interface HttpLimitsOptions {
  /**
   * Longest time to receive one whole request, headers and body, in ms. Past it the client gets
   * 408 `REQUEST_TIMEOUT` and the connection is closed. @default 30000
   */
  requestTimeoutMs?: number;
  /**
   * Longest time to receive a request's headers, in ms; also how long a new connection may stay
   * silent. At most `requestTimeoutMs`. @default 10000
   */
  headersTimeoutMs?: number;
  /**
   * How long a keep-alive connection may stay idle between requests, in ms. Keep it above the idle
   * timeout of a load balancer in front (60 s on common ones). @default 72000
   */
  keepAliveTimeoutMs?: number;
  /** Open connections at most; new ones beyond it are closed at once. 0: no limit. @default 10000 */
  maxConnections?: number;
  /**
   * Open connections per client address at most; new ones beyond it are closed at once. Behind a
   * reverse proxy every client has the proxy's address: raise it, or 0 for no limit. @default 1024
   */
  maxConnectionsPerIp?: number;
  /**
   * How deep a JSON body may nest objects and arrays (the body itself is level 1); deeper bodies
   * get 400 `VALIDATION_FAILED` naming `body` before they are parsed. @default 64
   */
  maxJsonDepth?: number;
}

/** {@link HttpLimitsOptions} with every default applied. */
export interface ResolvedHttpLimits {
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly maxJsonDepth: number;
}

const FIELDS = [
  'requestTimeoutMs',
  'headersTimeoutMs',
  'keepAliveTimeoutMs',
  'maxConnections',
  'maxConnectionsPerIp',
  'maxJsonDepth',
] as const;

const HOUR_MS = 3_600_000;

/** Applies the defaults of {@link HttpLimitsOptions}; `VALIDATION_FAILED` naming the field (`server.http.…`) for a bad value. */
export function resolveHttpLimitsOptions(options?: HttpLimitsOptions): ResolvedHttpLimits {
  const given = objectOption('server.http', options, FIELDS) as HttpLimitsOptions;
  const requestTimeoutMs = intOption(
    'server.http.requestTimeoutMs',
    given.requestTimeoutMs,
    30_000,
    1,
    HOUR_MS,
  );
  const headersTimeoutMs = intOption(
    'server.http.headersTimeoutMs',
    given.headersTimeoutMs,
    Math.min(10_000, requestTimeoutMs),
    1,
    HOUR_MS,
  );
  if (headersTimeoutMs > requestTimeoutMs) {
    throw validationError(
      'server.http.headersTimeoutMs',
      `must be at most server.http.requestTimeoutMs (${requestTimeoutMs}), got ${headersTimeoutMs}`,
    );
  }
  return Object.freeze({
    requestTimeoutMs,
    headersTimeoutMs,
    keepAliveTimeoutMs: intOption(
      'server.http.keepAliveTimeoutMs',
      given.keepAliveTimeoutMs,
      72_000,
      1,
      HOUR_MS,
    ),
    maxConnections: intOption('server.http.maxConnections', given.maxConnections, 10_000, 0),
    maxConnectionsPerIp: intOption('server.http.maxConnectionsPerIp', given.maxConnectionsPerIp, 1024, 0),
    maxJsonDepth: intOption('server.http.maxJsonDepth', given.maxJsonDepth, 64, 1, 10_000),
  });
}

/**
 * The fastify options that carry the timeouts. Node checks them on a timer; it runs at a quarter
 * of the shorter timeout (at most once a second, so 30 s is enforced within 31 s; Node's own
 * 30 s check would let a request run up to a minute).
 */
export function fastifyHttpOptions(limits: ResolvedHttpLimits) {
  const shorter = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  return {
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // No socket inactivity timeout: it would also cut a quiet SSE stream or a long wait-mode run.
    connectionTimeout: 0,
    http: {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(1, Math.min(1000, Math.floor(shorter / 4))),
    },
    clientErrorHandler,
  };
}

/**
 * Installs the limits that need the built app: the JSON body parser with its depth check, the
 * connection caps, and `Connection: close` on answers sent before the request's body was read.
 */
export function installHttpLimits(app: FastifyInstance, limits: ResolvedHttpLimits): void {
  installJsonParser(app, limits.maxJsonDepth);
  limitConnections(app, limits);
  // An answer sent before the body was read (401 from authentication, 413, 415, an unknown route)
  // closes the connection: otherwise Node keeps reading, and a client trickling a large body
  // holds the socket open long after it was refused.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (!request.raw.complete) reply.header('connection', 'close');
    done(null, payload);
  });
}

/**
 * fastify's JSON parser (with its prototype-poisoning protection, as configured), preceded by a
 * depth check on the text: `JSON.parse` itself copes with deep nesting, but every recursive walk
 * after it (`JSON.stringify`, schema validation) overflows the stack.
 */
function installJsonParser(app: FastifyInstance, maxDepth: number): void {
  const config = app.initialConfig;
  const parse = app.getDefaultJsonParser(
    config.onProtoPoisoning ?? 'error',
    config.onConstructorPoisoning ?? 'error',
  );
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8'); // always a string (parseAs)
    if (jsonNestingExceeds(text, maxDepth)) {
      done(
        validationError('body', `nests objects and arrays deeper than ${maxDepth} levels`, {
          in: 'body',
          maxDepth,
        }),
        undefined,
      );
      return;
    }
    void parse(request, text, done); // fastify's parser answers through `done`, synchronously
  });
}

/**
 * True when JSON text nests objects and arrays deeper than `max`. One pass over the text, never
 * recursive: brackets inside strings are skipped with `indexOf`, so the scan costs little next to
 * the parse that follows. Malformed text is left for the parser to refuse.
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = closingQuote(text, i + 1);
      if (i < 0) return false;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/** The index of the quote ending the string that starts at `from`, or -1 when it never ends. */
function closingQuote(text: string, from: number): number {
  for (let at = text.indexOf('"', from); at >= 0; at = text.indexOf('"', at + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c /* \ */) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}

/**
 * Caps open connections: server-wide through Node's `maxConnections`, per client address by
 * counting sockets as they open and close. A socket over the cap is destroyed before it is read.
 * The count map holds one entry per address with a connection open, so it is bounded by them.
 */
function limitConnections(app: FastifyInstance, limits: ResolvedHttpLimits): void {
  const server = app.server;
  if (limits.maxConnections > 0) server.maxConnections = limits.maxConnections;
  const perIp = limits.maxConnectionsPerIp;
  if (perIp === 0) return;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = clientAddress(socket);
    const count = (open.get(address) ?? 0) + 1;
    if (count > perIp) {
      app.log.debug({ address, maxConnectionsPerIp: perIp }, 'connection refused: too many from one address');
      socket.destroy();
      return;
    }
    open.set(address, count);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

/** The client's address, with an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) counted as its IPv4 self. */
function clientAddress(socket: Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * Answers a request Node's parser refused (timeout, oversized headers, not HTTP) in our error
 * shape and closes the socket; writes nothing when an answer is already on its way (Node's rule,
 * so the client never reads two answers mixed together).
 */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // Node's own check: the response in progress on this socket, if any (not public API).
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) socket.write(clientErrorResponse(err.code));
  socket.destroy();
}
