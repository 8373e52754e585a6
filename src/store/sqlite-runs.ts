/**
 * The SQLite RunStore: threads, their messages and runs in the same file (WAL) as the agent store.
 * A finished step (its messages and the run record) commits atomically, seqs come from the
 * thread's `message_count` read under the write lock, and every listing is keyset paged, so
 * appends and pages stay flat as threads and histories grow.
 *
 * Writes are group-committed: those issued in one turn of the event loop (many concurrent runs
 * finishing steps) share one IMMEDIATE transaction; when one of them fails, the transaction is
 * rolled back and run again with each write of several statements in its own savepoint, so a
 * failing write rolls back alone; every caller's promise settles only after the shared COMMIT. A commit costs tens of microseconds on a disk, most of it per transaction, so
 * under load this divides the cost by the batch size without weakening what "committed" means.
 * WAL checkpoints run on a thread of their own (sqlite-checkpointer.ts), not inside a COMMIT.
 */
import type Database from 'better-sqlite3';
import { intOption } from '../core/options.ts';
import { GroupCommit, type GroupTransactions } from './group-commit.ts';
import { boundedPage, encodeCursor, pageLimit } from './paging.ts';
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
  RunStatus,
  RunStore,
  ThreadRecord,
  VersionStats,
} from './ports.ts';
import {
  checkRun,
  fenceOf,
  idExists,
  interruptedOutcome,
  interruptNode,
  newThreadRow,
  leaseLost,
  nodeIdOption,
  runNotFound,
  threadChanged,
  threadNotFound,
  runCursor,
  seqCursor,
  sinceOption,
  summariseVersions,
  VERSION_STATS_MAX_RUNS,
} from './run-store-shared.ts';
import { prepareProjectRunDeletion } from './sqlite-project-data.ts';
import { prepareRetention } from './sqlite-retention.ts';
import { type MessageRow, type RunRow, type ThreadRow, toMessage, toRun, toThread } from './rows.ts';
import { prepareRunStatements } from './sqlite-schema.ts';
import {
  type ResolvedSqliteCheckpointOptions,
  resolveSqliteCheckpointOptions,
  type SqliteCheckpointOptions,
  SqliteCheckpointer,
} from './sqlite-checkpointer.ts';
import { SqliteConnection, type SqliteStoreSource } from './sqlite-connection.ts';

/**
 * Options of {@link SqliteRunStore}: its file (`path`; may be the agent store's) or a database it
 * shares with the other stores (`database`), and how it writes.
 */
export type SqliteRunStoreOptions = SqliteStoreSource & {
  /**
   * How long a write waits for another connection's lock before failing, ms (with `path`; a shared
   * `database` has its own).
   * @default 5000
   */
  readonly busyTimeoutMs?: number | undefined;
  /** Stamped on the runs this store creates and commits (see Nodes on RunStore). @default null */
  readonly nodeId?: string | undefined;
  /**
   * WAL checkpoints on a worker thread instead of inside the COMMIT of a write (see
   * sqlite-checkpointer.ts); `false` leaves them to SQLite. Not used with `':memory:'`, nor on a
   * database with `lockingMode: 'exclusive'`, which the thread's connection could not open.
   * @default {} (on, with the defaults of SqliteCheckpointOptions)
   */
  readonly checkpoint?: SqliteCheckpointOptions | false | undefined;
};

/**
 * The checkpointer's thread starts with this write of the store: a thread costs tens of
 * milliseconds to start, which a store used briefly (a CLI command, a test) should not pay, and
 * its WAL stays far below any checkpoint until then.
 */
const CHECKPOINTER_AFTER_WRITES = 100;

function runRow(run: RunRecord, node: string | null): RunRow {
  return {
    id: run.id,
    project: run.project,
    agent_id: run.agentId,
    agent_name: run.agentName,
    agent_version: run.agentVersion,
    thread_id: run.threadId,
    status: run.status,
    input: run.input,
    output: run.output,
    model: run.model,
    steps: run.steps,
    input_tokens: run.inputTokens,
    output_tokens: run.outputTokens,
    cost: run.cost,
    error: run.error === null ? null : JSON.stringify(run.error),
    metadata: JSON.stringify(run.metadata),
    created_at: run.createdAt,
    started_at: run.startedAt,
    finished_at: run.finishedAt,
    node_id: node,
  };
}

/** Serialised once, outside the transaction, so a bad value fails before the write lock is taken. */
interface PendingMessage {
  readonly message: NewMessage;
  readonly content: string;
}

/**
 * Whether a run write may fail after changing something: one that appends messages or raises a
 * fence runs several statements; otherwise it checks the thread with a read and changes one row.
 */
function partial(messages: readonly PendingMessage[], fence: number | null): boolean {
  return messages.length > 0 || fence !== null;
}

function pending(messages: readonly NewMessage[]): PendingMessage[] {
  // JSON.stringify(undefined) is undefined; store it as null, the nearest JSON value.
  return messages.map((message) => ({ message, content: JSON.stringify(message.content) ?? 'null' }));
}

/** A RunStore in one SQLite file, through better-sqlite3; shares the file with SqliteAgentStore. */
export class SqliteRunStore implements RunStore {
  readonly #conn: SqliteConnection;
  readonly #s: Statements;
  readonly #w: ReturnType<typeof prepareWrites>;
  readonly #group: GroupCommit;
  readonly #projectData: ReturnType<typeof prepareProjectRunDeletion>;
  readonly #retention: ReturnType<typeof prepareRetention>;
  readonly #node: string | null;
  /** The checkpointer's options until it starts (undefined without one); see #write. */
  #checkpoint: ResolvedSqliteCheckpointOptions | undefined;
  #checkpointer: SqliteCheckpointer | undefined;
  /** Writes accepted so far, counted up to CHECKPOINTER_AFTER_WRITES. */
  #writes = 0;
  /** Settles when the checkpointer has ended, once closed (a second close waits for it too). */
  #closed: Promise<void> | undefined;

  constructor(options: SqliteRunStoreOptions) {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    this.#node = nodeIdOption(options.nodeId);
    const checkpoint =
      options.checkpoint === false ? undefined : resolveSqliteCheckpointOptions(options.checkpoint);
    this.#conn = new SqliteConnection(options, busyTimeoutMs, 'run store');
    // A ':memory:' database has no WAL to copy; an exclusive one admits no second connection.
    const { path, lockingMode } = this.#conn.database;
    this.#checkpoint = path === ':memory:' || lockingMode === 'exclusive' ? undefined : checkpoint;
    [this.#s, this.#w, this.#projectData, this.#retention] = this.#conn.prepare((db) => {
      const s = prepareRunStatements(db);
      return [s, prepareWrites(db, s), prepareProjectRunDeletion(db), prepareRetention(db)] as const;
    });
    this.#group = new GroupCommit(this.#w.transactions, (err) => this.#conn.storeError(err));
  }

  /** The file this store writes to. */
  get path(): string {
    return this.#conn.path;
  }

  async createThread(thread: NewThread): Promise<ThreadRecord> {
    const row = newThreadRow(thread);
    return this.#write(() => {
      this.#w.insertThread(row);
      return toThread(row);
    }, false);
  }

  async getThread(id: string): Promise<ThreadRecord | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.getThread.get(id);
      return row && toThread(row);
    });
  }

  async deleteThread(id: string): Promise<boolean> {
    return this.#conn.guard(() => this.#s.deleteThread.run(id).changes > 0);
  }

  async listMessages(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<MessageRecord>> {
    const limit = pageLimit(query.limit);
    const after = seqCursor(query.cursor);
    return this.#conn.guard(() => {
      return boundedPage(this.#s.listMessages.iterate(threadId, after, limit + 1), limit, toMessage, (r) =>
        encodeCursor('seq', String(r.seq)),
      );
    });
  }

  async recentMessages(threadId: string, limit: number): Promise<MessageRecord[]> {
    const max = pageLimit(limit);
    // Read newest first so the index walk stops after `max` rows, then restore conversation order.
    return this.#conn.guard(() => this.#s.recentMessages.all(threadId, max).reverse().map(toMessage));
  }

  async listExpiredThreads(now: number, limit: number): Promise<ThreadRecord[]> {
    const max = pageLimit(limit);
    return this.#conn.guard(() => this.#s.listExpiredThreads.all(now, max).map(toThread));
  }

  /** Changes when another connection (another process, another database object on the file) commits. */
  writeEpoch(): number {
    return this.#conn.guard(() => this.#conn.database.dataVersion());
  }

  // Not async, like commitStep: a run's write is one promise, the group commit's.
  createRun(
    run: RunRecord,
    messages: readonly NewMessage[],
    fence?: number,
    thread?: NewThread,
  ): Promise<{ run: RunRecord; messages: MessageRecord[] }> {
    try {
      checkRun(run, messages, thread);
      const token = fenceOf(run, fence) ?? null;
      const row = runRow(run, this.#node);
      const rows = pending(messages);
      const newThread = thread && newThreadRow(thread);
      return this.#write(
        () => {
          const appended = this.#w.createRun(row, rows, token, newThread).map(toMessage);
          // The record is read back when asked for: a run's own write never asks (RunWrites).
          return {
            get run(): RunRecord {
              return toRun(row);
            },
            messages: appended,
          };
        },
        newThread !== undefined || partial(rows, token),
      );
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.getRun.get(id);
      return row && toRun(row);
    });
  }

  async listRuns(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<RunRecord>> {
    const limit = pageLimit(query.limit);
    const before = query.cursor === undefined ? undefined : runCursor(query.cursor);
    return this.#conn.guard(() => {
      const s = this.#s;
      const rows =
        before === undefined
          ? s.listRunsFirst.iterate(threadId, limit + 1)
          : s.listRunsAfter.iterate(threadId, before[0], before[1], limit + 1);
      return boundedPage(rows, limit, toRun, (r) => encodeCursor('run', `${r.created_at}:${r.id}`));
    });
  }

  commitStep(run: RunRecord, messages: readonly NewMessage[], fence?: number): Promise<MessageRecord[]> {
    try {
      checkRun(run, messages);
      const token = fenceOf(run, fence) ?? null;
      const row = runRow(run, this.#node);
      const rows = pending(messages);
      return this.#write(() => this.#w.commitStep(row, rows, token).map(toMessage), partial(rows, token));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async costSince(project: string, since: number): Promise<number> {
    return this.#conn.guard(() => {
      this.#group.flush(); // count steps accepted but not yet committed
      return this.#s.costSince.get(project, since) ?? 0;
    });
  }

  async versionStats(project: string, agentId: string, since: number): Promise<VersionStats[]> {
    sinceOption(since);
    return this.#conn.guard(() => {
      this.#group.flush(); // count steps accepted but not yet committed
      const rows = this.#s.versionOutcomes.all(project, since, agentId, VERSION_STATS_MAX_RUNS);
      return summariseVersions(
        rows.map((r) => ({
          version: r.agent_version,
          status: r.status as RunStatus,
          startedAt: r.started_at,
          finishedAt: r.finished_at,
        })),
      );
    });
  }

  async interruptUnfinished(now: number, options?: InterruptOptions): Promise<number> {
    const node = interruptNode(options);
    const error = JSON.stringify(interruptedOutcome(node));
    return this.#conn.guard(() =>
      node === undefined
        ? this.#s.interruptUnfinished.run(now, error).changes
        : this.#s.interruptNodeUnfinished.run(now, error, node, JSON.stringify(options?.except ?? []))
            .changes,
    );
  }

  async countProjectRuns(project: string): Promise<number> {
    return this.#conn.guard(() => this.#projectData.countRuns(project));
  }

  async deleteProjectRuns(project: string, limit: number): Promise<number> {
    return this.#conn.guard(() => this.#projectData.deleteRuns(project, limit));
  }

  async countProjectThreads(
    project: string,
    query: ProjectWalk,
  ): Promise<{ count: number; nextCursor: string | null }> {
    return this.#conn.guard(() => this.#projectData.countThreads(project, query));
  }

  async deleteProjectThreads(project: string, query: ProjectWalk): Promise<ProjectThreadsDeleted> {
    return this.#conn.guard(() => this.#projectData.deleteThreads(project, query));
  }

  async listRetainedThreads(project: string, before: number, walk: ProjectWalk): Promise<RetainedThreads> {
    return this.#conn.guard(() => this.#retention.listThreads(project, before, walk));
  }

  async deleteRetainedThreads(ids: readonly string[], before: number): Promise<RetentionDeleted> {
    return this.#conn.guard(() => this.#retention.deleteThreads(ids, before));
  }

  async deleteRetainedRuns(project: string, before: number, limit: number): Promise<number> {
    return this.#conn.guard(() => this.#retention.deleteRuns(project, before, limit));
  }

  async close(): Promise<void> {
    if (this.#conn.closed) return this.#closed;
    try {
      this.#group.flush(); // writes already accepted are committed, not dropped
    } finally {
      this.#conn.close();
      this.#closed = this.#checkpointer?.close();
    }
    return this.#closed;
  }

  /** A write through the group commit (see GroupCommit.write), refused at once when the store is closed. */
  #write<T>(fn: () => T, partial: boolean): Promise<T> {
    if (this.#checkpoint !== undefined && ++this.#writes >= CHECKPOINTER_AFTER_WRITES && !this.#conn.closed) {
      this.#checkpointer = new SqliteCheckpointer(this.#conn.path, this.#checkpoint);
      this.#checkpoint = undefined;
    }
    this.#conn.assertOpen();
    return this.#group.write(fn, partial);
  }
}

type Statements = ReturnType<typeof prepareRunStatements>;

/**
 * The writes that must be atomic. The group commit runs them in an IMMEDIATE transaction, so the
 * write lock is taken before `message_count` is read and two connections on one file can never
 * hand out the same seq; a throw rolls back the write (its transaction, or its savepoint among
 * others), which is what makes failures write nothing.
 */
function prepareWrites(db: Database.Database, s: Statements) {
  /** Why a write to the thread matched no row: it is gone, or its fence is newer than `fence`. */
  const refused = (threadId: string, fence: number | null) => {
    const current = s.threadFence.get(threadId);
    if (current === undefined || fence === null) return threadNotFound(threadId);
    return leaseLost(threadId, fence, current);
  };
  /**
   * Appends to a thread that must exist; with no messages it only checks that. With a fence
   * (else null) the thread's fence is checked and raised in the same statement as the append.
   */
  const append = (
    threadId: string,
    messages: readonly PendingMessage[],
    fence: number | null,
  ): MessageRow[] => {
    if (messages.length === 0) {
      if (fence !== null) {
        if (s.fenceThread.run({ id: threadId, fence }).changes === 0) throw refused(threadId, fence);
      } else if (s.threadExists.get(threadId) === undefined) throw threadNotFound(threadId);
      return [];
    }
    const at = lastAt(messages);
    const count = s.reserveSeqs.get({ id: threadId, n: messages.length, at, fence });
    if (count === undefined) throw refused(threadId, fence);
    return insertMessages(threadId, messages, count - messages.length);
  };
  /** Inserts `messages` numbered after `seq`. */
  const insertMessages = (threadId: string, messages: readonly PendingMessage[], seq: number): MessageRow[] =>
    messages.map(({ message, content }) => {
      const row: MessageRow = {
        thread_id: threadId,
        seq: ++seq,
        id: message.id,
        role: message.role,
        content,
        run_id: message.runId,
        created_at: message.createdAt,
      };
      s.insertMessage.run(row);
      return row;
    });
  const insertThread = (row: ThreadRow): void => {
    try {
      s.insertThread.run(row);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
        throw idExists('thread', row.id);
      throw err;
    }
  };
  /**
   * A new thread and its first messages: the thread's row is inserted as the append would leave it
   * (count, last message time, expiry), so the seqs need no update of it. A fenced write takes the
   * usual path, which sets the fence.
   */
  const insertThreadWith = (
    thread: ThreadRow,
    messages: readonly PendingMessage[],
    fence: number | null,
  ): MessageRow[] | undefined => {
    if (fence !== null || messages.length === 0) {
      insertThread(thread);
      return undefined;
    }
    const updated = Math.max(thread.updated_at, lastAt(messages));
    const ttl = thread.ttl_seconds;
    // In place: the row was made for this write (createRun), and nothing else reads it.
    thread.message_count = messages.length;
    thread.updated_at = updated;
    thread.expires_at = ttl === null ? null : updated + ttl * 1000;
    insertThread(thread);
    return insertMessages(thread.id, messages, 0);
  };
  const createRun = (
    row: RunRow,
    messages: readonly PendingMessage[],
    fence: number | null,
    thread?: ThreadRow,
  ): MessageRow[] => {
    // The thread first, so a missing thread reads THREAD_NOT_FOUND, not a foreign-key failure.
    const appended =
      (thread && insertThreadWith(thread, messages, fence)) ??
      (row.thread_id === null ? [] : append(row.thread_id, messages, fence));
    try {
      s.insertRun.run(row);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw idExists('run', row.id);
      throw err;
    }
    return appended;
  };
  const commitStep = (
    row: RunRow,
    messages: readonly PendingMessage[],
    fence: number | null,
  ): MessageRow[] => {
    // The thread first: deleting a thread deletes its runs, so a missing run on a missing thread
    // is reported as the thread's absence, the cause a caller can act on.
    const appended = row.thread_id === null ? [] : append(row.thread_id, messages, fence);
    if (s.updateRun.run(row).changes === 0) {
      if (s.runExists.get(row.id) === undefined) {
        throw runNotFound(row.id);
      }
      throw threadChanged(row.id);
    }
    return appended;
  };
  // One IMMEDIATE transaction per batch; nested, the same wrapper is a savepoint.
  const atomic = db.transaction((body: () => unknown) => body());
  const transactions: GroupTransactions = { transaction: atomic.immediate, isolate: atomic };
  return { insertThread, createRun, commitStep, transactions };
}

/** When the last of `messages` (not empty) was created. */
function lastAt(messages: readonly PendingMessage[]): number {
  return (messages[messages.length - 1] as PendingMessage).message.createdAt;
}
