/**
 * The HTTP server: a fastify instance over an {@link AgentPool}. It owns the wiring only —
 * request validation (JSON schema on every route; unknown body fields rejected), the OpenAPI 3.1
 * document (with its bearer security scheme) and the docs UI, the one error handler, the access
 * log, CORS, readiness and draining. Every route is a thin call into the pool's facade; nothing
 * here re-implements the core.
 */
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { AgentPool } from '../agent-pool.ts';
import { AgentPoolError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { intOption } from '../core/options.ts';
import { assertSlug, DEFAULT_PROJECT } from '../registry/definition.ts';
import type { RouteContext } from './context.ts';
import { handleError, handleNotFound } from './error-handler.ts';
import { registerDashboardRoutes } from './dashboard/page.ts';
import { registerAgentRoutes } from './routes/agents.ts';
import { registerClusterRoutes } from './routes/cluster.ts';
import { registerFlagRoutes } from './routes/flags.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerMcpServerRoutes } from './routes/mcp-servers.ts';
import { registerMetricsRoutes } from './routes/metrics.ts';
import { registerOpenAICompatRoutes } from './routes/openai-compat.ts';
import { registerPoolHealthRoutes } from './routes/pool-health.ts';
import { registerPoolLiveRoutes } from './routes/pool-live.ts';
import { registerPoolRoutes } from './routes/pool.ts';
import { registerProjectRoutes } from './routes/projects.ts';
import { registerRecoveryRoutes } from './routes/recovery.ts';
import { registerRolloutRoutes } from './routes/rollouts.ts';
import { registerRunRoutes } from './routes/runs.ts';
import { registerThreadRoutes } from './routes/threads.ts';
import { registerToolRoutes } from './routes/tools.ts';
import { registerUsageRoutes } from './routes/usage.ts';
import { SHARED_SCHEMAS } from './schemas.ts';
import { installAuth } from './auth.ts';
import { installAccessLog } from './access-log.ts';
import { type CorsOptions, corsPluginOptions, type ResolvedCorsOptions, resolveCorsOptions } from './cors.ts';
import {
  fastifyHttpOptions,
  type HttpLimitsOptions,
  installHttpLimits,
  type ResolvedHttpLimits,
  resolveHttpLimitsOptions,
} from './http-limits.ts';

/** Options of {@link buildServer}. */
export interface ServerOptions {
  /** Largest request body accepted, in bytes; larger ones get 413 `PAYLOAD_TOO_LARGE`. @default 1048576 (1 MiB) */
  bodyLimit?: number;
  /**
   * Where the access log (one line per request) and the server's errors go, as `component: 'http'`.
   * @default the pool's logger (`pool.logger`, silent unless `createAgentPool` was given one)
   */
  logger?: Logger;
  /**
   * The project every request acts in (single-project development mode, until API keys exist).
   * @default 'default'
   */
  project?: string;
  /**
   * The admin key: it manages projects and API keys, and turns authentication on even before any
   * project key exists. @default none (development mode until a project key is issued)
   */
  adminKey?: string;
  /**
   * Browser origins allowed to call the API (`{ origins: ['https://app.example.com'] }`, or
   * `['*']`). @default off: no CORS headers at all, so browsers refuse cross-origin calls
   */
  cors?: CorsOptions;
  /** Timeouts, connection caps and JSON depth against slow, numerous or malformed requests (docs/server.md). */
  http?: HttpLimitsOptions;
  /**
   * A token (≥ 16 characters) that reads `/metrics` and nothing else, for Prometheus
   * (`authorization: { credentials: … }`). Once authentication is on, `/metrics` needs it or the
   * admin key; in development mode `/metrics` stays open. @default none
   */
  metricsToken?: string;
}

/** {@link ServerOptions} with every default applied. */
export interface ResolvedServerOptions {
  readonly bodyLimit: number;
  /** null: the pool's logger. */
  readonly logger: Logger | null;
  readonly project: string;
  readonly adminKey: string | null;
  /** null: CORS off. */
  readonly cors: ResolvedCorsOptions | null;
  readonly http: ResolvedHttpLimits;
  readonly metricsToken: string | null;
}

/** Applies the defaults of {@link ServerOptions}; `VALIDATION_FAILED` naming the field for a bad value. */
export function resolveServerOptions(options: ServerOptions = {}): ResolvedServerOptions {
  return {
    bodyLimit: intOption('server.bodyLimit', options.bodyLimit, 1024 * 1024, 1),
    logger: options.logger ?? null,
    project: assertSlug('server.project', options.project ?? DEFAULT_PROJECT),
    adminKey: secretOption('server.adminKey', options.adminKey),
    metricsToken: secretOption('server.metricsToken', options.metricsToken),
    cors: resolveCorsOptions(options.cors),
    http: resolveHttpLimitsOptions(options.http),
  };
}

function secretOption(field: string, key: unknown): string | null {
  if (key === undefined) return null;
  if (typeof key !== 'string' || key.length < 16) {
    throw new AgentPoolError('VALIDATION_FAILED', `${field} must be a string of at least 16 characters`, {
      field,
    });
  }
  return key;
}

/** Readiness control of a built server (`app.agentpool`). */
export interface ServerControl {
  /** The project requests act in. */
  readonly project: string;
  /**
   * True once {@link ServerControl.drain} was called: `/readyz` answers 503 `draining` and new
   * runs are refused with 503 `SHUTTING_DOWN`; every other request is still served.
   */
  readonly draining: boolean;
  /** Marks the server as draining (shutting down), so load balancers and clients go elsewhere. */
  drain(): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Readiness control and the acting project of an agentpool server. */
    readonly agentpool: ServerControl;
  }
}

// Bodies are validated strictly (no type coercion: `"input": 5` is an error, not "5"); the
// query string, path and headers arrive as text, so they are coerced ("?limit=10" → 10, one
// `?label=` → an array). Neither removes unknown properties: `additionalProperties: false` rejects.
function validatorCompilers() {
  const base = { removeAdditional: false, useDefaults: true, allErrors: false, strict: false } as const;
  const body = new Ajv({ ...base, coerceTypes: false });
  const text = new Ajv({ ...base, coerceTypes: 'array' });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? body : text).compile(schema);
}

/**
 * The routes that start a run, refused while draining: a run started now would be interrupted by
 * the shutdown, while the client can retry it on another node at once.
 */
export const RUN_STARTING_ROUTES: ReadonlySet<string> = new Set([
  'POST /v1/agents/:idOrName/runs',
  'POST /v1/chat/completions',
  'POST /v1/responses',
]);

/** Seconds a client refused while draining is told to wait before retrying (elsewhere). */
const DRAINING_RETRY_AFTER_S = 1;

/** Marks a server built by {@link buildServer} as draining: `/readyz` and new runs answer 503 from now on. */
export function markDraining(app: FastifyInstance): void {
  app.agentpool.drain();
}

/** Builds (but does not start) the HTTP server over `pool`. The caller closes the pool. */
export async function buildServer(pool: AgentPool, options?: ServerOptions): Promise<FastifyInstance> {
  const resolved = resolveServerOptions(options);
  const app = Fastify({
    bodyLimit: resolved.bodyLimit,
    // Typed as fastify's base logger so the instance keeps the FastifyInstance type routes take.
    loggerInstance: (resolved.logger ?? pool.logger).child({ component: 'http' }) as FastifyBaseLogger,
    // Not fastify's two lines per request: the access log writes one (access-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    ...fastifyHttpOptions(resolved.http),
  });
  installHttpLimits(app, resolved.http);
  app.setValidatorCompiler(validatorCompilers());
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  let draining = false;
  const control: ServerControl = {
    project: resolved.project,
    get draining() {
      return draining;
    },
    drain() {
      draining = true;
    },
  };
  app.decorate('agentpool', control);
  installAccessLog(app);
  // Before authentication: a preflight carries no Authorization header and must still be answered.
  if (resolved.cors !== null) await app.register(cors, corsPluginOptions(resolved.cors));
  installAuth(app, pool, {
    project: resolved.project,
    adminKey: resolved.adminKey,
    metricsToken: resolved.metricsToken,
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (!draining) return done();
    reply.header('connection', 'close'); // keep-alive clients reconnect, to another node
    if (RUN_STARTING_ROUTES.has(`${request.method} ${request.routeOptions.url ?? ''}`)) {
      return done(
        new AgentPoolError('SHUTTING_DOWN', 'this server is shutting down and takes no new runs: retry', {
          retryAfterSeconds: DRAINING_RETRY_AFTER_S,
        }),
      );
    }
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'agentpool',
        version: '0.1.0',
        description: 'Hosts LLM agents the way an actor runtime hosts actors.',
      },
      tags: [
        { name: 'agents', description: 'Agent definitions and versions' },
        { name: 'threads', description: 'Conversations' },
        { name: 'runs', description: 'Executions of agents' },
        {
          name: 'mcp-servers',
          description: "The project's MCP servers, whose tools agents reference as mcp:<server>",
        },
        { name: 'pool', description: 'Live instances and the activation cache' },
        { name: 'tools', description: 'Tools a project can use, their figures, module reloads' },
        { name: 'openai', description: 'OpenAI-compatible endpoints where `model` names an agent' },
        { name: 'ops', description: 'Health, readiness and metrics' },
        { name: 'flags', description: 'Feature flags at runtime and their history (admin)' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description:
              'An API key of a project (`ap_…`) or the admin key. Not needed in development mode (no admin key, no project key issued).',
          },
        },
      },
      // Every operation needs the key unless it says otherwise (health and readiness say `[]`).
      security: [{ bearerAuth: [] }],
    },
    // Components are named after the shared schemas' `$id` (Agent, Run …), not def-0, def-1 ….
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());

  const context: RouteContext = { pool };
  registerHealthRoutes(app, context, () => draining);
  registerAgentRoutes(app, context);
  registerRolloutRoutes(app, context);
  registerThreadRoutes(app, context);
  registerMcpServerRoutes(app, context);
  registerRunRoutes(app, context);
  registerPoolRoutes(app, context);
  registerRecoveryRoutes(app, context);
  registerToolRoutes(app, context);
  registerUsageRoutes(app, context);
  registerPoolHealthRoutes(app, context);
  registerPoolLiveRoutes(app, context);
  registerClusterRoutes(app, context);
  registerMetricsRoutes(app, context);
  registerOpenAICompatRoutes(app, context);
  registerProjectRoutes(app, context);
  registerDashboardRoutes(app);
  registerFlagRoutes(app, context);
  return app;
}
