/**
 * The options of a cluster node (`createAgentPool({ cluster })`, the config file's `cluster`
 * family), checked in one place with every default applied. Fields are named as the options name
 * them (`cluster.membership.deadAfterMs must be …`).
 */
import { randomBytes } from 'node:crypto';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { intOption, isPlainObject, rejectUnknownKeys } from '../core/options.ts';
import {
  type RedisGovernanceLedgerOptions,
  resolveRedisGovernanceLedgerOptions,
} from './redis/governance-ledger.ts';
import { type RedisMembershipOptions, resolveRedisMembershipOptions } from './redis/membership.ts';
import { type RedisRunEventLogOptions, resolveRedisRunEventLogOptions } from './redis/run-event-log.ts';
import { type BullRunQueueOptions, resolveBullRunQueueOptions } from './redis/run-queue.ts';
import { type RedisThreadLeasesOptions, resolveRedisThreadLeasesOptions } from './redis/thread-leases.ts';

/** Tuning of a node of a cluster (`createAgentPool({ cluster })`); every field has a default. */
export interface ClusterOptions {
  /** This node's id, as `GET /v1/cluster` and the runs it writes name it. @default node_ and 12 hex digits */
  nodeId?: string;
  /** The URL the node is reached at, listed by `GET /v1/cluster`. @default null */
  address?: string | null;
  /** How long a Redis command may take before it fails with 503 COORDINATION_UNAVAILABLE (ms). @default 2000 */
  redisCommandTimeoutMs?: number;
  /** Background runs this node executes at once (the rest wait in the queue for any node). @default 8 */
  backgroundConcurrency?: number;
  /** How often the node reads the store's change feed when nothing told it of a change (ms). @default 1000 */
  changePollMs?: number;
  /** Quotas and budgets in Redis: how long a dead node's holds outlive it. */
  ledger?: RedisGovernanceLedgerOptions;
  /** Thread leases: their ttl, renewal and how often waiters look. */
  threadLeases?: RedisThreadLeasesOptions;
  /** Run events kept in Redis for streams that resume on another node: how many, how long. */
  eventLog?: RedisRunEventLogOptions;
  /** Heartbeats, and when a silent node is taken for dead. */
  membership?: RedisMembershipOptions;
  /** The background-run queue (BullMQ): lock and stall detection. */
  queue?: BullRunQueueOptions;
}

/** {@link ClusterOptions} checked, with every default applied. */
export interface ResolvedClusterOptions {
  readonly nodeId: string;
  readonly address: string | null;
  readonly redisCommandTimeoutMs: number;
  readonly backgroundConcurrency: number;
  readonly changePollMs: number;
  readonly ledger: ReturnType<typeof resolveRedisGovernanceLedgerOptions>;
  readonly threadLeases: ReturnType<typeof resolveRedisThreadLeasesOptions>;
  readonly eventLog: ReturnType<typeof resolveRedisRunEventLogOptions>;
  readonly membership: ReturnType<typeof resolveRedisMembershipOptions>;
  readonly queue: ReturnType<typeof resolveBullRunQueueOptions>;
}

const FIELDS = [
  'nodeId',
  'address',
  'redisCommandTimeoutMs',
  'backgroundConcurrency',
  'changePollMs',
  'ledger',
  'threadLeases',
  'eventLog',
  'membership',
  'queue',
] as const;

const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Checks `cluster`; `VALIDATION_FAILED` naming the field (`cluster.threadLeases.leaseTtlMs`). */
export function resolveClusterOptions(options: ClusterOptions = {}): ResolvedClusterOptions {
  if (!isPlainObject(options as unknown)) throw validationError('cluster', 'must be an object of options');
  rejectUnknownKeys('cluster.', options, FIELDS);
  const nodeId = options.nodeId ?? `node_${randomBytes(6).toString('hex')}`;
  if (typeof nodeId !== 'string' || !NODE_ID.test(nodeId)) {
    throw validationError('cluster.nodeId', 'must be 1 to 64 letters, digits, - and _', {
      value: String(nodeId),
    });
  }
  const address = options.address ?? null;
  if (address !== null && typeof address !== 'string') {
    throw validationError('cluster.address', 'must be a URL string');
  }
  return {
    nodeId,
    address,
    redisCommandTimeoutMs: intOption(
      'cluster.redisCommandTimeoutMs',
      options.redisCommandTimeoutMs,
      2000,
      50,
      60_000,
    ),
    backgroundConcurrency: intOption(
      'cluster.backgroundConcurrency',
      options.backgroundConcurrency,
      8,
      1,
      1000,
    ),
    changePollMs: intOption('cluster.changePollMs', options.changePollMs, 1000, 50, 60_000),
    ledger: nested(() => resolveRedisGovernanceLedgerOptions(options.ledger)),
    threadLeases: nested(() => resolveRedisThreadLeasesOptions(options.threadLeases)),
    eventLog: nested(() => resolveRedisRunEventLogOptions(options.eventLog)),
    membership: nested(() => resolveRedisMembershipOptions(options.membership)),
    queue: nested(() => resolveBullRunQueueOptions(options.queue)),
  };
}

/** Runs a part's resolver, naming its fields under `cluster.` (they name themselves `ledger.…`). */
function nested<T>(resolve: () => T): T {
  try {
    return resolve();
  } catch (err) {
    if (!isAgentPoolError(err, 'VALIDATION_FAILED') || typeof err.details.field !== 'string') throw err;
    const field = `cluster.${err.details.field}`;
    throw new AgentPoolError('VALIDATION_FAILED', `cluster.${err.message}`, { ...err.details, field });
  }
}
