/**
 * Preloading from usage (docs/operations.md, "Usage and preloading"). Two mechanisms, both going
 * through the pool's preload (never a request's place, never a busy, hot or more valuable instance):
 *
 * - **fill**: every `intervalMs`, the idle capacity of the pool (`maxActive − live − reserve`) is
 *   filled with the inactive agents whose priority score (priority-score.ts) over their persisted
 *   usage is at least `threshold`, highest first;
 * - **prefetch**: the follow table (follow-table.ts) learns from finished runs which agent tends to
 *   follow which on a thread, and a lease on A starts the activation of the agents that follow it.
 *
 * The run path pays one Map lookup per lease (the follow table) and a few Map operations per
 * finished run on a thread; everything else runs on the injected clock's timers, unref'd.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { BusEvent, EventSink } from '../events/bus.ts';
import type { AgentUsage } from '../registry/usage.ts';
import type { AgentStore, AgentUsageRecord, RunRecord } from '../store/ports.ts';
import { type AgentRef, FollowTable } from './follow-table.ts';
import type { AgentInstance } from './instance.ts';
import type { InstancePool, PreloadCounts, PreloadOutcome, PreloadSource } from './pool.ts';
import type { ResolvedPreloadOptions } from './preload-options.ts';
import { type PriorityScore, priorityScore } from './priority-score.ts';

/** Emitted when an agent was activated ahead of use. */
export type PreloadEvent = BusEvent & {
  type: 'agent.preloaded';
  project: string;
  agentId: string;
  name: string;
  /** `preload` (idle capacity filled by score) or `prefetch` (it follows the agent just acquired). */
  source: PreloadSource;
  /** The priority score it was preloaded with (source `preload`). */
  score?: number;
  /** The agent whose lease prefetched it (source `prefetch`). */
  after?: string;
};

/** Why preloads did not activate, by outcome. */
export type PreloadSkips = Record<Exclude<PreloadOutcome, 'activated' | 'resident'>, number>;

/** What the preloader did since start. */
export interface PreloadStats {
  enabled: boolean;
  threshold: number;
  /** Activated (issued), then served a lease (used) or left without one (wasted), by source. */
  counts: Record<PreloadSource, PreloadCounts>;
  /** Preloads that did not activate, by source and reason. */
  skipped: Record<PreloadSource, PreloadSkips>;
  /** The last fill: when, candidates read, those at or above the threshold and inactive, preloaded. */
  lastFill: { at: number; candidates: number; eligible: number; preloaded: number } | null;
  /** Agents whose followers are tracked, and threads whose last agent is remembered. */
  follows: { trackedAgents: number; trackedThreads: number };
}

/** What the preloader is built from. */
export interface PreloaderDeps {
  pool: InstancePool;
  /** Where persisted usage is read (the fill's candidates). */
  store: AgentStore;
  /** Usage noted and not yet written, added to what the store says. */
  usage: AgentUsage;
  bus: EventSink<PreloadEvent>;
  clock: Clock;
  log: Logger;
}

/** A candidate of a fill, scored. */
export interface ScoredCandidate {
  readonly usage: AgentUsageRecord;
  readonly priority: PriorityScore;
}

const noSkips = (): PreloadSkips => ({ 'no-room': 0, refused: 0, failed: 0, closed: 0 });

/** Fills idle capacity by score and prefetches followers (see the file header). */
export class Preloader {
  readonly options: ResolvedPreloadOptions;
  readonly #deps: PreloaderDeps;
  readonly #follows: FollowTable;
  readonly #skipped: Record<PreloadSource, PreloadSkips> = { preload: noSkips(), prefetch: noSkips() };
  /** Agents not to try before the time given (a preload skipped or failed); bounded by maxTrackedAgents. */
  readonly #notBefore = new Map<string, number>();
  /** Prefetches in flight, by agent id; bounded by the agents followed. */
  readonly #inFlight = new Set<string>();
  #lastFill: PreloadStats['lastFill'] = null;
  #filling: Promise<number> | undefined;
  #fillTimer: TimerHandle | undefined;
  #decayTimer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: PreloaderDeps, options: ResolvedPreloadOptions) {
    this.options = options;
    this.#deps = deps;
    this.#follows = new FollowTable(options);
  }

  /** Starts the timers and the prefetch on lease (when enabled). */
  start(): void {
    if (!this.options.enabled || this.#closed) return;
    if (this.options.prefetch) {
      this.#deps.pool.setLeaseHook(this.#onLease);
      this.#scheduleDecay();
    }
    this.#scheduleFill();
  }

  /** Learns from a finished run (a run on a thread only): who followed whom. */
  runFinished(run: RunRecord): void {
    if (run.threadId === null || !this.options.prefetch || !this.options.enabled) return;
    this.#follows.observe(
      run.threadId,
      { project: run.project, id: run.agentId, name: run.agentName },
      run.createdAt,
      run.finishedAt ?? run.createdAt,
    );
  }

  /**
   * One fill of idle capacity: reads the candidates, scores them, and preloads the inactive ones at
   * or above the threshold, best first, while there is room. Returns how many were activated. A
   * fill asked for while one runs returns that one's result.
   */
  fill(): Promise<number> {
    if (this.#filling !== undefined) return this.#filling;
    const filling = this.#fill().finally(() => {
      this.#filling = undefined;
    });
    this.#filling = filling;
    return filling;
  }

  /**
   * The scored candidates of a fill right now (persisted usage plus what is pending), best first,
   * whether or not active; for the stats API and tests.
   */
  async candidates(): Promise<ScoredCandidate[]> {
    const { store, usage, clock } = this.#deps;
    const page = await store.listUsage({ sort: 'uses', limit: this.options.candidates });
    const merged = page.data.map((u) => usage.withPending(u));
    let maxUses = 0;
    for (const u of merged) if (u.uses > maxUses) maxUses = u.uses;
    const now = clock.now();
    return merged
      .map((u) => ({ usage: u, priority: priorityScore(u, maxUses, now, this.options.recencyHalfLifeMs) }))
      .sort((a, b) => b.priority.score - a.priority.score);
  }

  /**
   * The priority of one agent's usage among the current candidates (its frequency is relative to
   * the most used agent, read from the store).
   */
  async score(usage: AgentUsageRecord): Promise<PriorityScore> {
    const [top] = (await this.#deps.store.listUsage({ sort: 'uses', limit: 1 })).data;
    const maxUses = Math.max(usage.uses, top?.uses ?? 0);
    return priorityScore(usage, maxUses, this.#deps.clock.now(), this.options.recencyHalfLifeMs);
  }

  /** The agents that followed `agentId` on threads (decayed counts), most first. */
  followers(agentId: string): { agent: AgentRef; count: number }[] {
    return this.#follows.followers(agentId);
  }

  stats(): PreloadStats {
    return {
      enabled: this.options.enabled,
      threshold: this.options.threshold,
      counts: this.#deps.pool.preloadStats(),
      skipped: { preload: { ...this.#skipped.preload }, prefetch: { ...this.#skipped.prefetch } },
      lastFill: this.#lastFill,
      follows: { trackedAgents: this.#follows.trackedAgents, trackedThreads: this.#follows.trackedThreads },
    };
  }

  /** Forgets a deleted project's follows. */
  forgetProject(project: string): void {
    this.#follows.forgetProject(project);
  }

  /** Stops the timers and the prefetch on lease; a fill in flight finishes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#fillTimer?.cancel();
    this.#decayTimer?.cancel();
    this.#deps.pool.setLeaseHook(undefined);
  }

  // ── internals ────────────────────────────────────────────────────────────

  /** Called on every lease: one Map lookup unless the agent has followers to prefetch. */
  readonly #onLease = (instance: AgentInstance): void => {
    const next = this.#follows.next(instance.agent.id);
    if (next === undefined) return;
    for (const agent of next) this.#prefetch(agent, instance.agent.name);
  };

  #prefetch(agent: AgentRef, after: string): void {
    const { pool, clock } = this.#deps;
    if (this.#closed || this.#inFlight.has(agent.id) || pool.isActive(agent.id)) return;
    const notBefore = this.#notBefore.get(agent.id);
    if (notBefore !== undefined) {
      if (clock.now() < notBefore) return;
      this.#notBefore.delete(agent.id);
    }
    this.#inFlight.add(agent.id);
    pool
      .preload(agent.project, agent.name, 'prefetch')
      .then((outcome) => this.#settled(agent, 'prefetch', outcome, { after }))
      .finally(() => this.#inFlight.delete(agent.id))
      .catch(() => undefined); // preload never rejects; #settled only counts and emits
  }

  async #fill(): Promise<number> {
    const { pool, clock } = this.#deps;
    const stats = pool.stats();
    let room = stats.maxActive - stats.active - stats.waiting - this.options.reserve;
    const at = clock.now();
    if (room <= 0) {
      this.#lastFill = { at, candidates: 0, eligible: 0, preloaded: 0 };
      return 0;
    }
    const scored = await this.candidates();
    const eligible = scored.filter(
      (c) =>
        c.priority.score >= this.options.threshold &&
        !pool.isActive(c.usage.agentId) &&
        !((this.#notBefore.get(c.usage.agentId) ?? 0) > clock.now()),
    );
    let preloaded = 0;
    for (const c of eligible) {
      if (room <= 0 || preloaded >= this.options.maxPerInterval || this.#closed) break;
      const u = c.usage;
      const outcome = await pool.preload(u.project, u.name, 'preload');
      this.#settled({ project: u.project, id: u.agentId, name: u.name }, 'preload', outcome, {
        score: c.priority.score,
      });
      if (outcome === 'activated') {
        preloaded++;
        room--;
      } else if (outcome === 'no-room' || outcome === 'closed') {
        break;
      }
    }
    this.#lastFill = { at, candidates: scored.length, eligible: eligible.length, preloaded };
    return preloaded;
  }

  /** Counts a preload's outcome, emits `agent.preloaded`, and holds off an agent that could not be preloaded. */
  #settled(
    agent: AgentRef,
    source: PreloadSource,
    outcome: PreloadOutcome,
    extra: { score?: number; after?: string },
  ): void {
    const id = agent.id;
    const { clock, bus, log } = this.#deps;
    if (outcome === 'resident') return;
    if (outcome !== 'activated') {
      this.#skipped[source][outcome]++;
      // A refused agent (cold tier, or admission keeps it out) would be refused again soon: wait a
      // decay interval; a full pool or a failure, retryAfterMs.
      const wait = outcome === 'refused' ? this.options.decayIntervalMs : this.options.retryAfterMs;
      if (this.#notBefore.size >= this.options.maxTrackedAgents) this.#notBefore.clear();
      this.#notBefore.set(id, clock.now() + wait);
      if (outcome === 'failed')
        log.debug({ agent: agent.name, project: agent.project, source }, 'preload failed');
      return;
    }
    bus.emit({
      type: 'agent.preloaded',
      at: clock.now(),
      project: agent.project,
      agentId: id,
      name: agent.name,
      source,
      ...(extra.score !== undefined && { score: extra.score }),
      ...(extra.after !== undefined && { after: extra.after }),
    });
  }

  #scheduleFill(): void {
    if (this.options.intervalMs === 0 || this.#closed) return;
    this.#fillTimer = this.#deps.clock.setTimeout(() => {
      this.fill()
        .catch((err: unknown) => this.#deps.log.warn({ err }, 'preload fill failed'))
        .finally(() => this.#scheduleFill());
    }, this.options.intervalMs);
  }

  #scheduleDecay(): void {
    if (this.#closed) return;
    this.#decayTimer = this.#deps.clock.setTimeout(() => {
      this.#follows.decay();
      this.#scheduleDecay();
    }, this.options.decayIntervalMs);
  }
}
