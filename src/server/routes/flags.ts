/**
 * Feature flags at runtime (admin key only): list, read, create or replace, delete, and each
 * flag's audited history. A change is in effect on the node that answered at once and on every
 * node sharing the store within `cluster.changePollMs` (1 s by default). Reads answer what this
 * node evaluates. `If-Match: <revision>` makes a write conditional (`0`: only create).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { validationError } from '../../core/errors.ts';
import { FLAG_STRATEGIES, flagNotFound } from '../../governance/flags.ts';
import type { FlagWriteOptions } from '../../governance/runtime-flags.ts';
import { adminOnlyRoutes } from '../auth.ts';
import type { RouteContext } from '../context.ts';
import { errorResponses, type PageQuery, pageQuery } from '../schemas.ts';

const tags = ['flags'];
const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', description: '1-64 lowercase letters, digits, ".", "_", "-"' } },
} as const;
const strategy = {
  type: 'object',
  required: ['strategy'],
  additionalProperties: true,
  description:
    '`{ strategy: all | none }`, `{ strategy: percentage, percent }`, `{ strategy: allowlist | denylist, projects }` or `{ strategy: gradual, startPercent, endPercent, durationMs }`',
  properties: { strategy: { type: 'string', enum: [...FLAG_STRATEGIES] } },
} as const;
const definition = {
  type: 'object',
  properties: { flag: strategy, startedAt: { type: 'integer' } },
} as const;
const flagSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    flag: strategy,
    startedAt: { type: 'integer', description: 'epoch ms, the origin of a gradual ramp' },
    percent: { type: ['number', 'null'], description: 'the share of keys on now; null for project lists' },
    revision: { type: 'integer', description: 'the id of the change that set it (`If-Match`)' },
    updatedAt: { type: 'integer' },
    updatedBy: { type: 'string' },
  },
} as const;
const changeSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: 'string' },
    action: { type: 'string', enum: ['put', 'delete'] },
    before: { anyOf: [definition, { type: 'null' }] },
    after: { anyOf: [definition, { type: 'null' }] },
    actor: { type: 'string', description: '`admin` for the admin key, `config` for a flag seeded at start' },
    at: { type: 'integer' },
  },
} as const;

/** Who made a change through the API: the admin key is the only credential that may. */
const ACTOR = 'admin';

/** The write options of a request: its actor, and `If-Match` as the expected revision. */
function writeOptions(request: FastifyRequest): FlagWriteOptions {
  const ifMatch = request.headers['if-match'];
  if (ifMatch === undefined) return { actor: ACTOR };
  const text = String(ifMatch).replace(/^"(.*)"$/, '$1');
  if (!/^\d{1,15}$/.test(text)) {
    throw validationError('If-Match', 'must be a flag revision (a non-negative integer; 0 to only create)');
  }
  return { actor: ACTOR, expectedRevision: Number(text) };
}

/** Registers `/v1/flags` and `/v1/flags/{name}` (with `/history`). */
export function registerFlagRoutes(app: FastifyInstance, { pool }: RouteContext): void {
  const flags = pool.flags;
  adminOnlyRoutes(app, (url) => url.startsWith('/v1/flags'), 'managing feature flags');

  app.get(
    '/v1/flags',
    {
      schema: {
        tags,
        summary: 'List feature flags (admin)',
        response: {
          200: { type: 'object', properties: { data: { type: 'array', items: flagSchema } } },
          ...errorResponses,
        },
      },
    },
    async () => ({ data: flags.list() }),
  );

  app.get<{ Params: { name: string } }>(
    '/v1/flags/:name',
    {
      schema: {
        tags,
        summary: 'A feature flag (admin)',
        params: nameParams,
        response: { 200: flagSchema, ...errorResponses },
      },
    },
    async (request) => {
      const flag = flags.get(request.params.name);
      if (flag === undefined) throw flagNotFound(request.params.name);
      return flag;
    },
  );

  app.put<{ Params: { name: string }; Body: Record<string, unknown> }>(
    '/v1/flags/:name',
    {
      schema: {
        tags,
        summary: 'Create or replace a feature flag (admin)',
        description:
          'The body is the strategy, optionally with `startedAt` (epoch ms, the origin of a `gradual` ramp; default now). 201 when created, 200 when replaced. Audited; in effect on every node within `cluster.changePollMs` (1 s by default). `If-Match: <revision>` writes only over that revision (0: only create), else 409 `VERSION_CONFLICT`.',
        params: nameParams,
        body: { ...strategy, properties: { ...strategy.properties, startedAt: { type: 'integer' } } },
        response: { '2xx': flagSchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { flag, change } = await flags.set(request.params.name, request.body, writeOptions(request));
      return reply.code(change.before === null ? 201 : 200).send(flag);
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/flags/:name',
    {
      schema: {
        tags,
        summary: 'Delete a feature flag (admin)',
        description:
          'Audited; its history stays. Code asking an unknown flag gets `NOT_FOUND`, so delete a flag once no code asks for it. `If-Match: <revision>` deletes only that revision.',
        params: nameParams,
        response: { 200: changeSchema, ...errorResponses },
      },
    },
    async (request) => flags.delete(request.params.name, writeOptions(request)),
  );

  app.get<{ Params: { name: string }; Querystring: PageQuery }>(
    '/v1/flags/:name/history',
    {
      schema: {
        tags,
        summary: "A feature flag's changes, newest first (admin)",
        description: 'Who changed the flag, from what to what, when; kept after the flag is deleted.',
        params: nameParams,
        querystring: pageQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              data: { type: 'array', items: changeSchema },
              nextCursor: { type: ['string', 'null'] },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => flags.history(request.params.name, request.query),
  );
}
