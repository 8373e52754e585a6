/**
 * The working-set checkpoint: each node saves the agents it has resident (their tiers, use counts
 * and recent frequency) and the eviction policy's frequency sketch to the store every
 * `intervalMs` and at shutdown, keyed by its node id; at start it restores the sketch and
 * prewarms the most valuable of those agents, up to `warmupCount`, and only then says ready. A
 * restarted node so serves its regulars warm from its first request, and TinyLFU's admission
 * remembers what was popular instead of starting from zero.
 *
 * Nothing here runs per run: a save reads the resident instances once per interval.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { isAgentPoolError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../events/bus.ts';
import type { WorkingSetCheckpoint, WorkingSetEntry, WorkingSetStore } from '../store/working-set-ports.ts';
import {
  type CheckpointOptions,
  type ResolvedCheckpointOptions,
  resolveCheckpointOptions,
} from './checkpoint-options.ts';
import type { InstancePool } from './pool.ts';
import type { CheckpointSavedEvent, WarmedEvent } from './scaling-events.ts';

/** Where the checkpointer stands: `warming` until the start's prewarm is done, then `ready`. */
export type CheckpointStatus = 'disabled' | 'warming' | 'ready';

/** What the start's prewarm did. */
export interface WarmupReport {
  /** When the checkpoint found was saved, or null when the node had none. */
  savedAt: number | null;
  warmed: number;
  skipped: number;
  failed: number;
  sketchRestored: boolean;
  durationMs: number;
}

/** Figures for stats and metrics. */
export interface CheckpointStats {
  status: CheckpointStatus;
  /** The key of this node's checkpoint, or null when checkpointing is off. */
  node: string | null;
  saves: number;
  saveFailures: number;
  /** Epoch ms of the last successful save, or null. */
  lastSavedAt: number | null;
  /** Agents in the last checkpoint saved. */
  lastSavedAgents: number;
  warmup: WarmupReport | null;
}

/** What the checkpointer works with. */
export interface CheckpointDeps {
  pool: InstancePool;
  store: WorkingSetStore;
  bus: EventSink<CheckpointSavedEvent | WarmedEvent>;
  clock: Clock;
  log: Logger;
  /** The key of this node's checkpoint; null turns checkpointing off (a cluster node without a stable id). */
  node: string | null;
  /** Hands the checkpoint's entries over before the prewarm (the tier classifier restores its classes). */
  restore?: (entries: readonly WorkingSetEntry[]) => void;
}

/** Codes of an agent that is gone or cannot be prewarmed for a reason of its own, not a failure. */
const GONE = new Set(['AGENT_NOT_FOUND', 'PROJECT_NOT_FOUND', 'AGENT_PAUSED']);

/**
 * Most valuable first: pinned (hot) agents, then by recent frequency, lifetime uses, recency.
 * Frequency leads because it is what TinyLFU admits by: the agents it would keep.
 */
export function byValue(a: WorkingSetEntry, b: WorkingSetEntry): number {
  return (
    Number(b.pinned) - Number(a.pinned) ||
    b.frequency - a.frequency ||
    b.uses - a.uses ||
    b.lastUsedAt - a.lastUsedAt
  );
}

/** Saves and restores one node's working set. */
export class WorkingSetCheckpointer {
  readonly options: ResolvedCheckpointOptions;
  readonly node: string | null;
  readonly #deps: CheckpointDeps;
  /** Uses of agents in the checkpoint found at start, added to their new instances' at each save (bounded by that checkpoint). */
  readonly #carried = new Map<string, number>();
  #status: CheckpointStatus;
  #warmup: Promise<WarmupReport> | undefined;
  #warmupReport: WarmupReport | null = null;
  #saving: Promise<unknown> = Promise.resolve();
  #timer: TimerHandle | undefined;
  #saves = 0;
  #saveFailures = 0;
  #lastSavedAt: number | null = null;
  #lastSavedAgents = 0;
  #closed = false;

  constructor(deps: CheckpointDeps, options: CheckpointOptions = {}) {
    this.options = resolveCheckpointOptions(options);
    this.#deps = deps;
    this.node = this.options.enabled ? deps.node : null;
    this.#status = this.node === null ? 'disabled' : 'warming';
  }

  get status(): CheckpointStatus {
    return this.#status;
  }

  /**
   * Restores the sketch and prewarms the checkpointed working set (once; later calls get the
   * same promise), then saves every `intervalMs`. Never rejects: a store that cannot be read
   * leaves the node cold, and ready, with a warning.
   */
  start(): Promise<WarmupReport | null> {
    if (this.node === null) return Promise.resolve(null);
    if (this.#warmup !== undefined) return this.#warmup;
    // Readiness waits for the prewarm at most warmupTimeoutMs; the prewarm itself goes on.
    const timeout = this.#deps.clock.setTimeout(() => {
      if (this.#status !== 'warming') return;
      this.#status = 'ready';
      this.#deps.log.warn(
        { node: this.node, warmupTimeoutMs: this.options.warmupTimeoutMs },
        'the prewarm is taking longer than warmupTimeoutMs: ready before it is done',
      );
    }, this.options.warmupTimeoutMs);
    this.#warmup = this.#warm(this.node).then((report) => {
      timeout.cancel();
      this.#warmupReport = report;
      if (!this.#closed) this.#status = 'ready';
      this.#schedule();
      return report;
    });
    return this.#warmup;
  }

  /**
   * Saves the working set now (saves never overlap: this one waits for the one in flight).
   * Resolves with the checkpoint saved, or undefined when checkpointing is off; rejects with the
   * store's error.
   */
  save(reason: CheckpointSavedEvent['reason'] = 'manual'): Promise<WorkingSetCheckpoint | undefined> {
    const node = this.node;
    if (node === null) return Promise.resolve(undefined);
    const next = this.#saving.then(() => this.#save(node, reason));
    this.#saving = next.catch(() => undefined);
    return next;
  }

  stats(): CheckpointStats {
    return {
      status: this.#status,
      node: this.node,
      saves: this.#saves,
      saveFailures: this.#saveFailures,
      lastSavedAt: this.#lastSavedAt,
      lastSavedAgents: this.#lastSavedAgents,
      warmup: this.#warmupReport,
    };
  }

  /**
   * Stops the timer and saves one last time, while the instances are still resident (call it
   * before the pool closes). A node stopped before its prewarm finished keeps its previous
   * checkpoint: the half-warmed set would be a worse one. Never rejects (a failure is logged).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#timer?.cancel();
    if (this.node === null || this.#warmupReport === null) {
      await this.#saving;
      return;
    }
    try {
      await this.save('shutdown');
    } catch {
      // logged by #save
    }
  }

  async #save(node: string, reason: CheckpointSavedEvent['reason']): Promise<WorkingSetCheckpoint> {
    const { pool, store, clock, bus, log } = this.#deps;
    const entries = pool.workingSet().map((e) => {
      const carried = this.#carried.get(e.agentId);
      return carried === undefined ? e : { ...e, uses: e.uses + carried };
    });
    entries.sort(byValue);
    const checkpoint: WorkingSetCheckpoint = {
      node,
      savedAt: clock.now(),
      entries,
      sketch: pool.exportSketch(),
    };
    try {
      await store.saveWorkingSet(checkpoint);
    } catch (err) {
      this.#saveFailures++;
      log.warn({ err, node, reason }, 'saving the working-set checkpoint failed');
      throw err;
    }
    this.#saves++;
    this.#lastSavedAt = checkpoint.savedAt;
    this.#lastSavedAgents = entries.length;
    bus.emit({ type: 'pool.checkpointed', at: checkpoint.savedAt, node, agents: entries.length, reason });
    return checkpoint;
  }

  async #warm(node: string): Promise<WarmupReport> {
    const { pool, store, clock, bus, log } = this.#deps;
    const started = clock.now();
    const t0 = performance.now();
    const report: WarmupReport = {
      savedAt: null,
      warmed: 0,
      skipped: 0,
      failed: 0,
      sketchRestored: false,
      durationMs: 0,
    };
    let checkpoint: WorkingSetCheckpoint | undefined;
    try {
      checkpoint = await store.loadWorkingSet(node);
    } catch (err) {
      log.warn({ err, node }, 'reading the working-set checkpoint failed: starting cold');
    }
    if (checkpoint !== undefined) {
      report.savedAt = checkpoint.savedAt;
      if (checkpoint.sketch !== null) report.sketchRestored = pool.importSketch(checkpoint.sketch);
      for (const e of checkpoint.entries) this.#carried.set(e.agentId, e.uses);
      this.#deps.restore?.(checkpoint.entries);
      const limit = Math.min(this.options.warmupCount, Math.max(0, pool.capacity - 1));
      const queue = checkpoint.entries
        .filter((e) => e.tier !== 'cold')
        .sort(byValue)
        .slice(0, limit);
      const next = async (): Promise<void> => {
        for (let e = queue.shift(); e !== undefined && !this.#closed; e = queue.shift()) {
          try {
            await pool.prewarm(e.project, e.agentId);
            report.warmed++;
          } catch (err) {
            if (isAgentPoolError(err) && GONE.has(err.code)) {
              report.skipped++;
            } else {
              report.failed++;
              log.warn({ err, project: e.project, agent: e.name }, 'prewarming a checkpointed agent failed');
            }
          }
        }
      };
      await Promise.all(Array.from({ length: this.options.warmupConcurrency }, next));
    }
    report.durationMs = performance.now() - t0;
    bus.emit({ type: 'pool.warmed', at: clock.now(), node, ...report });
    // A lifecycle line when there was something to restore; a first start has nothing to say.
    if (report.savedAt === null) log.debug({ node }, 'no working-set checkpoint: starting cold');
    else log.info({ node, ...report, startedAt: started }, 'working set prewarmed from its checkpoint');
    return report;
  }

  #schedule(): void {
    if (this.#closed || this.node === null) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      this.save('interval')
        .catch(() => undefined) // logged by #save; the next interval tries again
        .finally(() => this.#schedule());
    }, this.options.intervalMs);
  }
}
