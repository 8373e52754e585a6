/**
 * Threads: conversations scoped to a project. Create, read, list messages and runs, delete
 * (refused while a run holds the thread), and expire threads with a ttl.
 */
import type { Clock } from '../core/clock.ts';
import { AgentPoolError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { INPUT_LIMITS, parseMetadata } from '../core/input-limits.ts';
import { intOption, objectOption, rejectUnknownKeys } from '../core/options.ts';
import { assertSlug } from '../registry/definition.ts';
import type { MessageRecord, NewThread, Page, RunRecord, RunStore, ThreadRecord } from '../store/ports.ts';
import type { ThreadHistoryCache } from './history-cache.ts';
import type { ThreadLeases } from '../coordination/thread-leases.ts';

/** What a new thread may carry. */
export interface CreateThreadOptions {
  /** Free-form JSON (≤ 16 KiB, nesting ≤ 32 levels: `INPUT_LIMITS`). @default {} */
  metadata?: Record<string, unknown>;
  /** Delete the thread after this long without a new message. */
  ttlSeconds?: number;
}

const THREAD_FIELDS: readonly string[] = Object.freeze(['metadata', 'ttlSeconds']);

/** The threads of every project; every method takes the project first. */
export class Threads {
  readonly #store: RunStore;
  readonly #clock: Clock;
  readonly #leases: ThreadLeases;
  readonly #history: ThreadHistoryCache;

  constructor(deps: { store: RunStore; clock: Clock; leases: ThreadLeases; history: ThreadHistoryCache }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#leases = deps.leases;
    this.#history = deps.history;
  }

  async create(project: string, options: CreateThreadOptions = {}): Promise<ThreadRecord> {
    assertSlug('project', project);
    const draft = this.draft(project, options, this.#clock.now());
    // Any reading before the creation will do for its history: the newest the cache saw, if any.
    const epoch = this.#history.epoch ?? this.#store.writeEpoch?.();
    const thread = await this.#store.createThread(draft);
    this.#history.created(project, thread.id, epoch); // its first run needs no read
    return thread;
  }

  /**
   * A new thread of `project` as the store creates it, options checked, not written. `field` names
   * the options in errors when they are part of something else (a run's `thread`).
   */
  draft(project: string, options: CreateThreadOptions, now: number, field?: string): NewThread {
    const at = field === undefined ? '' : `${field}.`;
    if (field === undefined) rejectUnknownKeys('', options, THREAD_FIELDS);
    else objectOption(field, options, THREAD_FIELDS);
    const metadata = parseMetadata(`${at}metadata`, options.metadata ?? undefined);
    const ttlSeconds =
      options.ttlSeconds === undefined
        ? null
        : intOption(`${at}ttlSeconds`, options.ttlSeconds, 1, 1, INPUT_LIMITS.ttlSeconds);
    return { id: newId('thr', now), project, metadata, ttlSeconds, now };
  }

  /** The thread, if it exists in this project; `THREAD_NOT_FOUND` otherwise (another project's thread does not exist here). */
  async get(project: string, id: string): Promise<ThreadRecord> {
    const thread = await this.#store.getThread(id);
    if (thread === undefined || thread.project !== project) {
      throw new AgentPoolError('THREAD_NOT_FOUND', `thread ${JSON.stringify(id)} not found`, {
        threadId: id,
      });
    }
    return thread;
  }

  /** Deletes a thread, its messages and its runs; `THREAD_BUSY` while a run holds it. */
  async delete(project: string, id: string): Promise<void> {
    await this.get(project, id);
    const active = await this.#leases.holder(id);
    if (active !== undefined) {
      throw new AgentPoolError(
        'THREAD_BUSY',
        `thread ${id} has a run in flight (run ${active}); cancel it first`,
        {
          threadId: id,
          activeRunId: active,
        },
      );
    }
    await this.#store.deleteThread(id);
    this.#history.delete(id);
  }

  async messages(
    project: string,
    id: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<Page<MessageRecord>> {
    await this.get(project, id);
    return this.#store.listMessages(id, {
      limit: intOption('limit', options.limit, 50, 1, INPUT_LIMITS.pageSize),
      cursor: options.cursor,
    });
  }

  async runs(
    project: string,
    id: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<Page<RunRecord>> {
    await this.get(project, id);
    return this.#store.listRuns(id, {
      limit: intOption('limit', options.limit, 50, 1, INPUT_LIMITS.pageSize),
      cursor: options.cursor,
    });
  }

  /** Deletes threads past their ttl that no run holds; returns how many. */
  async sweepExpired(limit = 1000): Promise<number> {
    let deleted = 0;
    for (const thread of await this.#store.listExpiredThreads(this.#clock.now(), limit)) {
      if ((await this.#leases.holder(thread.id)) !== undefined) continue;
      if (await this.#store.deleteThread(thread.id)) deleted++;
      this.#history.delete(thread.id);
    }
    return deleted;
  }
}
