/**
 * The run queue of a cluster on BullMQ: one queue named `runs` under the cluster's prefix (BullMQ's
 * own `prefix` is `${prefix}bull`, so two clusters sharing a Redis never mix), one job per
 * background run with the run's id as the job id (adding it twice is one job while BullMQ keeps
 * it: waiting, active, or among the finished jobs kept for an hour).
 *
 * Every node's worker takes at most `concurrency` jobs at once and holds each under a lock it
 * renews every `lockDurationMs / 2`. A node that dies stops renewing; within `lockDurationMs` the
 * lock expires, and the next stalled check of any live worker (every `stalledIntervalMs`) puts
 * the job back on the queue, where a node with room takes it with `attempt` one higher. With the
 * defaults that is well within 20 s of the death (at most lockDurationMs + 2 × stalledIntervalMs).
 * A job stalled more than `maxStalledCount` times is failed by BullMQ (and logged); BullMQ itself
 * never retries a handler that threw (`attempts: 1`): the run record decides what a failure means.
 *
 * Connections: `add` and `counts` use the node's command connection (fail fast, so a caller gets
 * 503 COORDINATION_UNAVAILABLE at once while Redis is away); the worker makes its own two from the
 * same URL with `maxRetriesPerRequest: null` (BullMQ requires it for its blocking reads), which wait
 * for Redis and resume by themselves when it returns.
 */
import type { Redis } from 'ioredis';
import { Queue, Worker, type Job } from 'bullmq';
import { AgentPoolError } from '../../core/errors.ts';
import { type Logger, silentLogger } from '../../core/logger.ts';
import { intOption, rejectUnknownKeys } from '../../core/options.ts';
import { type BackgroundJob, checkBackgroundJob, checkConcurrency, type RunQueue } from '../run-queue.ts';
import type { ResolvedRedisConnection } from './connection.ts';
import { redisFailure } from './lua-script.ts';

/** The BullMQ queue name (BullMQ's prefix carries the cluster's). */
export const RUN_QUEUE_NAME = 'runs';
/** Finished jobs kept (for de-duplication and inspection), by age and count. */
const KEEP = { age: 3600, count: 1000 } as const;

/** Options of the BullMQ run queue. */
export interface BullRunQueueOptions {
  /**
   * How long a worker's hold on a job outlives its last renewal (renewed every half of it): a dead
   * node's job is taken again about this long after it died. Longer than any pause a live node may
   * take (a pause longer than this lets a second node start the same run).
   * @default 10000
   */
  lockDurationMs?: number;
  /** How often each worker looks for jobs whose lock expired. @default 5000 */
  stalledIntervalMs?: number;
  /** How many times a job may be taken again after its node died before BullMQ fails it. @default 5 */
  maxStalledCount?: number;
}

/** {@link BullRunQueueOptions} with every default applied. */
export interface ResolvedBullRunQueueOptions {
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
}

/** Applies defaults and rejects bad values by field name (`queue.lockDurationMs must be …`). */
export function resolveBullRunQueueOptions(options: BullRunQueueOptions = {}): ResolvedBullRunQueueOptions {
  rejectUnknownKeys('queue.', options, ['lockDurationMs', 'stalledIntervalMs', 'maxStalledCount']);
  return {
    lockDurationMs: intOption('queue.lockDurationMs', options.lockDurationMs, 10_000, 1000, 600_000),
    stalledIntervalMs: intOption('queue.stalledIntervalMs', options.stalledIntervalMs, 5000, 100, 600_000),
    maxStalledCount: intOption('queue.maxStalledCount', options.maxStalledCount, 5, 1, 1000),
  };
}

/** What the queue talks to. */
export interface BullRunQueueDeps {
  /** The node's command connection (connection.ts), for adding and counting; not closed here. */
  redis: Redis;
  /** Where the worker opens its own connections, and the cluster's key prefix. */
  connection: ResolvedRedisConnection;
  /** Names this node's worker in BullMQ (shown on the jobs it takes). */
  nodeId?: string;
  /** @default silent */
  logger?: Logger;
}

/** Background runs shared by every node on one Redis (and prefix), on BullMQ. */
export class BullRunQueue implements RunQueue {
  readonly options: ResolvedBullRunQueueOptions;
  readonly #deps: BullRunQueueDeps;
  readonly #log: Logger;
  readonly #prefix: string;
  readonly #queue: Queue<BackgroundJob>;
  #worker: Worker<BackgroundJob> | undefined;
  #closed = false;
  /** Paused for good (the node drains): {@link hold} no longer resumes it. */
  #paused = false;

  constructor(deps: BullRunQueueDeps, options?: BullRunQueueOptions) {
    this.options = resolveBullRunQueueOptions(options);
    this.#deps = deps;
    this.#log = (deps.logger ?? silentLogger()).child({ component: 'run-queue' });
    this.#prefix = `${deps.connection.prefix}bull`;
    this.#queue = new Queue<BackgroundJob>(RUN_QUEUE_NAME, {
      connection: deps.redis,
      prefix: this.#prefix,
      defaultJobOptions: { attempts: 1, removeOnComplete: KEEP, removeOnFail: KEEP },
    });
    this.#queue.on('error', (err) => this.#log.debug({ err }, 'run queue connection error'));
  }

  async add(job: BackgroundJob): Promise<void> {
    checkBackgroundJob(job);
    if (this.#closed) throw new AgentPoolError('SHUTTING_DOWN', 'the run queue is closed');
    try {
      await this.#queue.add('run', job, { jobId: job.runId });
    } catch (err) {
      throw redisFailure(err, 'adding a background run');
    }
  }

  start(handler: (job: BackgroundJob, attempt: number) => Promise<void>, concurrency: number): void {
    if (this.#worker !== undefined)
      throw new AgentPoolError('INTERNAL_ERROR', 'the run queue was already started');
    if (this.#closed) throw new AgentPoolError('SHUTTING_DOWN', 'the run queue is closed');
    const { connection, nodeId } = this.#deps;
    // The worker waits for Redis instead of failing fast: BullMQ retries its reads itself.
    const {
      commandTimeout: _commandTimeout,
      lazyConnect: _lazyConnect,
      enableOfflineQueue: _enableOfflineQueue,
      enableAutoPipelining: _enableAutoPipelining,
      ...ioredis
    } = connection.ioredis;
    const { lockDurationMs, stalledIntervalMs, maxStalledCount } = this.options;
    const worker = new Worker<BackgroundJob>(
      RUN_QUEUE_NAME,
      async (job: Job<BackgroundJob>) => {
        const { runId, project } = job.data;
        // attemptsStarted counts every time the job was made active, this one included.
        const attempt = Math.max(1, job.attemptsStarted);
        if (attempt > 1)
          this.#log.warn({ runId, project, attempt }, 'a background run is taken again: its node died');
        try {
          await handler(job.data, attempt);
        } catch (err) {
          this.#log.error({ err, runId, project }, 'a background run handler failed');
          throw err;
        }
      },
      {
        connection: { ...ioredis, url: connection.url, maxRetriesPerRequest: null },
        prefix: this.#prefix,
        concurrency: checkConcurrency(concurrency),
        lockDuration: lockDurationMs,
        stalledInterval: stalledIntervalMs,
        maxStalledCount,
        removeOnComplete: KEEP,
        removeOnFail: KEEP,
        ...(nodeId === undefined ? {} : { name: nodeId }),
      },
    );
    worker.on('error', (err) => {
      // After a hand-over, the handlers still running find the connection closed as they end.
      if (this.#closed) this.#log.debug({ err }, 'run queue worker error after close');
      else this.#log.warn({ err }, 'run queue worker error (Redis away?): it retries by itself');
    });
    worker.on('failed', (job, err) => {
      if (job !== undefined && /stalled/i.test(err.message)) {
        this.#log.error(
          { runId: job.data.runId, project: job.data.project, maxStalledCount },
          'a background run was given up: its nodes died more than maxStalledCount times while running it',
        );
      }
    });
    this.#worker = worker;
  }

  async pause(): Promise<void> {
    this.#paused = true;
    // Without waiting for the jobs running: they finish, and are recorded, as usual.
    await this.#worker?.pause(true);
  }

  async hold(held: boolean): Promise<void> {
    // Draining wins: an overload ending during a drain must not start taking jobs again.
    if (this.#paused || this.#closed || this.#worker === undefined) return;
    if (held) await this.#worker.pause(true);
    else this.#worker.resume();
  }

  async pendingRunIds(): Promise<string[]> {
    try {
      const jobs = await this.#queue.getJobs(['active', 'waiting', 'delayed', 'prioritized', 'paused']);
      return jobs.flatMap((job) => (job?.id === undefined ? [] : [job.id]));
    } catch (err) {
      throw redisFailure(err, 'listing background runs');
    }
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    try {
      const counts = await this.#queue.getJobCounts('waiting', 'active');
      return { waiting: counts['waiting'] ?? 0, active: counts['active'] ?? 0 };
    } catch (err) {
      throw redisFailure(err, 'counting background runs');
    }
  }

  async close(handOver: boolean): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#worker?.close(handOver);
    } finally {
      await this.#queue.close();
    }
  }
}
