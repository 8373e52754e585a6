/**
 * JSON schemas shared by the HTTP routes: the shapes of the records the API returns (registered
 * once with `$id`s, so the OpenAPI document names them as components) and the request fragments
 * routes reuse. Request schemas check types and reject unknown fields; the limits of values come
 * from the core's own constants, and the facade still validates everything it is given.
 */
import { HOOK_NAMES, SPEC_LIMITS, TIERS } from '../registry/definition.ts';
import { MULTITASK_STRATEGIES } from '../coordination/thread-gate.ts';

/** Page size bounds of every list route. */
export const PAGE_LIMIT = { minimum: 1, maximum: 1000 } as const;

const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;
const jsonObject = { type: 'object', additionalProperties: true } as const;

/** `{ error: { code, message, details } }`, the body of every error answer. */
export const errorResponseSchema = {
  $id: 'ErrorResponse',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'details'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: jsonObject,
      },
    },
  },
} as const;

const agentSpecProperties = {
  name: { type: 'string', maxLength: SPEC_LIMITS.nameLength },
  instructions: { type: 'string', maxLength: SPEC_LIMITS.instructionsLength },
  model: { type: 'string', description: '`provider/model-id`' },
  fallbacks: {
    type: 'array',
    maxItems: SPEC_LIMITS.fallbacks,
    items: { type: 'string' },
    description: 'models tried in order when `model` cannot answer',
  },
  temperature: { type: 'number', minimum: 0, maximum: 2 },
  maxTokens: { type: 'integer', minimum: 1, maximum: SPEC_LIMITS.maxTokens },
  maxSteps: { type: 'integer', minimum: 1, maximum: SPEC_LIMITS.maxSteps },
  tools: { type: 'array', maxItems: SPEC_LIMITS.tools, items: { type: 'string' } },
  hooks: {
    type: 'object',
    additionalProperties: false,
    description:
      'functions called at points of each run, as `module:<path>#<export>` references resolved once per instance at activation',
    properties: Object.fromEntries(
      HOOK_NAMES.map((name) => [name, { type: 'string', maxLength: SPEC_LIMITS.toolRefLength }]),
    ),
  },
  tier: { type: 'string', enum: [...TIERS] },
  labels: { type: 'object', additionalProperties: { type: 'string' } },
  metadata: jsonObject,
  ttlSeconds: { type: 'integer', minimum: 1, maximum: SPEC_LIMITS.ttlSeconds },
  runTimeoutMs: {
    type: 'integer',
    minimum: SPEC_LIMITS.runTimeoutMsMin,
    maximum: SPEC_LIMITS.runTimeoutMsMax,
    description: 'a run running longer (ms) is cancelled with RUN_TIMEOUT by the health monitor',
  },
  limits: {
    type: 'object',
    additionalProperties: false,
    description: "this agent's own run quotas, within its project's",
    properties: {
      maxConcurrentRuns: { type: 'integer', minimum: 0 },
      runsPerMinute: { type: 'integer', minimum: 0 },
    },
  },
} as const;

/** An agent definition as a client writes it (`POST /v1/agents`). */
export const agentSpecBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: agentSpecProperties,
} as const;

/** The full definition for `PUT /v1/agents/{name}`: the name comes from the path. */
export const agentApplyBody = { ...agentSpecBody, required: [] } as const;

/** A partial change (`PATCH`): `null` returns a field to its default. */
export const agentPatchBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...Object.fromEntries(
      Object.entries(agentSpecProperties).map(([key, schema]) => [
        key,
        key === 'name' ? schema : { anyOf: [schema, { type: 'null' }] },
      ]),
    ),
    rollout: {
      type: 'object',
      required: ['strategy'],
      additionalProperties: true,
      description:
        'Canary the change instead of activating it: `{ strategy: all|none|percentage|allowlist|denylist|gradual, … }` (docs/governance.md); alone, changes a running rollout',
      properties: { strategy: { type: 'string' } },
    },
  },
} as const;

/** The stored, complete definition. */
const agentSpecSchema = {
  type: 'object',
  additionalProperties: true,
  properties: agentSpecProperties,
} as const;

/** A persisted agent. */
export const agentSchema = {
  $id: 'Agent',
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    project: { type: 'string' },
    name: { type: 'string' },
    activeVersion: { type: 'integer' },
    latestVersion: { type: 'integer' },
    spec: agentSpecSchema,
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
    lastUsedAt: { type: 'integer' },
    expiresAt: nullableInteger,
  },
} as const;

/** One immutable version of an agent. */
export const agentVersionSchema = {
  $id: 'AgentVersion',
  type: 'object',
  additionalProperties: true,
  properties: {
    agentId: { type: 'string' },
    version: { type: 'integer' },
    spec: agentSpecSchema,
    createdAt: { type: 'integer' },
  },
} as const;

/** A conversation. */
export const threadSchema = {
  $id: 'Thread',
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    project: { type: 'string' },
    metadata: jsonObject,
    ttlSeconds: nullableInteger,
    expiresAt: nullableInteger,
    messageCount: { type: 'integer' },
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
  },
} as const;

/** One message of a thread; `content`'s shape depends on the role. */
export const messageSchema = {
  $id: 'Message',
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    threadId: { type: 'string' },
    seq: { type: 'integer' },
    role: { type: 'string', enum: ['system', 'user', 'assistant', 'tool'] },
    content: {},
    runId: nullableString,
    createdAt: { type: 'integer' },
  },
} as const;

/** One execution of an agent. */
export const runSchema = {
  $id: 'Run',
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    project: { type: 'string' },
    agentId: { type: 'string' },
    agentName: { type: 'string' },
    agentVersion: { type: 'integer' },
    threadId: nullableString,
    status: {
      type: 'string',
      enum: ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'],
    },
    input: { type: 'string' },
    output: nullableString,
    model: { type: 'string' },
    steps: { type: 'integer' },
    inputTokens: { type: 'integer' },
    outputTokens: { type: 'integer' },
    cost: { type: 'number' },
    error: {
      type: ['object', 'null'],
      additionalProperties: true,
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
    metadata: jsonObject,
    createdAt: { type: 'integer' },
    startedAt: nullableInteger,
    finishedAt: nullableInteger,
  },
} as const;

const HEALTH_STATUSES = ['ok', 'degraded', 'overloaded'];
const thresholdSchema = {
  type: 'object',
  properties: { degraded: { type: 'number' }, overloaded: { type: 'number' } },
} as const;

/** The health monitor's report (`GET /v1/pool/health`); a project key gets status and check names and statuses only. */
export const poolHealthSchema = {
  $id: 'PoolHealth',
  type: 'object',
  required: ['status', 'checks'],
  properties: {
    status: { type: 'string', enum: HEALTH_STATUSES },
    checkedAt: {
      type: ['integer', 'null'],
      description: 'when the last check ran (epoch ms); null before the first',
    },
    checks: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'status'],
        properties: {
          name: {
            type: 'string',
            description: 'event_loop_delay, event_loop_utilization, heap, rss, cpu, stuck_instances',
          },
          status: { type: 'string', enum: HEALTH_STATUSES },
          value: { type: 'number' },
          unit: { type: 'string', description: 'ms, ratio or count' },
          threshold: thresholdSchema,
          bytes: { type: 'integer' },
          limitBytes: { type: 'integer' },
        },
      },
    },
    totals: {
      type: 'object',
      properties: {
        activationTimeouts: { type: 'integer' },
        runTimeouts: { type: 'integer' },
        stuckInstances: { type: 'integer' },
        pressureEvictions: { type: 'integer' },
        shedRuns: { type: 'integer' },
      },
    },
  },
} as const;

/** Every schema registered with `app.addSchema`, referenced as `{ $ref: '<$id>#' }`. */
export const SHARED_SCHEMAS = [
  errorResponseSchema,
  agentSchema,
  agentVersionSchema,
  threadSchema,
  messageSchema,
  runSchema,
  poolHealthSchema,
] as const;

/** A reference to a shared schema. */
export function ref(id: (typeof SHARED_SCHEMAS)[number]['$id']): { $ref: string } {
  return { $ref: `${id}#` };
}

/** `{ data, nextCursor }` of the given shared schema. */
export function pageOf(id: (typeof SHARED_SCHEMAS)[number]['$id']) {
  return {
    type: 'object',
    properties: { data: { type: 'array', items: ref(id) }, nextCursor: nullableString },
  } as const;
}

/** `limit` and `cursor` of every list route. */
export const pageQueryProperties = {
  limit: { type: 'integer', ...PAGE_LIMIT, description: 'Page size. Default 50.' },
  cursor: { type: 'string', description: 'The `nextCursor` of the previous page.' },
} as const;

/** The querystring schema of a list route. */
/** `?project=` of a read the admin may aim at any project and a project key only at its own. */
export const projectQuery = {
  type: 'string',
  description: 'The admin (or development mode) reads this project; a project key may only name its own.',
} as const;

export const pageQuery = { type: 'object', properties: pageQueryProperties } as const;

/** A list route's query, as validated; absent fields are absent, so it passes straight to the core. */
export interface PageQuery {
  limit?: number;
  cursor?: string;
}

/** Error answers every route may give. */
export const errorResponses = {
  '4xx': ref('ErrorResponse'),
  '5xx': ref('ErrorResponse'),
} as const;

/** The multitask strategies a run may ask for. */
export const multitaskSchema = { type: 'string', enum: [...MULTITASK_STRATEGIES] } as const;
