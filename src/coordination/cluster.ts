/**
 * What a node shares with the other nodes of its cluster, opened in one place. A node runs in one
 * of three modes, which it says at start:
 * - `single` on SQLite or memory: one process, everything in it;
 * - `single` on PostgreSQL without Redis: one node on a shared database (valid, but a second node
 *   would double every limit: more than one node needs Redis);
 * - `cluster`: PostgreSQL and Redis. Quotas, budgets and provider rate limits are counted in Redis
 *   (Lua), threads are held through leases with fencing tokens, run events are kept in Redis so a
 *   stream resumes on any node, background runs go through a BullMQ queue any node takes from,
 *   nodes heartbeat, and the runs of a node that died are swept by another.
 *
 * The node opens two Redis connections (commands; pub/sub shared by the thread leases, the event
 * log and the event bus), BullMQ two of its own.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../core/clock.ts';
import { validationError } from '../core/errors.ts';
import { type ClusterOptions, resolveClusterOptions } from './cluster-options.ts';
import type { Logger } from '../core/logger.ts';
import {
  connectRedis,
  coordinationUnavailable,
  redactRedisUrl,
  resolveRedisConnection,
} from './redis/connection.ts';
import type { GovernanceLedger } from './governance-ledger.ts';
import type { RateLimiter } from './rate-limiter.ts';
import { RedisGovernanceLedger } from './redis/governance-ledger.ts';
import { RedisRateLimiter } from './redis/rate-limiter.ts';
import { LocalThreadLeases, type ThreadLeases } from './thread-leases.ts';
import { ThreadGate } from './thread-gate.ts';
import { RedisThreadLeases } from './redis/thread-leases.ts';
import type { LoggedRunEvent, RunEventLog } from './run-event-log.ts';
import { RedisRunEventLog } from './redis/run-event-log.ts';
import { LocalMembership, type Membership, type NodeInfo } from './membership.ts';
import { RedisMembership } from './redis/membership.ts';
import type { RunQueue } from './run-queue.ts';
import { BullRunQueue } from './redis/run-queue.ts';
import { RedisEventBus } from './redis/event-bus.ts';
import { LocalEventBus, type BusEvent } from '../events/bus.ts';
import { type DutyLock, LocalDutyLock } from './duty-lock.ts';
import { RedisDutyLock } from './redis/duty-lock.ts';

/** The mode a node runs in. */
export type NodeMode = 'single' | 'cluster';

/** What a node shares with its cluster (or keeps to itself when it runs alone). */
export interface Coordination<E extends LoggedRunEvent = LoggedRunEvent> {
  readonly mode: NodeMode;
  readonly nodeId: string;
  /** The Redis URL with its password hidden, when there is one. */
  readonly redis: string | null;
  readonly ledger: GovernanceLedger | undefined;
  readonly rateLimiter: RateLimiter | undefined;
  readonly threadLeases: ThreadLeases;
  /** Run events in Redis; undefined on a single node (its memory holds them). */
  readonly eventLog: RunEventLog<E> | undefined;
  readonly membership: Membership;
  /** The queue of background runs; undefined on a single node (it starts them at once). */
  readonly queue: RunQueue | undefined;
  readonly backgroundConcurrency: number;
  readonly changePollMs: number;
  /**
   * Relays events between the nodes: what `publish` is given reaches the `onEvent` listeners of
   * every node; `onResubscribed` fires after a reconnect, when messages may have been lost.
   * Undefined on a single node.
   */
  readonly relay: EventRelay | undefined;
  /** Who does a cluster-wide duty now (retention's sweep): Redis in a cluster, always this node alone. */
  readonly duties: DutyLock;
  /** Resolves when Redis answers (at once on a single node); COORDINATION_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  /** Stops timers and subscriptions and closes the connections it opened. */
  close(): Promise<void>;
}

/** Whether one dependency of the node answers. */
export interface DependencyState {
  /** `postgres`, `sqlite`, `memory`, `store` (adapters given in code) or `redis`. */
  readonly name: string;
  readonly ok: boolean;
  /** Why it does not answer. */
  readonly error?: string;
}

/** This node and its cluster, as `pool.cluster` shows them. */
export interface ClusterView {
  readonly mode: NodeMode;
  readonly nodeId: string;
  /** The Redis URL with its password hidden; null on a single node. */
  readonly redis: string | null;
  /** The nodes whose heartbeat is current (this one alone on a single node). */
  nodes(): Promise<NodeInfo[]>;
  /** Each dependency (the store; Redis in a cluster) and whether it answers now. */
  dependencies(): Promise<DependencyState[]>;
  /** Background runs waiting in the cluster's queue and running, cluster-wide; null on a single node. */
  background(): Promise<{ waiting: number; active: number } | null>;
  /**
   * Takes no more background runs from the cluster's queue (a node draining before it stops): the
   * other nodes take them; those running here go on. Nothing to do on a single node.
   */
  drainQueue(): Promise<void>;
}

/** A cluster-wide channel of small events between nodes. */
export interface EventRelay {
  publish(event: BusEvent): void;
  /** Every event published by any node, this one's included; returns the unsubscribe function. */
  onEvent(listener: (event: BusEvent) => void): () => void;
  onResubscribed(listener: () => void): () => void;
}

export type { ClusterOptions } from './cluster-options.ts';

/** What {@link openCoordination} needs. */
export interface CoordinationInput {
  redisUrl: string | undefined;
  redisPrefix: string | undefined;
  cluster: ClusterOptions | undefined;
  /** Runs waiting on one thread at most (`runs.maxQueuePerThread`). */
  maxQueuePerThread: number;
  clock: Clock;
  logger: Logger;
}

/**
 * Opens what the node shares: with `redisUrl`, the Redis adapters of a cluster (refusing to start
 * with COORDINATION_UNAVAILABLE when Redis cannot be reached); without, the in-process ones.
 */
export async function openCoordination<E extends LoggedRunEvent>(
  input: CoordinationInput,
): Promise<Coordination<E>> {
  const options = resolveClusterOptions(input.cluster);
  const { nodeId, backgroundConcurrency, changePollMs } = options;
  const logger = input.logger.child({ component: 'cluster', node: nodeId });
  if (input.redisUrl === undefined) {
    if (input.redisPrefix !== undefined) throw validationError('redisPrefix', 'is only used with redisUrl');
    const threadLeases = new LocalThreadLeases(new ThreadGate(input.maxQueuePerThread));
    return {
      mode: 'single',
      nodeId,
      redis: null,
      ledger: undefined,
      rateLimiter: undefined,
      threadLeases,
      eventLog: undefined,
      membership: new LocalMembership(nodeId, input.clock),
      queue: undefined,
      backgroundConcurrency,
      changePollMs,
      relay: undefined,
      duties: new LocalDutyLock(),
      ping: () => Promise.resolve(),
      close: () => threadLeases.close(),
    };
  }
  const conn = resolveRedisConnection({
    url: input.redisUrl,
    ...(input.redisPrefix !== undefined && { prefix: input.redisPrefix }),
    commandTimeoutMs: options.redisCommandTimeoutMs,
  });
  const { prefix } = conn;
  const opened: { close: () => Promise<unknown> | void }[] = [];
  let redis: Redis | undefined;
  let subscriber: Redis | undefined;
  try {
    redis = await connectRedis(conn, `agentpool:${nodeId}`);
    subscriber = await connectRedis(conn, `agentpool:${nodeId}:sub`);
    const deps = { redis, prefix, clock: input.clock, logger };
    const ledger = new RedisGovernanceLedger(deps, input.cluster?.ledger);
    opened.push(ledger);
    const rateLimiter = new RedisRateLimiter(deps);
    opened.push(rateLimiter);
    const threadLeases = new RedisThreadLeases(
      { ...deps, subscriber, nodeId },
      { maxQueue: input.maxQueuePerThread, ...input.cluster?.threadLeases },
    );
    opened.push(threadLeases);
    const eventLog = new RedisRunEventLog<E>({ redis, subscriber, prefix, logger }, input.cluster?.eventLog);
    opened.push(eventLog);
    const membership = new RedisMembership({ ...deps, nodeId }, input.cluster?.membership);
    opened.push({ close: () => membership.leave() });
    const queue = new BullRunQueue({ redis, connection: conn, nodeId, logger }, input.cluster?.queue);
    opened.push({ close: () => queue.close(true) });
    const relayed = new LocalEventBus<BusEvent>();
    const bus = new RedisEventBus<BusEvent>({
      redis,
      subscriber,
      prefix,
      nodeId,
      relay: () => true,
      local: relayed,
      logger,
    });
    opened.push(bus);
    // A node hears the others from the moment it serves: events and notices sent before a
    // subscription is answered would be lost to it.
    await Promise.all([eventLog.ready(), bus.ready()]);
    const sub = subscriber;
    const cmd = redis;
    return {
      mode: 'cluster',
      nodeId,
      redis: redactRedisUrl(conn.url),
      ledger,
      rateLimiter,
      threadLeases,
      eventLog,
      membership,
      queue,
      backgroundConcurrency,
      changePollMs,
      relay: {
        publish: (event) => bus.emit(event),
        onEvent: (listener) => relayed.on('*', listener),
        onResubscribed: (listener) => bus.onResubscribed(listener),
      },
      duties: new RedisDutyLock({ redis, prefix, nodeId }),
      async ping() {
        try {
          await cmd.ping();
        } catch (err) {
          throw coordinationUnavailable(err);
        }
      },
      async close() {
        try {
          await closeAll(opened);
        } finally {
          sub.disconnect();
          cmd.disconnect();
        }
      },
    };
  } catch (err) {
    await closeAll(opened).catch(() => undefined);
    subscriber?.disconnect();
    redis?.disconnect();
    throw err;
  }
}

/** Closes each, in reverse order, even when one fails; the first failure is rethrown. */
async function closeAll(opened: readonly { close: () => Promise<unknown> | void }[]): Promise<void> {
  let failure: unknown;
  for (const item of [...opened].reverse()) {
    try {
      await item.close();
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}
