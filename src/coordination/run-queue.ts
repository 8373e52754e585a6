/**
 * The run queue port: background runs (a run the caller does not wait for) wait here until a node
 * has room to execute them. A node alone starts them at once, without a queue; the BullMQ adapter (redis/run-queue.ts) shares one queue across the
 * cluster, so any node with room takes the next run, and a run held by a node that died is taken
 * again by another.
 *
 * A job carries the run's id and its request; the run record (in the run store) says where the
 * run stands and what a failure means. A handler should therefore be idempotent on the record: a run taken again after
 * its node died (`attempt` > 1) may find steps already committed.
 */
import { validationError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';

/** One background run to execute. */
export interface BackgroundJob {
  runId: string;
  project: string;
  /** What the run was asked (plain JSON): the run layer's to read. */
  request: BackgroundRequest;
}

/** A background run's request as the node that accepted it saw it. */
export interface BackgroundRequest {
  /** The agent's id. */
  agent: string;
  input: unknown;
  threadId: string;
  multitask: string;
  metadata: Record<string, unknown>;
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
  /**
   * The run ids of every job not finished (waiting, active, delayed), cluster-wide: the background
   * runs a dead node's sweep must leave to the queue. Rejects COORDINATION_UNAVAILABLE.
   */
  pendingRunIds(): Promise<string[]>;
  /** Takes no more jobs on this node (a node draining); the handlers running go on and finish theirs. */
  pause(): Promise<void>;
  /**
   * Stops (`true`) or resumes (`false`) taking jobs while the node sheds load, leaving them to the
   * other nodes; the handlers running go on. A queue paused for draining or closed stays so.
   */
  hold(held: boolean): Promise<void>;
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
