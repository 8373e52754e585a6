/**
 * The run queue port: background runs (a run the caller does not wait for) wait here until a node
 * has room to execute them. The local adapter here runs them in this process, FIFO, at most
 * `concurrency` at once; the BullMQ adapter (redis/run-queue.ts) shares one queue across the
 * cluster, so any node with room takes the next run, and a run held by a node that died is taken
 * again by another.
 *
 * The queue only carries the run's id: the run record (in the run store) says what to run and what
 * a failure means. A handler should therefore be idempotent on the record: a run taken again after
 * its node died (`attempt` > 1) may find steps already committed.
 */
import { AgentPoolError, validationError } from '../core/errors.ts';
import { type Logger, silentLogger } from '../core/logger.ts';
import { intOption, rejectUnknownKeys } from '../core/options.ts';

/** One background run to execute. */
export interface BackgroundJob {
  runId: string;
  project: string;
}

/** Background runs waiting for a node with room. */
export interface RunQueue {
  /** Puts a background run on the queue; resolves once it is held (jobId = runId, so adding one
   *  twice is one job). Rejects COORDINATION_UNAVAILABLE when Redis cannot be reached. */
  add(job: BackgroundJob): Promise<void>;
  /** Starts taking jobs on this node, at most `concurrency` at once; `handler` resolves when the
   *  run has ended. `attempt` is 1 the first time, more when the job is taken again after the
   *  node that held it died (stalled). */
  start(handler: (job: BackgroundJob, attempt: number) => Promise<void>, concurrency: number): void;
  /** Jobs waiting and active, cluster-wide. */
  counts(): Promise<{ waiting: number; active: number }>;
  /** Stops taking jobs. `handOver: true` (a node going away) stops without waiting for running
   *  handlers' jobs to complete in Redis, so another node takes them after the lock expires;
   *  false waits for running handlers. */
  close(handOver: boolean): Promise<void>;
}

/** Checks a job before it is queued: `VALIDATION_FAILED` naming `runId` or `project`. */
export function checkBackgroundJob(job: BackgroundJob): void {
  // BullMQ refuses ids that look like integers or hold a ':' (its key separator).
  if (typeof job.runId !== 'string' || !/^(?!\d+$)[^:\s]{1,200}$/.test(job.runId)) {
    throw validationError('runId', 'must be 1 to 200 characters, not all digits, with no ":" or space', {
      value: String(job.runId),
    });
  }
  if (typeof job.project !== 'string' || job.project === '') {
    throw validationError('project', 'must be a non-empty string');
  }
}

/** The `concurrency` of {@link RunQueue.start}, checked. */
export function checkConcurrency(concurrency: number): number {
  return intOption('concurrency', concurrency, 1, 1, 10_000);
}

/** Options of the local run queue. */
export interface LocalRunQueueOptions {
  /** Jobs waiting at most; beyond, `add` rejects `POOL_SATURATED`. @default 10000 */
  maxWaiting?: number;
  /** Ids of finished jobs remembered, so adding one again is still one job. @default 1000 */
  rememberFinished?: number;
}

/** {@link LocalRunQueueOptions} with every default applied. */
export interface ResolvedLocalRunQueueOptions {
  readonly maxWaiting: number;
  readonly rememberFinished: number;
}

/** Applies defaults and rejects bad values by field name (`queue.maxWaiting must be …`). */
export function resolveLocalRunQueueOptions(
  options: LocalRunQueueOptions = {},
): ResolvedLocalRunQueueOptions {
  rejectUnknownKeys('queue.', options, ['maxWaiting', 'rememberFinished']);
  return {
    maxWaiting: intOption('queue.maxWaiting', options.maxWaiting, 10_000),
    rememberFinished: intOption('queue.rememberFinished', options.rememberFinished, 1000, 0, 1_000_000),
  };
}

/**
 * Background runs executed in this process, first in first out. Jobs live in memory: the ones
 * still waiting when the process stops are lost (their run records are ended at the next start,
 * like every run in flight at a crash). `close(handOver)` does not wait in either case when
 * `handOver` is true: there is no other node to hand over to, so the handlers' runs end as the
 * process does.
 */
export class LocalRunQueue implements RunQueue {
  readonly options: ResolvedLocalRunQueueOptions;
  readonly #log: Logger;
  /** Waiting jobs, oldest first; `#head` is the index of the next one (compacted as it grows). */
  #waiting: BackgroundJob[] = [];
  #head = 0;
  /** Ids of jobs waiting or running. */
  readonly #held = new Set<string>();
  /** Ids of finished jobs, oldest first, at most `rememberFinished`. */
  readonly #finished = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  #handler: ((job: BackgroundJob, attempt: number) => Promise<void>) | undefined;
  #concurrency = 0;
  #closed = false;

  constructor(options?: LocalRunQueueOptions, logger?: Logger) {
    this.options = resolveLocalRunQueueOptions(options);
    this.#log = (logger ?? silentLogger()).child({ component: 'run-queue' });
  }

  add(job: BackgroundJob): Promise<void> {
    try {
      checkBackgroundJob(job);
      if (this.#closed) throw new AgentPoolError('SHUTTING_DOWN', 'the run queue is closed');
      if (this.#held.has(job.runId) || this.#finished.has(job.runId)) return Promise.resolve();
      const waiting = this.#waiting.length - this.#head;
      if (waiting >= this.options.maxWaiting) {
        throw new AgentPoolError('POOL_SATURATED', 'too many background runs are waiting: retry later', {
          waiting,
          maxWaiting: this.options.maxWaiting,
          retryAfterSeconds: 1,
        });
      }
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.#waiting.push({ runId: job.runId, project: job.project });
    this.#held.add(job.runId);
    this.#pump();
    return Promise.resolve();
  }

  start(handler: (job: BackgroundJob, attempt: number) => Promise<void>, concurrency: number): void {
    if (this.#handler !== undefined)
      throw new AgentPoolError('INTERNAL_ERROR', 'the run queue was already started');
    this.#concurrency = checkConcurrency(concurrency);
    this.#handler = handler;
    this.#pump();
  }

  counts(): Promise<{ waiting: number; active: number }> {
    return Promise.resolve({ waiting: this.#waiting.length - this.#head, active: this.#running.size });
  }

  async close(handOver: boolean): Promise<void> {
    this.#closed = true;
    for (let i = this.#head; i < this.#waiting.length; i++) this.#held.delete(this.#waiting[i]!.runId);
    this.#waiting = [];
    this.#head = 0;
    if (!handOver) await Promise.all(this.#running);
  }

  #pump(): void {
    const handler = this.#handler;
    if (handler === undefined) return;
    while (!this.#closed && this.#running.size < this.#concurrency && this.#head < this.#waiting.length) {
      const job = this.#waiting[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#head);
        this.#head = 0;
      }
      const running: Promise<void> = this.#run(handler, job).finally(() => {
        this.#running.delete(running);
        this.#held.delete(job.runId);
        this.#remember(job.runId);
        this.#pump();
      });
      this.#running.add(running);
    }
  }

  async #run(
    handler: (job: BackgroundJob, attempt: number) => Promise<void>,
    job: BackgroundJob,
  ): Promise<void> {
    try {
      // A turn of the event loop first: add() returns before the handler starts.
      await Promise.resolve();
      await handler(job, 1);
    } catch (err) {
      this.#log.error({ err, runId: job.runId, project: job.project }, 'a background run handler failed');
    }
  }

  #remember(runId: string): void {
    if (this.options.rememberFinished === 0) return;
    this.#finished.add(runId);
    if (this.#finished.size > this.options.rememberFinished) {
      const oldest = this.#finished.values().next();
      if (oldest.done !== true) this.#finished.delete(oldest.value);
    }
  }
}
