/**
 * Tiers that mean something: `auto` agents are classified from their traffic. Every `intervalMs`
 * each tracked agent's score becomes `score × decay + uses since the last classification` (uses
 * of its resident instance, and of its one-shot instances while cold), and:
 *
 * - hot (pinned, prewarmed): the best-scored agents with a score ≥ `hotMinScore`, at most
 *   `maxHot`; a hot agent stays hot while its score is ≥ `hotMinScore / 2`;
 * - cold (one-shot instances): a score < `coldMaxScore`; a cold agent goes back to warm once its
 *   score is ≥ `2 × coldMaxScore`;
 * - warm: the rest, and every `auto` agent not yet classified.
 *
 * The bands between the thresholds are the hysteresis: an agent near a boundary does not flap.
 * Each move is an `instance.tier_changed` event and is applied to the resident instance at once
 * (pool.applyTier). A project's default tier, when set, applies to its `auto` agents instead of
 * the classification. Nothing here runs per run: resident use counts are read once per interval;
 * a cold agent's one-shot use costs one Map lookup at its release.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../events/bus.ts';
import type { Agent } from '../registry/registry.ts';
import type { WorkingSetEntry } from '../store/working-set-ports.ts';
import type { InstancePool, TierAssigner } from './pool.ts';
import type { TierChangedEvent } from './scaling-events.ts';
import type { ResolvedTierOptions, ServingTier } from './tier-options.ts';

/** What the classifier remembers of one `auto` agent. */
interface Tracked {
  project: string;
  name: string;
  score: number;
  tier: ServingTier;
  /** Uses counted since the last classification. */
  pending: number;
  /** The resident instance whose uses were last read, and its count then. */
  instanceId: string | null;
  instanceUses: number;
  /** Its tier is its project's default: not classified. */
  fixed: boolean;
}

/** One agent's move between tiers. */
export interface TierChange {
  project: string;
  agentId: string;
  name: string;
  from: ServingTier;
  to: ServingTier;
  score: number;
}

/** Figures for stats and metrics. */
export interface TierStats {
  classify: boolean;
  /** Tracked `auto` agents by the tier they are classified into. */
  classified: Record<ServingTier, number>;
  /** Moves since start, by destination tier. */
  moves: Record<ServingTier, number>;
  /** Live instances and leases per tier, with their limits. */
  byTier: ReturnType<InstancePool['tierCounts']>;
}

/** What the classifier works with. */
export interface TierClassifierDeps {
  pool: InstancePool;
  bus: EventSink<TierChangedEvent>;
  clock: Clock;
  log: Logger;
  /**
   * A project's default tier for its `auto` agents, if it set one (`limits.tiers.default`); read at
   * activation, so the caller caches it.
   */
  projectTier?: (project: string) => ServingTier | undefined | Promise<ServingTier | undefined>;
}

/** Classifies `auto` agents into hot, warm and cold from their traffic. */
export class TierClassifier implements TierAssigner {
  readonly options: ResolvedTierOptions;
  readonly #deps: TierClassifierDeps;
  /** Bounded by `maxTracked`. */
  readonly #tracked = new Map<string, Tracked>();
  readonly #moves: Record<ServingTier, number> = { hot: 0, warm: 0, cold: 0 };
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: TierClassifierDeps) {
    this.options = deps.pool.options.tiers;
    this.#deps = deps;
  }

  /** Starts classifying every `intervalMs` (when `classify` is on). */
  start(): void {
    if (!this.options.classify || this.#closed || this.#timer !== undefined) return;
    this.#schedule();
  }

  tierOf(agent: Agent): ServingTier | undefined | Promise<ServingTier | undefined> {
    const own = this.#deps.projectTier?.(agent.project);
    if (own instanceof Promise) return own.then((tier) => this.#settle(agent, tier));
    return this.#settle(agent, own);
  }

  noteOneShot(agent: Agent): void {
    const t = this.#tracked.get(agent.id);
    if (t !== undefined) t.pending++;
    else if (this.options.classify) this.#track(agent.id, agent.project, agent.name).pending++;
  }

  /**
   * Takes back the classes of a working-set checkpoint's `auto` agents (before the start's
   * prewarm), so a hot one is pinned again and a cold one stays one-shot from the first request:
   * hot ones at `hotMinScore`, cold ones at 0. Nothing when not classifying.
   */
  restore(entries: readonly WorkingSetEntry[]): void {
    if (!this.options.classify) return;
    for (const e of entries) {
      if (e.auto !== true || (e.tier !== 'hot' && e.tier !== 'cold') || this.#tracked.has(e.agentId))
        continue;
      if (this.#tracked.size >= this.options.maxTracked) break;
      const t = this.#track(e.agentId, e.project, e.name);
      t.tier = e.tier;
      t.score = e.tier === 'hot' ? this.options.hotMinScore : 0;
    }
  }

  /** The tier an agent is classified into now (undefined: not tracked, so warm). */
  classified(agentId: string): ServingTier | undefined {
    return this.#tracked.get(agentId)?.tier;
  }

  /** Classifies now (the timer calls it); applies and announces the moves, and returns them. */
  classify(): TierChange[] {
    if (this.#closed) return [];
    const { pool, clock, bus, log } = this.#deps;
    const o = this.options;
    const residents = pool.autoResidents();
    for (const r of residents) {
      const t = this.#tracked.get(r.agent.id) ?? this.#track(r.agent.id, r.agent.project, r.agent.name);
      const before = t.instanceId === r.instanceId ? t.instanceUses : 0;
      t.pending += Math.max(0, r.uses - before);
      t.instanceId = r.instanceId;
      t.instanceUses = r.uses;
    }
    for (const t of this.#tracked.values()) {
      t.score = t.score * o.decay + t.pending;
      t.pending = 0;
    }
    // Hot: those that stay (hysteresis), then the best newcomers, up to maxHot.
    const next = new Map<string, ServingTier>();
    let hot = 0;
    for (const [id, t] of this.#tracked) {
      if (t.fixed) next.set(id, t.tier);
      else if (t.tier === 'hot' && t.score >= o.hotMinScore / 2 && hot < o.maxHot) {
        next.set(id, 'hot');
        hot++;
      }
    }
    if (hot < o.maxHot) {
      const candidates = [...this.#tracked]
        .filter(([id, t]) => !next.has(id) && !t.fixed && t.score >= o.hotMinScore)
        .sort((a, b) => b[1].score - a[1].score);
      for (const [id] of candidates.slice(0, o.maxHot - hot)) next.set(id, 'hot');
    }
    const changes: TierChange[] = [];
    for (const [agentId, t] of this.#tracked) {
      const to =
        next.get(agentId) ??
        (t.tier === 'cold'
          ? t.score >= 2 * o.coldMaxScore
            ? 'warm'
            : 'cold'
          : t.score < o.coldMaxScore
            ? 'cold'
            : 'warm');
      if (to === t.tier) continue;
      changes.push({ project: t.project, agentId, name: t.name, from: t.tier, to, score: t.score });
      t.tier = to;
    }
    const at = clock.now();
    for (const c of changes) {
      this.#moves[c.to]++;
      const resident = pool.applyTier(c.agentId, c.to);
      if (!resident && c.to === 'hot') {
        pool.prewarm(c.project, c.agentId).catch((err: unknown) => {
          log.warn({ err, project: c.project, agent: c.name }, 'prewarming an agent classified hot failed');
        });
      }
      bus.emit({ type: 'instance.tier_changed', at, ...c });
    }
    // Residents activated before their agent was first classified take its tier silently.
    for (const r of residents) {
      const t = this.#tracked.get(r.agent.id);
      if (r.assigned === undefined && t !== undefined && !t.fixed && t.tier === 'warm') {
        pool.applyTier(r.agent.id, 'warm');
      }
    }
    if (changes.length > 0) log.info({ moves: changes.length }, 'auto agents re-classified');
    this.#prune();
    return changes;
  }

  stats(): TierStats {
    const classified: Record<ServingTier, number> = { hot: 0, warm: 0, cold: 0 };
    for (const t of this.#tracked.values()) classified[t.tier]++;
    return {
      classify: this.options.classify,
      classified,
      moves: { ...this.#moves },
      byTier: this.#deps.pool.tierCounts(),
    };
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  /** The tier of an agent whose project may set one: the project's is fixed, else the classified one. */
  #settle(agent: Agent, own: ServingTier | undefined): ServingTier | undefined {
    const t = this.#tracked.get(agent.id);
    if (own !== undefined) {
      const fixed = t ?? this.#track(agent.id, agent.project, agent.name);
      fixed.fixed = true;
      fixed.tier = own;
      return own;
    }
    if (t?.fixed === true) {
      t.fixed = false; // the project's default was cleared: classified from now on, from warm
      t.tier = 'warm';
    }
    return this.options.classify ? t?.tier : undefined;
  }

  #track(agentId: string, project: string, name: string): Tracked {
    const t: Tracked = {
      project,
      name,
      score: 0,
      tier: 'warm',
      pending: 0,
      instanceId: null,
      instanceUses: 0,
      fixed: false,
    };
    this.#tracked.set(agentId, t);
    return t;
  }

  /**
   * Past `maxTracked`, forgets the least scored agents without a resident instance (they are
   * warm again at their next use, then classified anew). Also forgets warm agents whose score
   * decayed to nothing: warm is what an untracked agent is anyway.
   */
  #prune(): void {
    for (const [id, t] of this.#tracked) {
      if (t.tier === 'warm' && t.score < 1e-3 && this.#deps.pool.instance(t.project, id) === undefined) {
        this.#tracked.delete(id);
      }
    }
    const excess = this.#tracked.size - this.options.maxTracked;
    if (excess <= 0) return;
    const order = [...this.#tracked].sort((a, b) => a[1].score - b[1].score);
    let dropped = 0;
    for (const [id, t] of order) {
      if (dropped >= excess) break;
      if (this.#deps.pool.instance(t.project, id) !== undefined) continue;
      this.#tracked.delete(id);
      dropped++;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      try {
        this.classify();
      } catch (err) {
        this.#deps.log.error({ err }, 'tier classification failed');
      }
      this.#schedule();
    }, this.options.intervalMs);
  }
}
