/**
 * The in-memory RunStore: threads, their messages and runs in process memory, for tests, examples
 * and single-process deployments that need no durability. Like any store it holds everything
 * callers store until they delete it: threads and their runs go with an expired thread's sweep,
 * but stateless runs are never deleted, so memory grows with every stateless run and this store is
 * not meant for long-lived production traffic (use SQLite). Records are copied once on the way in
 * into frozen trees and handed out as they are (see immutable.ts), so no caller can mutate stored
 * state through what it passed or received; no method awaits between its checks and its writes,
 * which is what makes each call atomic under concurrent callers.
 */
import { AgentPoolError } from '../core/errors.ts';
import { numberOption } from '../core/options.ts';
import { handOut, immutableCopy, isImmutable } from './immutable.ts';
import { boundedPage, decodeCursor, encodeCursor, pageLimit } from './paging.ts';
import type {
  InterruptOptions,
  MessageRecord,
  NewMessage,
  NewThread,
  Page,
  ProjectThreadsDeleted,
  RetainedThreads,
  RetentionDeleted,
  ProjectWalk,
  RunRecord,
  RunStore,
  ThreadRecord,
  VersionStats,
} from './ports.ts';
import {
  checkIds,
  checkRun,
  fenceOf,
  idExists,
  interruptedOutcome,
  interruptNode,
  leaseLost,
  nodeIdOption,
  runNotFound,
  threadChanged,
  threadNotFound,
  walkCursor,
  runCursor,
  seqCursor,
  sinceOption,
  summariseVersions,
  TERMINAL_STATUSES,
  VERSION_STATS_MAX_RUNS,
} from './run-store-shared.ts';

interface StoredThread {
  readonly id: string;
  readonly project: string;
  readonly metadata: Record<string, unknown>;
  readonly ttlSeconds: number | null;
  expiresAt: number | null;
  readonly createdAt: number;
  updatedAt: number;
  /** Message with seq n lives at index n - 1; messages are only ever appended. */
  readonly messages: MessageRecord[];
  /** Ids of the thread's runs, so deleting the thread deletes them too. */
  readonly runIds: Set<string>;
  /** The newest lease token that wrote to the thread (see Fencing on RunStore); 0 at creation. */
  fence: number;
}

/** A run as stored: the record and the node that last wrote it. */
interface StoredRun {
  readonly record: RunRecord;
  readonly node: string | null;
}

/** Options of {@link MemoryRunStore}. */
export interface MemoryRunStoreOptions {
  /** Stamped on the runs this store creates and commits (see Nodes on RunStore). @default null */
  readonly nodeId?: string | undefined;
}

/** Newest first: createdAt descending, then id descending, the order of SQLite's keyset. */
function newestFirst(a: RunRecord, b: RunRecord): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** A RunStore held in process memory; nothing survives the process. */
export class MemoryRunStore implements RunStore {
  #closed = false;
  readonly #threads = new Map<string, StoredThread>();
  readonly #runs = new Map<string, StoredRun>();
  readonly #node: string | null;

  constructor(options: MemoryRunStoreOptions = {}) {
    this.#node = nodeIdOption(options.nodeId);
  }

  async createThread(thread: NewThread): Promise<ThreadRecord> {
    this.#assertOpen();
    const stored = this.#newThread(thread);
    this.#threads.set(stored.id, stored);
    return this.#thread(stored);
  }

  /** A new thread's entry, checked and copied, not yet stored. */
  #newThread(thread: NewThread): StoredThread {
    const ttl = thread.ttlSeconds === null ? null : numberOption('ttlSeconds', thread.ttlSeconds, 0, 0, 1e12);
    if (this.#threads.has(thread.id)) throw idExists('thread', thread.id);
    return {
      id: thread.id,
      project: thread.project,
      metadata: immutableCopy(thread.metadata),
      ttlSeconds: ttl,
      expiresAt: ttl === null ? null : thread.now + ttl * 1000,
      createdAt: thread.now,
      updatedAt: thread.now,
      messages: [],
      runIds: new Set(),
      fence: 0,
    };
  }

  async getThread(id: string): Promise<ThreadRecord | undefined> {
    this.#assertOpen();
    const stored = this.#threads.get(id);
    return stored && this.#thread(stored);
  }

  async deleteThread(id: string): Promise<boolean> {
    this.#assertOpen();
    const stored = this.#threads.get(id);
    if (stored === undefined) return false;
    for (const runId of stored.runIds) this.#runs.delete(runId);
    this.#threads.delete(id);
    return true;
  }

  async listMessages(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<MessageRecord>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const after = seqCursor(query.cursor);
    const messages = this.#threads.get(threadId)?.messages ?? [];
    // seq n is at index n - 1, so the page after seq `after` starts at index `after`.
    return boundedPage(messages.slice(after, after + limit + 1), limit, handOut, (m) =>
      encodeCursor('seq', String(m.seq)),
    );
  }

  async recentMessages(threadId: string, limit: number): Promise<MessageRecord[]> {
    this.#assertOpen();
    const max = pageLimit(limit);
    const messages = this.#threads.get(threadId)?.messages ?? [];
    return messages.slice(Math.max(0, messages.length - max)).map(handOut);
  }

  /** Nobody but this process writes to its memory. */
  writeEpoch(): number {
    return 0;
  }

  async listExpiredThreads(now: number, limit: number): Promise<ThreadRecord[]> {
    this.#assertOpen();
    const max = pageLimit(limit);
    // A full scan is fine here: this adapter is for small data sets and the sweep runs rarely.
    const due: StoredThread[] = [];
    for (const t of this.#threads.values()) if (t.expiresAt !== null && t.expiresAt <= now) due.push(t);
    due.sort((a, b) => (a.expiresAt as number) - (b.expiresAt as number) || (a.id < b.id ? -1 : 1));
    return due.slice(0, max).map((t) => this.#thread(t));
  }

  async createRun(
    run: RunRecord,
    messages: readonly NewMessage[],
    fence?: number,
    newThread?: NewThread,
  ): Promise<{ run: RunRecord; messages: MessageRecord[] }> {
    this.#assertOpen();
    checkRun(run, messages, newThread);
    const token = fenceOf(run, fence);
    const created = newThread && this.#newThread(newThread);
    const thread = created ?? (run.threadId === null ? undefined : this.#mustGetThread(run.threadId));
    if (this.#runs.has(run.id)) throw idExists('run', run.id);
    if (thread !== undefined) checkFence(thread, token);
    // Copy everything before the first write, so a value that cannot be cloned writes nothing.
    const stored = storedRun(run);
    const appended = thread === undefined ? [] : this.#append(thread, messages);
    if (created !== undefined) this.#threads.set(created.id, created); // after what may throw
    if (thread !== undefined && token !== undefined) thread.fence = token;
    this.#runs.set(stored.id, { record: stored, node: this.#node });
    thread?.runIds.add(stored.id);
    return { run: handOut(stored), messages: appended };
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    this.#assertOpen();
    const stored = this.#runs.get(id);
    return stored && handOut(stored.record);
  }

  async listRuns(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<RunRecord>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const before = query.cursor === undefined ? undefined : runCursor(query.cursor);
    const thread = this.#threads.get(threadId);
    if (thread === undefined) return { data: [], nextCursor: null };
    // Sorting per page is O(k log k) in the thread's runs: fine for what this adapter is for.
    let runs = [...thread.runIds].map((id) => (this.#runs.get(id) as StoredRun).record).sort(newestFirst);
    if (before !== undefined) {
      const [createdAt, id] = before;
      runs = runs.filter((r) => r.createdAt < createdAt || (r.createdAt === createdAt && r.id < id));
    }
    return boundedPage(runs.slice(0, limit + 1), limit, handOut, (r) =>
      encodeCursor('run', `${r.createdAt}:${r.id}`),
    );
  }

  async commitStep(
    run: RunRecord,
    messages: readonly NewMessage[],
    fence?: number,
  ): Promise<MessageRecord[]> {
    this.#assertOpen();
    checkRun(run, messages);
    const token = fenceOf(run, fence);
    // The thread first: deleting a thread deletes its runs, so a missing run on a missing thread
    // is reported as the thread's absence, the cause a caller can act on.
    const thread = run.threadId === null ? undefined : this.#mustGetThread(run.threadId);
    if (thread !== undefined) checkFence(thread, token);
    const current = this.#runs.get(run.id);
    if (current === undefined) {
      throw runNotFound(run.id);
    }
    if (current.record.threadId !== run.threadId) {
      throw threadChanged(run.id);
    }
    const stored = storedRun(run);
    const appended = thread === undefined ? [] : this.#append(thread, messages);
    if (thread !== undefined && token !== undefined) thread.fence = token;
    this.#runs.set(stored.id, { record: stored, node: this.#node ?? current.node });
    return appended;
  }

  async costSince(project: string, since: number): Promise<number> {
    this.#assertOpen();
    let sum = 0;
    for (const { record: run } of this.#runs.values())
      if (run.project === project && run.createdAt >= since) sum += run.cost;
    return sum;
  }

  async versionStats(project: string, agentId: string, since: number): Promise<VersionStats[]> {
    this.#assertOpen();
    sinceOption(since);
    // A full scan, like costSince: this adapter is for small data sets.
    const runs: RunRecord[] = [];
    for (const { record: run } of this.#runs.values()) {
      if (run.project === project && run.agentId === agentId && run.createdAt >= since) {
        if (TERMINAL_STATUSES.includes(run.status)) runs.push(run);
      }
    }
    runs.sort(newestFirst);
    return summariseVersions(
      runs.slice(0, VERSION_STATS_MAX_RUNS).map((r) => ({
        version: r.agentVersion,
        status: r.status,
        startedAt: r.startedAt,
        finishedAt: r.finishedAt,
      })),
    );
  }

  async interruptUnfinished(now: number, options?: InterruptOptions): Promise<number> {
    this.#assertOpen();
    const node = interruptNode(options);
    const error = interruptedOutcome(node);
    const except = new Set(node === undefined ? [] : (options?.except ?? []));
    let n = 0;
    for (const [id, stored] of this.#runs) {
      const run = stored.record;
      if (run.status !== 'queued' && run.status !== 'running') continue;
      if (node !== undefined && stored.node !== node) continue;
      if (except.has(id)) continue;
      const record = storedRun({ ...run, status: 'interrupted', finishedAt: now, error });
      this.#runs.set(id, { record, node: stored.node });
      n++;
    }
    return n;
  }

  async countProjectRuns(project: string): Promise<number> {
    this.#assertOpen();
    let n = 0;
    for (const { record: run } of this.#runs.values()) if (run.project === project) n++;
    return n;
  }

  async deleteProjectRuns(project: string, limit: number): Promise<number> {
    this.#assertOpen();
    const max = pageLimit(limit);
    let n = 0;
    for (const [id, { record: run }] of this.#runs) {
      if (n === max) break;
      if (run.project !== project) continue;
      this.#runs.delete(id);
      if (run.threadId !== null) this.#threads.get(run.threadId)?.runIds.delete(id);
      n++;
    }
    return n;
  }

  // Full scans, like costSince: this adapter is for small data sets. Each step finds the project's
  // threads directly, so one counting step suffices and a deleting step goes on while some remain.
  async countProjectThreads(
    project: string,
    query: ProjectWalk,
  ): Promise<{ count: number; nextCursor: string | null }> {
    this.#assertOpen();
    walkStep(query);
    let count = 0;
    for (const thread of this.#threads.values()) if (thread.project === project) count++;
    return { count, nextCursor: null };
  }

  async deleteProjectThreads(project: string, query: ProjectWalk): Promise<ProjectThreadsDeleted> {
    this.#assertOpen();
    const max = walkStep(query);
    let threads = 0;
    let messages = 0;
    let runs = 0;
    let more = false;
    for (const [id, thread] of this.#threads) {
      if (thread.project !== project) continue;
      if (threads === max) {
        more = true;
        break;
      }
      for (const runId of thread.runIds) this.#runs.delete(runId);
      runs += thread.runIds.size;
      messages += thread.messages.length;
      this.#threads.delete(id);
      threads++;
    }
    return { threads, messages, runs, nextCursor: more ? encodeCursor('walk', 'more') : null };
  }

  // Retention: full scans too, each step bounded by what it examines or deletes.
  async listRetainedThreads(project: string, before: number, walk: ProjectWalk): Promise<RetainedThreads> {
    this.#assertOpen();
    const limit = pageLimit(walk.limit);
    const after = walkCursor(walk.cursor);
    const examined = [...this.#threads.values()]
      .filter((t) => t.project === project && t.id > after)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .slice(0, limit);
    const last = examined[examined.length - 1];
    return {
      ids: examined.filter((t) => t.updatedAt < before).map((t) => t.id),
      nextCursor: examined.length < limit || last === undefined ? null : encodeCursor('retain', last.id),
    };
  }

  async deleteRetainedThreads(ids: readonly string[], before: number): Promise<RetentionDeleted> {
    this.#assertOpen();
    checkIds(ids);
    const deleted = { threads: 0, messages: 0, runs: 0 };
    for (const id of ids) {
      const thread = this.#threads.get(id);
      if (thread === undefined || thread.updatedAt >= before) continue;
      const runs = [...thread.runIds].map((runId) => this.#runs.get(runId)?.record);
      if (runs.some((r) => r?.status === 'queued' || r?.status === 'running')) continue;
      for (const runId of thread.runIds) this.#runs.delete(runId);
      this.#threads.delete(id);
      deleted.threads++;
      deleted.messages += thread.messages.length;
      deleted.runs += runs.length;
    }
    return deleted;
  }

  async deleteRetainedRuns(project: string, before: number, limit: number): Promise<number> {
    this.#assertOpen();
    const max = pageLimit(limit);
    let n = 0;
    for (const [id, { record: run }] of this.#runs) {
      if (n === max) break;
      if (run.project !== project || run.threadId !== null || run.finishedAt === null) continue;
      if (run.finishedAt >= before || run.createdAt >= before) continue;
      if (run.status === 'queued' || run.status === 'running') continue;
      this.#runs.delete(id);
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#threads.clear();
    this.#runs.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'MemoryRunStore is closed');
  }

  #mustGetThread(id: string): StoredThread {
    const stored = this.#threads.get(id);
    if (stored === undefined) throw threadNotFound(id);
    return stored;
  }

  /**
   * Appends copies of `messages` with the next seqs and moves the thread's clock and expiry to the
   * last message's time (never backwards). Returns what it stored, as readers get it.
   */
  #append(thread: StoredThread, messages: readonly NewMessage[]): MessageRecord[] {
    // Copy all first: a failed clone must leave the thread untouched.
    const copies: unknown[] = [];
    for (const m of messages) copies.push(m.content === undefined ? null : immutableCopy(m.content));
    const out: MessageRecord[] = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i] as NewMessage;
      const content = copies[i];
      const record: MessageRecord = {
        id: m.id,
        threadId: thread.id,
        seq: thread.messages.length + 1,
        role: m.role,
        content,
        runId: m.runId,
        createdAt: m.createdAt,
      };
      if (isImmutable(content)) Object.freeze(record);
      thread.messages.push(record);
      out.push(handOut(record));
    }
    const last = messages[messages.length - 1];
    if (last !== undefined) {
      thread.updatedAt = Math.max(thread.updatedAt, last.createdAt);
      thread.expiresAt = thread.ttlSeconds === null ? null : thread.updatedAt + thread.ttlSeconds * 1000;
    }
    return out;
  }

  #thread(stored: StoredThread): ThreadRecord {
    return {
      id: stored.id,
      project: stored.project,
      metadata: handOut(stored.metadata),
      ttlSeconds: stored.ttlSeconds,
      expiresAt: stored.expiresAt,
      messageCount: stored.messages.length,
      createdAt: stored.createdAt,
      updatedAt: stored.updatedAt,
    };
  }
}

/**
 * The record a run is stored as: built field by field from the caller's (so what a real store
 * would not keep, a field RunRecord lacks, is not kept either), its objects copied by
 * immutableCopy, and frozen when they are, so it is handed out as it is.
 */
function storedRun(run: RunRecord): RunRecord {
  const metadata = immutableCopy(run.metadata);
  const error = immutableCopy(run.error);
  const record: RunRecord = {
    id: run.id,
    project: run.project,
    agentId: run.agentId,
    agentName: run.agentName,
    agentVersion: run.agentVersion,
    threadId: run.threadId,
    status: run.status,
    input: run.input,
    output: run.output,
    model: run.model,
    steps: run.steps,
    inputTokens: run.inputTokens,
    outputTokens: run.outputTokens,
    cost: run.cost,
    error,
    metadata,
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
  };
  return isImmutable(metadata) && isImmutable(error) ? Object.freeze(record) : record;
}

/** LEASE_LOST when `token` is older than the thread's fence; nothing is checked without a token. */
function checkFence(thread: StoredThread, token: number | undefined): void {
  if (token !== undefined && thread.fence > token) throw leaseLost(thread.id, token, thread.fence);
}

/** Checks a walk step's limit and cursor as every adapter does; returns the limit. */
function walkStep(query: ProjectWalk): number {
  if (query.cursor !== undefined) decodeCursor('walk', query.cursor);
  return pageLimit(query.limit);
}
