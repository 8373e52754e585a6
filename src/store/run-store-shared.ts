/**
 * Checks and cursors every RunStore adapter shares, so the adapters agree on what they refuse
 * and on cursor formats (the conformance suite checks both).
 */
import { AgentPoolError, validationError } from '../core/errors.ts';
import { INPUT_LIMITS } from '../core/input-limits.ts';
import { numberOption } from '../core/options.ts';
import { decodeCursor } from './paging.ts';
import type { InterruptOptions, NewMessage, NewThread, RunRecord, RunStatus, VersionStats } from './ports.ts';

/** The `seq` a message-listing cursor continues after (0 without a cursor). */
export function seqCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const after = Number(decodeCursor('seq', cursor));
  if (!Number.isSafeInteger(after) || after < 0)
    throw validationError('cursor', 'is not a cursor of this listing');
  return after;
}

/** The `[createdAt, id]` a run-listing cursor continues before. */
export function runCursor(cursor: string): [number, string] {
  const text = decodeCursor('run', cursor);
  const colon = text.indexOf(':');
  const createdAt = Number(text.slice(0, colon));
  if (colon < 1 || !Number.isFinite(createdAt))
    throw validationError('cursor', 'is not a cursor of this listing');
  return [createdAt, text.slice(colon + 1)];
}

/** A stateless run takes no messages. */
export function checkRun(run: RunRecord, messages: readonly NewMessage[], thread?: NewThread): void {
  if (run.threadId === null && messages.length > 0) {
    throw validationError('messages', 'must be empty for a run without a thread', { runId: run.id });
  }
  if (thread !== undefined && (thread.id !== run.threadId || thread.project !== run.project)) {
    throw validationError('thread', "must be the run's own thread, in its project", { runId: run.id });
  }
}

/** The interrupted outcome recovery writes on runs a stopped process left unfinished. */
export const INTERRUPTED = {
  code: 'RUN_INTERRUPTED',
  message: 'the process stopped while the run was in flight',
} as const;

/** What `interruptUnfinished` writes: the process's outcome, or one naming the dead node. */
export function interruptedOutcome(node: string | undefined): { code: string; message: string } {
  if (node === undefined) return { ...INTERRUPTED };
  return { code: INTERRUPTED.code, message: `node "${node}" stopped while the run was in flight` };
}

/** Checks `interruptUnfinished`'s options; returns the node, or undefined for every node. */
export function interruptNode(options: InterruptOptions | undefined): string | undefined {
  const node = options?.node;
  if (node === undefined) return undefined;
  if (typeof node !== 'string' || node === '' || node.length > INPUT_LIMITS.idLength) {
    throw validationError('node', `must be a node id (1 to ${INPUT_LIMITS.idLength} characters)`);
  }
  return node;
}

/** Checks a store's `nodeId` option; returns it, or null when absent. */
export function nodeIdOption(nodeId: unknown): string | null {
  if (nodeId === undefined || nodeId === null) return null;
  if (typeof nodeId !== 'string' || nodeId === '' || nodeId.length > INPUT_LIMITS.idLength) {
    throw validationError('nodeId', `must be a string of 1 to ${INPUT_LIMITS.idLength} characters`);
  }
  return nodeId;
}

/**
 * The fencing token of a thread run's write: undefined (no check) when absent or when the run has
 * no thread; else it must be a non-negative safe integer.
 */
export function fenceOf(run: RunRecord, fence: number | undefined): number | undefined {
  if (fence === undefined) return undefined;
  if (typeof fence !== 'number' || !Number.isSafeInteger(fence) || fence < 0) {
    throw validationError('fence', `must be a non-negative integer (a lease token), got ${String(fence)}`);
  }
  return run.threadId === null ? undefined : fence;
}

/** A write whose fencing token is older than the thread's: another run holds the thread now. */
export function leaseLost(threadId: string, fence: number, current: number): AgentPoolError {
  return new AgentPoolError(
    'LEASE_LOST',
    `thread "${threadId}" is held by a newer lease (fence ${current}) than this write's (${fence}); nothing was written`,
    { threadId, fence, currentFence: current },
  );
}

/** The most recent runs `RunStore.versionStats` reads: a bound on its cost, not a time window. */
export const VERSION_STATS_MAX_RUNS = 10_000;

/** The statuses `versionStats` counts. */
export const TERMINAL_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled', 'interrupted'];

/** What `versionStats` reads of one terminal run. */
export interface RunOutcome {
  readonly version: number;
  readonly status: RunStatus;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

/** The `q` quantile of ascending `sorted` by nearest rank, or null when empty. */
function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

/** Checks the `since` of a statistics query: a finite epoch-ms time. */
export function sinceOption(since: number): number {
  if (typeof since !== 'number' || !Number.isFinite(since)) {
    throw validationError('since', `must be a time in epoch milliseconds, got ${String(since)}`);
  }
  return since;
}

/** Summarises terminal runs per version, ordered by version; both adapters share it so they agree. */
export function summariseVersions(outcomes: Iterable<RunOutcome>): VersionStats[] {
  const byVersion = new Map<number, { succeeded: number; failed: number; cancelled: number; ms: number[] }>();
  for (const o of outcomes) {
    let v = byVersion.get(o.version);
    if (v === undefined) {
      v = { succeeded: 0, failed: 0, cancelled: 0, ms: [] };
      byVersion.set(o.version, v);
    }
    if (o.status === 'succeeded') v.succeeded++;
    else if (o.status === 'cancelled') v.cancelled++;
    else v.failed++;
    if (o.startedAt !== null && o.finishedAt !== null) v.ms.push(Math.max(0, o.finishedAt - o.startedAt));
  }
  return [...byVersion]
    .sort(([a], [b]) => a - b)
    .map(([version, v]) => {
      v.ms.sort((a, b) => a - b);
      const judged = v.succeeded + v.failed;
      return {
        version,
        runs: v.succeeded + v.failed + v.cancelled,
        succeeded: v.succeeded,
        failed: v.failed,
        cancelled: v.cancelled,
        successRate: judged === 0 ? null : v.succeeded / judged,
        p50Ms: quantile(v.ms, 0.5),
        p99Ms: quantile(v.ms, 0.99),
      };
    });
}

/** A thread that does not exist (or was deleted). */
export function threadNotFound(id: string): AgentPoolError {
  return new AgentPoolError('THREAD_NOT_FOUND', `thread "${id}" not found`, { id });
}

/** The catalogue has no *_EXISTS code for threads and runs: ids are generated, so a clash is a caller bug. */
export function idExists(kind: 'thread' | 'run', id: string): AgentPoolError {
  return validationError('id', `"${id}" is already taken by another ${kind}`, { id, kind });
}

/** commitStep of a run the store does not have. */
export function runNotFound(id: string): AgentPoolError {
  return new AgentPoolError('RUN_NOT_FOUND', `run "${id}" not found`, { id });
}

/** commitStep naming another thread than the stored run. */
export function threadChanged(id: string): AgentPoolError {
  return validationError('run.threadId', 'differs from the stored run; a run never changes thread', { id });
}

/** A new thread's row as the SQL stores write it (serialised now, so a caller changing its objects later changes nothing). */
export function newThreadRow(thread: NewThread) {
  const ttl = thread.ttlSeconds === null ? null : numberOption('ttlSeconds', thread.ttlSeconds, 0, 0, 1e12);
  return {
    id: thread.id,
    project: thread.project,
    metadata: JSON.stringify(thread.metadata),
    ttl_seconds: ttl,
    expires_at: ttl === null ? null : thread.now + ttl * 1000,
    message_count: 0,
    created_at: thread.now,
    updated_at: thread.now,
  };
}

/** The most threads one retention step deletes. */
const MAX_RETAINED_IDS = 1000;

/** Refuses more ids than one step may delete. */
export function checkIds(ids: readonly string[]): void {
  if (!Array.isArray(ids) || ids.length > MAX_RETAINED_IDS) {
    throw validationError('ids', `must be an array of at most ${MAX_RETAINED_IDS} thread ids`);
  }
}

/** The thread id a retention walk goes on after ('' at the start: every id sorts after it). */
export function walkCursor(cursor: string | undefined): string {
  if (cursor === undefined) return '';
  const after = decodeCursor('retain', cursor);
  if (after === '') throw validationError('cursor', 'is not a cursor of this listing');
  return after;
}
