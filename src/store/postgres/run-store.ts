/**
 * The PostgreSQL RunStore: threads, their messages and runs. A run's writes are one statement
 * each, a call of an SQL function (migrations.ts) that checks the thread (present, fence not
 * newer), hands out seqs under the thread's row lock, appends the messages and writes the run
 * record, all in one implicit transaction: a finished step is wholly stored or not at all, seqs
 * have no gaps however many nodes write, and a plain run costs a few statements, not a few per
 * write. Listings are keyset pages, byte-bounded on the server (paging.ts).
 */
import { boundedPage, encodeCursor, pageLimit } from '../paging.ts';
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
} from '../ports.ts';
import {
  checkRun,
  fenceOf,
  idExists,
  interruptedOutcome,
  interruptNode,
  newThreadRow,
  leaseLost,
  runCursor,
  runNotFound,
  seqCursor,
  sinceOption,
  summariseVersions,
  threadChanged,
  threadNotFound,
  VERSION_STATS_MAX_RUNS,
} from '../run-store-shared.ts';
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase } from './database.ts';
import { uniqueViolation } from './errors.ts';
import { bytesBounded, PAGE_BUDGET } from './paging.ts';
import { ProjectRunData } from './project-data.ts';
import { RunRetention } from './retention.ts';
import { type MessageRow, type RunRow, type ThreadRow, toMessage, toRun, toThread } from '../rows.ts';

/** A run as this store keeps it: its input and output JSON-encoded (migrations.ts says why). */
const fromRow = (row: RunRow): RunRecord => toRun(row, (stored) => JSON.parse(stored) as string);

const RUN_BYTES =
  'octet_length(q.input) + coalesce(octet_length(q.output), 0) + octet_length(q.metadata) + coalesce(octet_length(q.error), 0)';

/** The parameters of agentpool_create_run and agentpool_commit_step, in their order. */
const WRITE_PARAMS = Array.from({ length: 26 }, (_, i) => `$${i + 1}`).join(', ');
/** Those, then the new thread's metadata, ttl, expiry and creation time. */
const THREAD_WRITE_PARAMS = `${WRITE_PARAMS}, $27, $28, $29, $30`;

/** A new thread's row, serialised now. */
function threadRow(thread: NewThread): ThreadRow {
  return { ...newThreadRow(thread), fence: 0 };
}

/** A RunStore on a PostgreSQL database shared with the other stores (open.ts opens them together). */
export class PostgresRunStore implements RunStore {
  readonly #conn: StoreConnection;
  readonly #node: string | null;
  readonly #projectData: ProjectRunData;
  readonly #retention: RunRetention;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'run store');
    this.#node = db.options.nodeId;
    this.#projectData = new ProjectRunData(this.#conn);
    this.#retention = new RunRetention(this.#conn);
  }

  async createThread(thread: NewThread): Promise<ThreadRecord> {
    const row = threadRow(thread);
    await this.#conn.guard(async () => {
      try {
        await this.#conn.db.query(
          `INSERT INTO threads (id, project, metadata, ttl_seconds, expires_at, message_count, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, 0, $6, $6)`,
          [row.id, row.project, row.metadata, row.ttl_seconds, row.expires_at, row.created_at],
          'thread_insert',
        );
      } catch (err) {
        if (uniqueViolation(err) !== undefined) throw idExists('thread', thread.id);
        throw err;
      }
    });
    return toThread(row);
  }

  async getThread(id: string): Promise<ThreadRecord | undefined> {
    const [row] = await this.#conn.rows<ThreadRow>('SELECT * FROM threads WHERE id = $1', [id], 'thread_get');
    return row && toThread(row);
  }

  async deleteThread(id: string): Promise<boolean> {
    // Messages and runs go with the thread through ON DELETE CASCADE.
    const result = await this.#conn.result('DELETE FROM threads WHERE id = $1', [id]);
    return (result.rowCount ?? 0) > 0;
  }

  async listMessages(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<MessageRecord>> {
    const limit = pageLimit(query.limit);
    const after = seqCursor(query.cursor);
    const inner = 'SELECT * FROM messages WHERE thread_id = $1 AND seq > $2 ORDER BY seq LIMIT $3';
    const rows = await this.#conn.rows<MessageRow>(
      bytesBounded(inner, 'q.seq', 'octet_length(q.content)', '$4'),
      [threadId, after, limit + 1, PAGE_BUDGET],
    );
    return boundedPage(rows, limit, toMessage, (r) => encodeCursor('seq', String(r.seq)));
  }

  async recentMessages(threadId: string, limit: number): Promise<MessageRecord[]> {
    const max = pageLimit(limit);
    // Newest first so the index walk stops after `max` rows, then conversation order.
    const rows = await this.#conn.rows<MessageRow>(
      'SELECT * FROM messages WHERE thread_id = $1 ORDER BY seq DESC LIMIT $2',
      [threadId, max],
      'messages_recent',
    );
    return rows.reverse().map(toMessage);
  }

  async listExpiredThreads(now: number, limit: number): Promise<ThreadRecord[]> {
    const max = pageLimit(limit);
    const rows = await this.#conn.rows<ThreadRow>(
      `SELECT * FROM threads WHERE expires_at IS NOT NULL AND expires_at <= $1
       ORDER BY expires_at, id LIMIT $2`,
      [now, max],
    );
    return rows.map(toThread);
  }

  async createRun(
    run: RunRecord,
    messages: readonly NewMessage[],
    fence?: number,
    thread?: NewThread,
  ): Promise<{ run: RunRecord; messages: MessageRecord[] }> {
    checkRun(run, messages, thread);
    const token = fenceOf(run, fence);
    const appended =
      thread === undefined
        ? await this.#write('agentpool_create_run', run, messages, token)
        : await this.#write('agentpool_create_thread_run', run, messages, token, threadRow(thread));
    return { run: structuredClone(run), messages: appended };
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const [row] = await this.#conn.rows<RunRow>('SELECT * FROM runs WHERE id = $1', [id], 'run_get');
    return row && fromRow(row);
  }

  async listRuns(
    threadId: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<RunRecord>> {
    const limit = pageLimit(query.limit);
    const before = query.cursor === undefined ? undefined : runCursor(query.cursor);
    const inner =
      before === undefined
        ? 'SELECT * FROM runs WHERE thread_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2'
        : `SELECT * FROM runs WHERE thread_id = $1 AND (created_at, id) < ($3, $4)
           ORDER BY created_at DESC, id DESC LIMIT $2`;
    const budget = before === undefined ? '$3' : '$5';
    const values: unknown[] = [threadId, limit + 1];
    if (before !== undefined) values.push(before[0], before[1]);
    values.push(PAGE_BUDGET);
    const rows = await this.#conn.rows<RunRow>(
      bytesBounded(inner, 'q.created_at DESC, q.id DESC', RUN_BYTES, budget),
      values,
    );
    return boundedPage(rows, limit, fromRow, (r) => encodeCursor('run', `${r.created_at}:${r.id}`));
  }

  async commitStep(
    run: RunRecord,
    messages: readonly NewMessage[],
    fence?: number,
  ): Promise<MessageRecord[]> {
    checkRun(run, messages);
    const token = fenceOf(run, fence);
    return this.#write('agentpool_commit_step', run, messages, token);
  }

  async costSince(project: string, since: number): Promise<number> {
    const [row] = await this.#conn.rows<{ cost: number }>(
      'SELECT coalesce(sum(cost), 0) AS cost FROM runs WHERE project = $1 AND created_at >= $2',
      [project, Math.ceil(since)], // times are whole ms: created_at >= 1.5 means >= 2
    );
    return row?.cost ?? 0;
  }

  async versionStats(project: string, agentId: string, since: number): Promise<VersionStats[]> {
    sinceOption(since);
    // Walks runs_project_created backwards from now to `since`, keeping the agent's terminal runs.
    const rows = await this.#conn.rows<{
      agent_version: number;
      status: string;
      started_at: number | null;
      finished_at: number | null;
    }>(
      `SELECT agent_version, status, started_at, finished_at FROM runs
       WHERE project = $1 AND created_at >= $2 AND agent_id = $3
         AND status IN ('succeeded', 'failed', 'cancelled', 'interrupted')
       ORDER BY created_at DESC, id DESC LIMIT $4`,
      [project, Math.ceil(since), agentId, VERSION_STATS_MAX_RUNS],
    );
    return summariseVersions(
      rows.map((r) => ({
        version: r.agent_version,
        status: r.status as RunStatus,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
      })),
    );
  }

  async interruptUnfinished(now: number, options?: InterruptOptions): Promise<number> {
    const node = interruptNode(options) ?? null;
    const result = await this.#conn.result(
      `UPDATE runs SET status = 'interrupted', finished_at = $1, error = $2
       WHERE status IN ('queued', 'running') AND ($3::text IS NULL OR (node_id = $3 AND id <> ALL($4)))`,
      [now, JSON.stringify(interruptedOutcome(node ?? undefined)), node, options?.except ?? []],
    );
    return result.rowCount ?? 0;
  }

  async countProjectRuns(project: string): Promise<number> {
    return this.#projectData.countRuns(project);
  }

  async deleteProjectRuns(project: string, limit: number): Promise<number> {
    return this.#projectData.deleteRuns(project, limit);
  }

  async countProjectThreads(
    project: string,
    query: ProjectWalk,
  ): Promise<{ count: number; nextCursor: string | null }> {
    return this.#projectData.countThreads(project, query);
  }

  async deleteProjectThreads(project: string, query: ProjectWalk): Promise<ProjectThreadsDeleted> {
    return this.#projectData.deleteThreads(project, query);
  }

  async listRetainedThreads(project: string, before: number, walk: ProjectWalk): Promise<RetainedThreads> {
    return this.#retention.listThreads(project, before, walk);
  }

  async deleteRetainedThreads(ids: readonly string[], before: number): Promise<RetentionDeleted> {
    return this.#retention.deleteThreads(ids, before);
  }

  async deleteRetainedRuns(project: string, before: number, limit: number): Promise<number> {
    return this.#retention.deleteRuns(project, before, limit);
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }

  /**
   * createRun or commitStep as one call of its SQL function; returns the appended messages. The
   * function raises the checks' failures, mapped here to the errors every adapter throws.
   */
  async #write(
    fn: 'agentpool_create_run' | 'agentpool_commit_step' | 'agentpool_create_thread_run',
    run: RunRecord,
    messages: readonly NewMessage[],
    fence: number | undefined,
    thread?: ThreadRow,
  ): Promise<MessageRecord[]> {
    // Serialised now, so a value that cannot be stored fails before anything is sent.
    const contents = messages.map((m) => JSON.stringify(m.content) ?? 'null');
    const values = [
      run.id,
      run.project,
      run.agentId,
      run.agentName,
      run.agentVersion,
      run.threadId,
      run.status,
      JSON.stringify(run.input),
      run.output === null ? null : JSON.stringify(run.output),
      run.model,
      run.steps,
      run.inputTokens,
      run.outputTokens,
      run.cost,
      run.error === null ? null : JSON.stringify(run.error),
      JSON.stringify(run.metadata),
      run.createdAt,
      run.startedAt,
      run.finishedAt,
      this.#node,
      fence ?? null,
      messages.map((m) => m.id),
      messages.map((m) => m.role),
      contents,
      messages.map((m) => m.runId),
      messages.map((m) => m.createdAt),
    ];
    if (thread !== undefined)
      values.push(thread.metadata, thread.ttl_seconds, thread.expires_at, thread.created_at);
    const base = await this.#conn.guard(async () => {
      try {
        const { rows } = await this.#conn.db.query<{ base: number | null }>(
          `SELECT ${fn}(${thread === undefined ? WRITE_PARAMS : THREAD_WRITE_PARAMS}) AS base`,
          values,
          fn,
        );
        return rows[0]?.base ?? 0;
      } catch (err) {
        throw this.#writeError(err, run, fence);
      }
    });
    return messages.map((m, i) => ({
      id: m.id,
      threadId: run.threadId as string,
      seq: base + i + 1,
      role: m.role,
      content: JSON.parse(contents[i] as string) as unknown,
      runId: m.runId,
      createdAt: m.createdAt,
    }));
  }

  /** What a failed run write means to the caller; unknown failures pass on to the guard. */
  #writeError(err: unknown, run: RunRecord, fence: number | undefined): unknown {
    const violated = uniqueViolation(err);
    if (violated === 'runs_pkey') return idExists('run', run.id);
    if (violated === 'threads_pkey') return idExists('thread', run.threadId ?? '');
    const e = err as { code?: unknown; message?: unknown; detail?: unknown };
    if (e?.code !== 'P0001' || typeof e.message !== 'string') return err;
    switch (e.message) {
      case 'agentpool:THREAD_NOT_FOUND':
        return threadNotFound(run.threadId ?? '');
      case 'agentpool:LEASE_LOST':
        return leaseLost(run.threadId ?? '', fence ?? 0, Number(e.detail));
      case 'agentpool:RUN_NOT_FOUND':
        return runNotFound(run.id);
      case 'agentpool:THREAD_CHANGED':
        return threadChanged(run.id);
      default:
        return err;
    }
  }
}
