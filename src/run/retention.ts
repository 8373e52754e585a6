/**
 * Retention: a background sweep that deletes runs, their messages and threads older than
 * `retention.days` (a project's `limits.retention.days` wins; 0 keeps everything). "Older" means:
 * a thread whose last message (or creation) is before the cutoff, with its messages and runs,
 * unless a run on it is queued or running or its lease is held; a stateless run that finished
 * before the cutoff. Runs on a kept thread stay with it.
 *
 * The sweep never stalls requests: it works project by project in batches of `batchSize` threads
 * examined (each deleting step one short transaction in the store), and yields to the event loop
 * between batches. In a cluster one node sweeps at a time (a duty lock in Redis, renewed between
 * batches). Deleted counts are metrics (`agentpool_retention_deleted_total{kind}`), a
 * `retention.swept` event per sweep and `GET /v1/pool/stats`' `retention`.
 */
import type { DutyLock } from '../coordination/duty-lock.ts';
import type { ThreadLeases } from '../coordination/thread-leases.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../events/bus.ts';
import type { ProjectStore } from '../store/project-ports.ts';
import type { RetentionDeleted, RunStore } from '../store/ports.ts';
import type { ThreadHistoryCache } from './history-cache.ts';
import {
  type ResolvedRetentionOptions,
  type RetentionOptions,
  resolveRetentionOptions,
} from './retention-options.ts';

const DAY_MS = 86_400_000;
/** The duty's name in the cluster. */
const DUTY = 'retention';
/** How long a sweeping node holds the duty between two renewals (one batch renews it). */
const HOLD_MS = 120_000;
/** Projects read per page while sweeping. */
const PROJECTS_PAGE = 100;

/** What one sweep deleted. */
export interface RetentionSweep extends RetentionDeleted {
  /** Stateless runs deleted, besides the runs of deleted threads (`runs` counts both). */
  readonly statelessRuns: number;
  /** Projects swept. */
  readonly projects: number;
  readonly startedAt: number;
  readonly finishedAt: number;
}

/** Emitted after each sweep this node made. */
export interface RetentionSweptEvent extends Omit<RetentionSweep, 'startedAt' | 'finishedAt'> {
  readonly type: 'retention.swept';
  readonly at: number;
  readonly durationMs: number;
}

/** What `GET /v1/pool/stats` shows of retention on this node. */
export interface RetentionStats {
  readonly days: number;
  readonly intervalMs: number;
  readonly batchSize: number;
  /** Sweeps this node made since start. */
  readonly sweeps: number;
  /** True while this node sweeps. */
  readonly sweeping: boolean;
  readonly lastSweep: RetentionSweep | null;
  /** Deleted by this node's sweeps since start. */
  readonly deleted: { readonly threads: number; readonly messages: number; readonly runs: number };
}

/** What retention works with. */
export interface RetentionDeps {
  runs: RunStore;
  projects: ProjectStore;
  leases: ThreadLeases;
  /** Deleted threads leave this node's history cache. */
  history: ThreadHistoryCache;
  /** Forgets the replayable events of the project's runs finished before the cutoff (RunManager.forgetFinishedBefore). */
  forgetRuns: (project: string, before: number) => void;
  duties: DutyLock;
  clock: Clock;
  bus: EventSink<RetentionSweptEvent>;
  log: Logger;
}

/** The background retention sweep of one pool. */
export class Retention {
  readonly options: ResolvedRetentionOptions;
  readonly #deps: RetentionDeps;
  readonly #deleted = { threads: 0, messages: 0, runs: 0 };
  #sweeps = 0;
  #lastSweep: RetentionSweep | null = null;
  #running: Promise<RetentionSweep | null> | undefined;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: RetentionDeps, options?: RetentionOptions) {
    this.options = resolveRetentionOptions(options);
    this.#deps = deps;
  }

  /** Sweeps every `intervalMs` (not at all with 0). */
  start(): void {
    if (this.options.intervalMs === 0 || this.#closed) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.sweep()
        .catch((err: unknown) => this.#deps.log.error({ err }, 'retention sweep failed'))
        .finally(() => this.start());
    }, this.options.intervalMs);
  }

  /**
   * Sweeps now (or joins the sweep under way); null when another node of the cluster holds the
   * duty. Rejects with the store's error when a step fails (what was deleted stays deleted).
   */
  async sweep(): Promise<RetentionSweep | null> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** This node's figures. */
  stats(): RetentionStats {
    const { days, intervalMs, batchSize } = this.options;
    return {
      days,
      intervalMs,
      batchSize,
      sweeps: this.#sweeps,
      sweeping: this.#running !== undefined,
      lastSweep: this.#lastSweep,
      deleted: { ...this.#deleted },
    };
  }

  /** Stops sweeping: the sweep under way ends after its current batch. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    await this.#running?.catch(() => undefined);
  }

  async #sweep(): Promise<RetentionSweep | null> {
    const { duties, clock, log } = this.#deps;
    if (!(await duties.hold(DUTY, HOLD_MS))) return null;
    const startedAt = clock.now();
    const total = { threads: 0, messages: 0, runs: 0, statelessRuns: 0, projects: 0 };
    try {
      let going = true;
      let cursor: string | undefined;
      do {
        const page = await this.#deps.projects.listProjects({ limit: PROJECTS_PAGE, cursor });
        for (const project of page.data) {
          const days = project.limits.retention?.days ?? this.options.days;
          if (days === 0) continue;
          going = await this.#sweepProject(project.id, startedAt - days * DAY_MS, total);
          total.projects++;
          if (!going) break;
        }
        cursor = page.nextCursor ?? undefined;
      } while (going && cursor !== undefined);
    } finally {
      await duties
        .release(DUTY)
        .catch((err: unknown) => log.warn({ err }, 'releasing the retention duty failed'));
      this.#record(total, startedAt);
    }
    return this.#lastSweep;
  }

  /** One project's threads, then its stateless runs; false when the sweep must stop. */
  async #sweepProject(
    project: string,
    before: number,
    total: { threads: number; messages: number; runs: number; statelessRuns: number },
  ): Promise<boolean> {
    const { runs, leases, history, forgetRuns } = this.#deps;
    const limit = this.options.batchSize;
    forgetRuns(project, before);
    let cursor: string | undefined;
    do {
      const step = await runs.listRetainedThreads(project, before, { limit, cursor });
      const idle: string[] = [];
      for (const id of step.ids) if ((await leases.holder(id)) === undefined) idle.push(id);
      if (idle.length > 0) {
        const deleted = await runs.deleteRetainedThreads(idle, before);
        total.threads += deleted.threads;
        total.messages += deleted.messages;
        total.runs += deleted.runs;
        for (const id of idle) history.delete(id);
      }
      cursor = step.nextCursor ?? undefined;
      if (!(await this.#between())) return false;
    } while (cursor !== undefined);
    for (;;) {
      const deleted = await runs.deleteRetainedRuns(project, before, limit);
      total.runs += deleted;
      total.statelessRuns += deleted;
      if (!(await this.#between())) return false;
      if (deleted < limit) return true;
    }
  }

  /** Between two batches: lets requests run, and renews the duty; false to stop. */
  async #between(): Promise<boolean> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#closed) return false;
    if (await this.#deps.duties.hold(DUTY, HOLD_MS)) return true;
    this.#deps.log.warn('the retention duty went to another node mid-sweep: this node stops sweeping');
    return false;
  }

  #record(
    total: { threads: number; messages: number; runs: number; statelessRuns: number; projects: number },
    startedAt: number,
  ): void {
    const finishedAt = this.#deps.clock.now();
    this.#sweeps++;
    this.#deleted.threads += total.threads;
    this.#deleted.messages += total.messages;
    this.#deleted.runs += total.runs;
    this.#lastSweep = { ...total, startedAt, finishedAt };
    this.#deps.bus.emit({
      type: 'retention.swept',
      at: finishedAt,
      durationMs: finishedAt - startedAt,
      ...total,
    });
    if (total.threads + total.runs > 0) {
      this.#deps.log.info(total, 'retention deleted data older than the retention period');
    }
  }
}
