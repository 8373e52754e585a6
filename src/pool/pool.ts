/**
 * The instance pool: grants leases on live agent instances, activating them on demand from the
 * registry (once per agent however many ask at once), keeping them in the bounded activation
 * cache, and retiring, pausing, idling out and evicting them. `acquire` waits for room when every
 * live instance is busy, up to `acquireTimeoutMs`. A lease on a version other than the active one
 * (a rollout's candidate) gets a one-shot instance of that version, counted like any other.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { isId, newId } from '../core/ids.ts';
import { Histogram } from '../core/metrics.ts';
import { intOption } from '../core/options.ts';
import { SingleFlight } from '../core/single-flight.ts';
import type { Tier } from '../registry/definition.ts';
import type { Agent, AgentRegistry } from '../registry/registry.ts';
import type { StoredSketch, WorkingSetEntry } from '../store/working-set-ports.ts';
import { ActivationCache } from './activation-cache.ts';
import {
  AgentInstance,
  INSTANCE_STATES,
  type InstanceResources,
  type InstanceState,
  type TierCounts,
  type TransitionReason,
} from './instance.ts';
import { Lease } from './lease.ts';
import {
  activationFailed,
  activationTimedOut,
  closedError,
  instanceNotFound,
  pausedError,
  tierSaturated,
} from './pool-errors.ts';
import { type AgentChange, instanceStateChanged, onAgentChanges, type PoolBus } from './pool-events.ts';
import {
  type InstancePoolOptions,
  type ResolvedInstancePoolOptions,
  resolveInstancePoolOptions,
} from './pool-options.ts';
import {
  buildPoolStats,
  buildProjectPoolStats,
  describeInstance,
  type InstanceInfo,
  newPoolCounters,
  ProjectCounterMap,
  type ProjectPoolStats,
  type PoolStats,
} from './pool-stats.ts';
import { Room } from './room.ts';
import { SERVING_TIERS, type ServingTier } from './tier-options.ts';

export type { InstanceEvent, PoolBus } from './pool-events.ts';
export type { InstanceInfo, PoolStats, ProjectPoolStats } from './pool-stats.ts';

/** What the pool is built from. */
export interface InstancePoolDeps {
  registry: AgentRegistry;
  bus: PoolBus;
  clock: Clock;
  /**
   * Resolves an agent's model and tools while its instance initializes; a failure fails the
   * activation with its error (for example `TOOL_NOT_FOUND`), at activation rather than at first use.
   */
  resolveResources?: (agent: Agent) => Promise<InstanceResources>;
  /** Told of each failed activation (failure recovery counts them). */
  onActivationFailed?: (agent: Agent, err: unknown) => void;
  /** The tier failure recovery migrated an agent down to, read at activation. */
  migratedTier?: (agentId: string) => Tier | undefined;
  /** Assigns `auto` agents a tier and hears of their one-shot uses (pool/tiers.ts). */
  tiers?: TierAssigner;
}

/** What the pool asks of the tier classifier: at activation only, never on the warm path. */
export interface TierAssigner {
  /** The tier an `auto` agent serves in now; undefined: warm. */
  tierOf(agent: Agent): ServingTier | undefined | Promise<ServingTier | undefined>;
  /** A one-shot instance of an `auto` agent served a lease (cold uses, which no resident counts). */
  noteOneShot(agent: Agent): void;
}

/** Options of one acquire. */
export interface AcquireOptions {
  /** Overrides the pool's `acquireTimeoutMs` for this call. */
  timeoutMs?: number;
  /** Stops waiting when aborted. */
  signal?: AbortSignal;
  /**
   * A lease on this version of the agent rather than the active one (a rollout's candidate): a
   * one-shot instance, terminated at release. The active version's number acquires as usual.
   * `VERSION_NOT_FOUND` when the agent has no such version.
   */
  version?: number;
}

/** Why an instance was activated ahead of use: filling idle capacity, or following the agent just acquired. */
export type PreloadSource = 'preload' | 'prefetch';

/**
 * What {@link InstancePool.preload} did: `activated`; `resident` (live already, or being
 * activated); `no-room` (no free place, and the policy valued no idle resident less); `refused`
 * (admission kept it out, or its tier is cold: it left at once); `failed` (the activation failed);
 * `closed`.
 */
export type PreloadOutcome = 'activated' | 'resident' | 'no-room' | 'refused' | 'failed' | 'closed';

/** Preloads and prefetches since start: activated, then served a lease (`used`) or left without one (`wasted`). */
export interface PreloadCounts {
  issued: number;
  used: number;
  wasted: number;
}

/** An activation in flight. */
interface Activation {
  project: string;
  /** The reference it was asked by (id or name). */
  ref: string;
  agentId?: string;
  /**
   * When its current stretch of work began (the store read, then the build after room was found);
   * undefined while it waits for room, which `acquireTimeoutMs` bounds instead.
   */
  since: number | undefined;
  /** Rejects the await in progress: the health monitor gave up on the activation. */
  abort: ((err: AgentPoolError) => void) | undefined;
  /** Set once the health monitor gave up on it: nothing it produces later is kept. */
  timedOut: boolean;
  /** Holds one of the `maxActive` places (taken after the agent was read). */
  reserved: boolean;
  /** Set when the agent changed while activating: the result serves its leases and leaves. */
  stale: boolean;
}

const SEP = '\u0000';

/** Projects whose cache figures are kept at most (a project's are about 100 bytes). */
const MAX_PROJECT_COUNTERS = 100_000;

/** Live agent instances, bounded, activated on demand. */
export class InstancePool {
  readonly options: ResolvedInstancePoolOptions;
  readonly #registry: AgentRegistry;
  readonly #bus: PoolBus;
  readonly #clock: Clock;
  readonly #resolveResources: InstancePoolDeps['resolveResources'];
  readonly #onActivationFailed: InstancePoolDeps['onActivationFailed'];
  readonly #migratedTier: InstancePoolDeps['migratedTier'];
  #tiers: TierAssigner | undefined;
  readonly #tierCounts: Record<ServingTier, TierCounts>;
  readonly #cache: ActivationCache;
  readonly #flights = new SingleFlight<string, AgentInstance>();
  /** Live instances outside the cache: one-shots and retired ones still busy. Bounded by leases in flight. */
  readonly #oneShots = new Set<AgentInstance>();
  /** Activations in flight; bounded by concurrent acquirers. */
  readonly #activations = new Set<Activation>();
  readonly #room: Room;
  /** The bounds the room enforces; `maxActive` is the capacity in effect (see {@link resize}). */
  readonly #limits: { maxActive: number; maxWaiting: number; acquireTimeoutMs: number };
  readonly #latency = new Histogram();
  readonly #byState = Object.fromEntries(INSTANCE_STATES.map((s) => [s, 0])) as Record<InstanceState, number>;
  readonly #counters = newPoolCounters();
  /** The same figures per project, for a project's own view of the pool. */
  readonly #projectCounters = new ProjectCounterMap(MAX_PROJECT_COUNTERS);
  readonly #unsubscribe: () => void;
  /** Told of every lease granted (the preloader's co-occurrence prefetch); one call when set. */
  #onLease: ((instance: AgentInstance) => void) | undefined;
  readonly #preloads: Record<PreloadSource, PreloadCounts> = {
    preload: { issued: 0, used: 0, wasted: 0 },
    prefetch: { issued: 0, used: 0, wasted: 0 },
  };
  /** Removes the pool from the registry's sources of `lastUsedAt`. */
  readonly #stopCollectingUses: () => void;
  /** When uses were last handed to the registry: instances used since have news for it. */
  #usesCollectedAt: number;
  #sweepTimer: TimerHandle | undefined;
  #closed = false;

  constructor(deps: InstancePoolDeps, options: InstancePoolOptions = {}) {
    this.options = resolveInstancePoolOptions(options);
    this.#registry = deps.registry;
    this.#bus = deps.bus;
    this.#clock = deps.clock;
    this.#resolveResources = deps.resolveResources;
    this.#onActivationFailed = deps.onActivationFailed;
    this.#migratedTier = deps.migratedTier;
    this.#tiers = deps.tiers;
    const limits = this.options.tiers.limits;
    const counts = (tier: ServingTier): TierCounts => ({
      instances: 0,
      leases: 0,
      maxInstances: limits[tier].maxInstances || Infinity,
      maxLeases: limits[tier].maxConcurrentRuns || Infinity,
    });
    this.#tierCounts = { hot: counts('hot'), warm: counts('warm'), cold: counts('cold') };
    this.#cache = new ActivationCache(this.options);
    this.#limits = {
      maxActive: this.options.maxActive,
      maxWaiting: this.options.maxWaiting,
      acquireTimeoutMs: this.options.acquireTimeoutMs,
    };
    this.#room = new Room(this.#limits, this.#clock, {
      occupied: () => this.#cache.size + this.#oneShots.size,
      evictOne: () => {
        const victim = this.#cache.evictableCount === 0 ? undefined : this.#cache.evictOne();
        if (victim !== undefined) this.#terminateEvicted([victim]);
        return victim !== undefined;
      },
    });
    const offChanges = onAgentChanges(deps.bus, (e) => this.#onAgentChanged(e));
    const offLost = deps.bus.on('agent.changes_lost', () => this.#onChangesLost());
    this.#unsubscribe = () => {
      offChanges();
      offLost();
    };
    // lastUsedAt costs the acquire path nothing: instances already keep it, the registry asks for
    // it once per flush interval, and ending instances hand theirs over (see #observe).
    this.#usesCollectedAt = this.#clock.now();
    this.#stopCollectingUses = deps.registry.usage.addCollector((note) => this.#collectUses(note));
    this.#scheduleSweep();
  }

  /**
   * A lease on the agent's live instance, activating it if needed, or on a one-shot instance of
   * `options.version`. Fails with `AGENT_NOT_FOUND`, `VERSION_NOT_FOUND`, `AGENT_PAUSED`,
   * `ACQUIRE_TIMEOUT` (no room within the timeout), `POOL_SATURATED` (too many waiting) or
   * `POOL_CLOSED`.
   */
  async acquire(project: string, idOrName: string, options: AcquireOptions = {}): Promise<Lease> {
    if (options.version !== undefined) {
      const lease = await this.#acquireVersion(project, idOrName, options.version, options);
      if (lease !== undefined) return lease;
    }
    for (;;) {
      this.#assertOpen();
      const resident = this.#lookup(project, idOrName);
      if (resident !== undefined) {
        const lease = this.#leaseResident(resident);
        if (lease !== undefined) return lease;
      }
      this.#counters.misses++;
      this.#projectCounters.of(project).misses++;
      let leased: AgentInstance | undefined;
      const instance = await this.#flights.run(project + SEP + idOrName, async () => {
        const activated = await this.#activate(project, idOrName, options);
        if (activated.leased) leased = activated.instance;
        return activated.instance;
      });
      if (leased === instance) {
        // Leased to this caller as it was admitted: no other activation could evict it meanwhile.
        const lease = new Lease(instance, this.#releaseFn);
        if (!this.#closed) {
          this.#leased(instance);
          return lease;
        }
        lease.release();
        throw closedError();
      }
      if (instance.state === 'ready' || instance.state === 'busy') {
        instance.lease(this.#clock.now());
        this.#leased(instance);
        return new Lease(instance, this.#releaseFn);
      }
      // evicted, retired or paused between activation and this continuation: look again
    }
  }

  /**
   * A lease on the agent's live instance if one can serve right now, without I/O or waiting;
   * undefined otherwise (not resident, paused, closed). Callers fall back to {@link acquire}.
   */
  tryAcquire(project: string, idOrName: string): Lease | undefined {
    if (this.#closed) return undefined;
    const resident = this.#lookup(project, idOrName);
    if (resident === undefined || resident.state === 'paused' || resident.pauseOnRelease) return undefined;
    return this.#leaseResident(resident);
  }

  /** Gives a lease back (same as `lease.release()`); false when already released. */
  release(lease: Lease): boolean {
    return lease.release();
  }

  /** Activates an agent ahead of use (pinning it when its tier is hot); returns its instance. */
  async prewarm(project: string, idOrName: string): Promise<InstanceInfo> {
    const lease = await this.acquire(project, idOrName);
    lease.release();
    return describeInstance(lease.instance);
  }

  /**
   * Activates an agent ahead of use without counting a use, a hit or a miss, and only into room a
   * request does not need: a place free now with nobody waiting, or the place of the idle resident
   * the eviction policy values least, when it values this agent more (tinylfu's frequency; lru
   * cannot compare, so it only fills free places). Busy and hot (pinned) instances are never
   * displaced, and admission may still keep it out. Never throws: see {@link PreloadOutcome}.
   */
  async preload(project: string, name: string, source: PreloadSource): Promise<PreloadOutcome> {
    if (this.#closed) return 'closed';
    const key = project + SEP + name;
    if (this.#cache.get(key) !== undefined) return 'resident';
    if (this.#room.waiting > 0) return 'no-room';
    if (this.#room.live() >= this.options.maxActive) {
      const victim = this.#cache.victimFor(key);
      if (victim === undefined) return 'no-room';
      this.#cache.remove(victim);
      this.#terminateEvicted([victim]);
    }
    let ours: AgentInstance | undefined;
    let outcome: PreloadOutcome = 'resident';
    try {
      await this.#flights.run(key, async () => {
        const activated = await this.#activate(project, name, {}, source);
        ours = activated.instance;
        outcome = activated.outcome ?? 'resident';
        return activated.instance;
      });
    } catch (err) {
      // POOL_SATURATED comes only from the free place being taken meanwhile (the preload never waits).
      return isAgentPoolError(err, 'POOL_SATURATED') ? 'no-room' : 'failed';
    }
    if (ours === undefined) return 'resident'; // joined an acquirer's activation
    return outcome;
  }

  /** Preloads and prefetches since start, by source. */
  preloadStats(): Record<PreloadSource, PreloadCounts> {
    return { preload: { ...this.#preloads.preload }, prefetch: { ...this.#preloads.prefetch } };
  }

  /**
   * Sets the function told of every lease granted on an agent's active version (one call per
   * acquire: it must cost no more than a Map lookup), or removes it.
   */
  setLeaseHook(hook: ((instance: AgentInstance) => void) | undefined): void {
    this.#onLease = hook;
  }

  /** Deactivates an agent's instance now (a busy one leaves when its leases are released). */
  deactivate(project: string, idOrName: string): boolean {
    const instance = this.#lookup(project, idOrName);
    if (instance === undefined) return false;
    this.#counters.deactivations++;
    this.#retire(instance, 'deactivated');
    return true;
  }

  /** Stops granting leases on an agent's instance; a busy one pauses when its leases are released. */
  pause(project: string, idOrName: string): InstanceInfo {
    const instance = this.#require(project, idOrName);
    if (instance.state === 'ready') instance.transition('paused', this.#clock.now(), 'pause');
    else if (instance.state === 'busy') instance.pauseOnRelease = true;
    return describeInstance(instance);
  }

  /** Lets a paused instance serve again. */
  resume(project: string, idOrName: string): InstanceInfo {
    const instance = this.#require(project, idOrName);
    instance.pauseOnRelease = false;
    if (instance.state === 'paused') {
      instance.transition('ready', this.#clock.now(), 'resume');
      this.#room.wake();
    }
    return describeInstance(instance);
  }

  /**
   * Restarts an agent's resident instance (failure recovery's `restart`): a ready one goes
   * `error → initializing → ready` in place, its model and tools resolved again, while it is out
   * of the cache (acquirers meanwhile activate as usual, and the restarted one then leaves); a busy
   * one is retired at its last release, so the next acquire activates a fresh one; a paused one is
   * left as its operator left it. Resolves with what happened; a failed re-initialization ends the
   * instance (`none`: nothing is live any more).
   */
  async restart(agentId: string, cause: Error): Promise<'restarted' | 'retired' | 'none'> {
    const instance = this.#cache.getByAgentId(agentId);
    if (instance === undefined || instance.state === 'paused' || instance.pauseOnRelease) return 'none';
    if (instance.state !== 'ready') {
      this.#retire(instance, 'restart');
      return 'retired';
    }
    const project = instance.agent.project;
    this.#cache.remove(instance);
    this.#oneShots.add(instance); // still live: counted against maxActive while it restarts
    const activation = this.#newActivation(project, instance.agent.name);
    activation.agentId = agentId;
    try {
      instance.fail(cause, this.#clock.now());
      instance.transition('initializing', this.#clock.now(), 'restart');
      if (this.#resolveResources !== undefined)
        instance.resources = await this.#bounded(activation, this.#resolveResources(instance.agent));
      this.#assertOpen();
      instance.transition('ready', this.#clock.now(), 'activated');
    } catch (err) {
      this.#oneShots.delete(instance);
      this.#fail(instance, err);
      this.#room.wake();
      return 'none';
    } finally {
      this.#activations.delete(activation);
    }
    this.#oneShots.delete(instance);
    if (activation.stale || this.#cache.get(instance.key) !== undefined) {
      // its agent changed, or an acquirer activated it again meanwhile: that one serves
      instance.terminate(this.#clock.now(), 'retired');
      this.#room.wake();
      return 'retired';
    }
    const evicted = this.#cache.insert(instance, this.#oneShots.size + this.#room.reserved);
    this.#terminateEvicted(evicted);
    this.#room.wake();
    return evicted.includes(instance) ? 'retired' : 'restarted';
  }

  /** The live instance of an agent, if any. */
  instance(project: string, idOrName: string): InstanceInfo | undefined {
    const instance = this.#lookup(project, idOrName);
    return instance === undefined ? undefined : describeInstance(instance);
  }

  /** Resident instances, optionally of one project. */
  instances(project?: string): InstanceInfo[] {
    const out: InstanceInfo[] = [];
    for (const instance of this.#cache.values()) {
      if (project === undefined || instance.agent.project === project) out.push(describeInstance(instance));
    }
    return out;
  }

  /** True when the agent has a resident instance (used to keep ephemeral agents alive). */
  isActive(agentId: string): boolean {
    return this.#cache.getByAgentId(agentId) !== undefined;
  }

  /**
   * Deactivates unpinned ready instances unused for `maxIdleMs`; returns how many. A preloaded
   * instance that has not served yet stays (it was activated to wait; idling it out would only
   * have the next fill activate it again): it leaves when evicted for room.
   */
  sweepIdle(): number {
    if (this.options.maxIdleMs === 0) return 0;
    const now = this.#clock.now();
    let swept = 0;
    for (const instance of this.#cache.values()) {
      if (
        instance.evictable &&
        instance.preloadedBy === undefined &&
        now - instance.lastUsedAt >= this.options.maxIdleMs
      ) {
        this.#retire(instance, 'idle');
        swept++;
      }
    }
    this.#counters.idleDeactivations += swept;
    return swept;
  }

  /**
   * The resident agents as a working-set checkpoint keeps them (pool/checkpoint.ts), with the
   * eviction policy's frequency estimate of each: O(resident), once per checkpoint, never per run.
   */
  workingSet(): WorkingSetEntry[] {
    const out: WorkingSetEntry[] = [];
    for (const instance of this.#cache.values()) {
      if (instance.state === 'terminated' || instance.state === 'error') continue;
      const a = instance.agent;
      out.push({
        project: a.project,
        agentId: a.id,
        name: a.name,
        tier: instance.tier,
        auto: a.spec.tier === 'auto',
        pinned: instance.pinned,
        uses: instance.uses,
        lastUsedAt: instance.lastUsedAt,
        frequency: this.#cache.frequency(instance.key),
      });
    }
    return out;
  }

  /** The eviction policy's frequency sketch (null with a policy without one), for a checkpoint. */
  exportSketch(): StoredSketch | null {
    return this.#cache.exportSketch() ?? null;
  }

  /** Restores the frequency sketch of a checkpoint; false when the policy has none or it does not fit. */
  importSketch(sketch: StoredSketch): boolean {
    return this.#cache.importSketch(sketch);
  }

  /**
   * What one project sees of the pool: its live instances by state and tier, and its hits,
   * misses and activations since start; nothing about other projects or the pool's capacity.
   */
  projectStats(project: string): ProjectPoolStats {
    let activating = 0;
    for (const a of this.#activations) if (a.project === project && a.reserved) activating++;
    return buildProjectPoolStats(
      project,
      { cache: this.#cache, oneShots: this.#oneShots },
      activating,
      this.#projectCounters.peek(project),
    );
  }

  /**
   * Takes every live instance of a project out of service (a busy one leaves at its last release)
   * and keeps activations in flight for it from being cached: the project is being deleted.
   * Returns how many resident instances were retired.
   */
  retireProject(project: string): number {
    for (const a of this.#activations) if (a.project === project) a.stale = true;
    let retired = 0;
    for (const instance of [...this.#cache.values()]) {
      if (instance.agent.project !== project) continue;
      this.#counters.deactivations++;
      this.#retire(instance, 'deactivated');
      retired++;
    }
    return retired;
  }

  /**
   * Retires every resident instance `test` picks (a tool or hook module it uses changed): an idle
   * one now, a busy one at its last release, a pinned one prewarmed again. Activations in flight
   * are not touched: they load the modules as they are now. Returns how many were retired.
   */
  retireWhere(test: (instance: AgentInstance) => boolean): number {
    let retired = 0;
    for (const instance of [...this.#cache.values()]) {
      if (!test(instance)) continue;
      this.#retireChanged(instance, true);
      retired++;
    }
    return retired;
  }

  /** Forgets a deleted project's figures, so a project created again with its id starts at zero. */
  forgetProject(project: string): void {
    this.#projectCounters.forget(project);
  }

  /** Connects the tier classifier (the composition root builds it after the pool). */
  setTierAssigner(tiers: TierAssigner): void {
    this.#tiers = tiers;
  }

  /** Resident instances of `auto` agents and their use counts, for the tier classifier (once per interval). */
  autoResidents(): { agent: Agent; instanceId: string; uses: number; assigned: ServingTier | undefined }[] {
    const out: { agent: Agent; instanceId: string; uses: number; assigned: ServingTier | undefined }[] = [];
    for (const i of this.#cache.values()) {
      if (i.agent.spec.tier === 'auto') {
        out.push({ agent: i.agent, instanceId: i.id, uses: i.uses, assigned: i.assignedTier });
      }
    }
    return out;
  }

  /**
   * Moves an `auto` agent's resident instance to the tier it was classified into: hot pins it
   * (keeping one place unpinned, as activation does), warm unpins it, cold takes it out of
   * service (at its last release when busy) so that it runs one-shot. Its leases and place count
   * against the new tier's limits from now on. False when the agent has no resident instance.
   */
  applyTier(agentId: string, tier: ServingTier): boolean {
    const instance = this.#cache.getByAgentId(agentId);
    if (instance === undefined || instance.agent.spec.tier !== 'auto' || this.#closed) return false;
    const from = instance.tierCounts!;
    const to = this.#tierCounts[tier];
    from.instances--;
    from.leases -= instance.leases;
    to.instances++;
    to.leases += instance.leases;
    instance.tierCounts = to;
    instance.assignedTier = tier;
    if (tier === 'cold') {
      this.#retire(instance, 'tier');
      return true;
    }
    const pin = tier === 'hot' && (instance.pinned || this.#cache.pinnedCount < this.#limits.maxActive - 1);
    this.#terminateEvicted(this.#cache.setPinned(instance, pin, this.#oneShots.size + this.#room.reserved));
    this.#room.wake();
    return true;
  }

  /** Live instances and leases per serving tier, with their limits (0: none). */
  tierCounts(): Record<
    ServingTier,
    { instances: number; leases: number; maxInstances: number; maxConcurrentRuns: number }
  > {
    const out = {} as ReturnType<InstancePool['tierCounts']>;
    for (const t of SERVING_TIERS) {
      const c = this.#tierCounts[t];
      out[t] = {
        instances: c.instances,
        leases: c.leases,
        maxInstances: Number.isFinite(c.maxInstances) ? c.maxInstances : 0,
        maxConcurrentRuns: Number.isFinite(c.maxLeases) ? c.maxLeases : 0,
      };
    }
    return out;
  }

  /** The live-instance bound in effect: `options.maxActive` until {@link resize} changes it. */
  get capacity(): number {
    return this.#limits.maxActive;
  }

  /**
   * Changes the live-instance bound at run time (the autoscaler's lever). Growing lets waiting
   * acquirers in; shrinking evicts idle, unpinned instances in policy order at once, and busy
   * ones as they are released (never a busy or hot one). Returns how many were evicted now.
   */
  resize(maxActive: number): number {
    intOption('maxActive', maxActive, 1);
    if (this.#closed || maxActive === this.#limits.maxActive) return 0;
    this.#limits.maxActive = maxActive;
    const evicted = this.#cache.resize(maxActive, this.#oneShots.size + this.#room.reserved);
    this.#terminateEvicted(evicted);
    this.#room.wake();
    return evicted.length;
  }

  stats(): PoolStats {
    return buildPoolStats({
      options: { maxActive: this.#limits.maxActive, maxBytes: this.options.maxBytes },
      cache: this.#cache,
      oneShots: this.#oneShots,
      room: this.#room,
      byState: this.#byState,
      counters: this.#counters,
      latency: this.#latency,
    });
  }

  /**
   * Fails every activation working for `timeoutMs` or longer (not counting a wait for room) with
   * `ACTIVATION_TIMEOUT`: its acquirers get the error, its place in the pool is freed, and an
   * instance it was building is terminated (what its model and tool resolution yields later is
   * dropped). Returns the activations it gave up on. Called by the health monitor.
   */
  expireActivations(timeoutMs: number): TimedOutActivation[] {
    const now = this.#clock.now();
    const out: TimedOutActivation[] = [];
    for (const a of this.#activations) {
      // Only one waiting on its work: one that just finished is not failed after the fact.
      if (a.abort === undefined || a.timedOut || a.since === undefined || now - a.since < timeoutMs) continue;
      a.timedOut = true;
      const elapsedMs = now - a.since;
      out.push({ project: a.project, agent: a.ref, agentId: a.agentId ?? null, elapsedMs });
      a.abort?.(activationTimedOut(a.project, a.ref, timeoutMs, elapsedMs));
    }
    return out;
  }

  /** Live instances: resident and one-shot (for the health monitor's look at busy ones). */
  *liveInstances(): IterableIterator<AgentInstance> {
    yield* this.#cache.values();
    yield* this.#oneShots;
  }

  /**
   * Evicts up to `count` idle residents in eviction-policy order, never a busy, pinned or hot-tier
   * one (memory pressure). Returns how many left.
   */
  shrink(count: number): number {
    let evicted = 0;
    while (evicted < count && this.#cache.evictableCount > 0) {
      const victim = this.#cache.evictOne(notHot);
      if (victim === undefined) break;
      this.#terminateEvicted([victim]);
      evicted++;
    }
    if (evicted > 0) this.#room.wake();
    return evicted;
  }

  /** Residents that {@link shrink} could evict now (idle, unpinned, not hot). */
  get shrinkable(): number {
    let n = 0;
    for (const instance of this.#cache.values()) if (instance.evictable && notHot(instance)) n++;
    return n;
  }

  /** Stops the pool: waiters fail with `POOL_CLOSED`, idle instances terminate, busy ones at release. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#sweepTimer?.cancel();
      this.#unsubscribe();
      this.#room.rejectAll(closedError());
    } finally {
      for (const instance of [...this.#cache.values()]) this.#retire(instance, 'closed');
      this.#stopCollectingUses(); // after the retirements, which hand their last uses over
    }
  }

  // ── internals ────────────────────────────────────────────────────────────

  readonly #releaseFn = (lease: Lease): void => {
    const instance = lease.instance;
    const now = this.#clock.now();
    if (!instance.unlease(now)) return;
    if (this.#oneShots.delete(instance)) {
      if (instance.agent.spec.tier === 'auto') this.#tiers?.noteOneShot(instance.agent);
      instance.terminate(now, instance.retireOnRelease ? 'retired' : 'one-shot');
      this.#touchIfEphemeral(instance);
    } else if (instance.pauseOnRelease) {
      instance.pauseOnRelease = false;
      instance.transition('paused', now, 'pause');
    } else {
      this.#terminateEvicted(this.#cache.trim(this.#oneShots.size + this.#room.reserved));
    }
    this.#room.wake();
  };

  readonly #observe = (
    instance: AgentInstance,
    from: InstanceState,
    to: InstanceState,
    reason: TransitionReason,
  ) => {
    this.#byState[from]--;
    if (to !== 'terminated') this.#byState[to]++;
    else {
      if (instance.tierCounts !== undefined) instance.tierCounts.instances--;
      if (instance.preloadedBy !== undefined) this.#preloads[instance.preloadedBy].wasted++;
      if (instance.uses > 0 && instance.lastUsedAt >= this.#usesCollectedAt) {
        this.#registry.usage.note(instance.agent.id, instance.lastUsedAt);
      }
    }
    this.#cache.stateChanged(instance, from, to);
    if (this.#bus.hasListeners('instance.state_changed')) {
      this.#bus.emit(instanceStateChanged(instance, from, to, reason, this.#clock.now()));
    }
  };

  #lookup(project: string, idOrName: string): AgentInstance | undefined {
    if (!isId('agt', idOrName)) return this.#cache.get(project + SEP + idOrName);
    const instance = this.#cache.getByAgentId(idOrName);
    return instance?.agent.project === project ? instance : undefined;
  }

  #require(project: string, idOrName: string): AgentInstance {
    const instance = this.#lookup(project, idOrName);
    if (instance === undefined) throw instanceNotFound(project, idOrName);
    return instance;
  }

  /** The warm path: a lease on a resident instance, or undefined when it cannot serve. */
  #leaseResident(instance: AgentInstance): Lease | undefined {
    const state = instance.state;
    if (state === 'paused' || instance.pauseOnRelease) throw pausedError(instance.agent);
    if (state !== 'ready' && state !== 'busy') return undefined;
    const tier = instance.tierCounts!;
    if (tier.leases >= tier.maxLeases) this.#refuseTier(instance, 'maxConcurrentRuns');
    this.#counters.hits++;
    if (instance.projectCounters !== undefined) instance.projectCounters.hits++;
    this.#cache.hit(instance);
    instance.lease(this.#clock.now());
    this.#leased(instance);
    return new Lease(instance, this.#releaseFn);
  }

  /** After every lease on the active version: a preloaded instance's first is its use; the hook hears of it. */
  #leased(instance: AgentInstance): void {
    const source = instance.preloadedBy;
    if (source !== undefined) {
      instance.preloadedBy = undefined;
      this.#preloads[source].used++;
    }
    const onLease = this.#onLease;
    if (onLease !== undefined) onLease(instance);
  }

  /**
   * Activates the agent for the acquirer that started the flight; the fresh instance comes back
   * leased to it (`leased`), a resident one found meanwhile does not.
   */
  async #activate(
    project: string,
    idOrName: string,
    options: AcquireOptions,
    preload?: PreloadSource,
  ): Promise<{ instance: AgentInstance; leased: boolean; outcome?: PreloadOutcome }> {
    const activation = this.#newActivation(project, idOrName);
    let instance: AgentInstance | undefined;
    try {
      // Read before taking a place, so that asking for a missing agent never evicts anything.
      let started = performance.now();
      const agent = await this.#bounded(activation, this.#registry.get(project, idOrName));
      activation.agentId = agent.id;
      const key = project + SEP + agent.name;
      const resident = this.#cache.get(key);
      if (
        resident !== undefined &&
        resident.agent.activeVersion === agent.activeVersion &&
        !activation.stale
      ) {
        // activated meanwhile under its other reference (id or name)
        return { instance: resident, leased: false };
      }
      const waitStart = performance.now();
      activation.since = undefined;
      if (preload === undefined) await this.#room.reserve(project, options);
      else if (!this.#room.tryReserveFree()) {
        throw new AgentPoolError('POOL_SATURATED', 'the free place a preload saw was taken meanwhile');
      }
      activation.reserved = true;
      activation.since = this.#clock.now();
      started += performance.now() - waitStart;
      instance = await this.#build(agent, key, started, activation);
      if (preload !== undefined)
        return { instance, leased: false, outcome: this.#admitPreloaded(instance, activation, preload) };
      this.#admit(instance, activation);
      // Leased in the same turn as admitted (admission saw it ready, so the policy may still refuse
      // it): were it left idle until the acquirer's continuation, another activation could evict
      // it first, and under a small maxActive two acquirers could evict each other's forever.
      instance.lease(this.#clock.now());
      return { instance, leased: true };
    } catch (err) {
      if (instance !== undefined) this.#fail(instance, err);
      throw activationFailed(err, project, idOrName);
    } finally {
      this.#activations.delete(activation);
      if (activation.reserved) this.#room.release();
    }
  }

  /**
   * A lease on a one-shot instance of `version`, or undefined when that is the active version
   * (the caller then acquires as usual). A paused agent serves no version.
   */
  async #acquireVersion(
    project: string,
    idOrName: string,
    version: number,
    options: AcquireOptions,
  ): Promise<Lease | undefined> {
    intOption('version', version, 1);
    this.#assertOpen();
    const resident = this.#lookup(project, idOrName);
    if (resident !== undefined) {
      if (resident.state === 'paused' || resident.pauseOnRelease) throw pausedError(resident.agent);
      if (resident.agent.activeVersion === version) return undefined;
    }
    const agent = await this.#registry.get(project, idOrName);
    if (agent.activeVersion === version) return undefined;
    const { spec } = await this.#registry.version(project, agent.id, version);
    await this.#room.reserve(project, options);
    const atVersion: Agent = { ...agent, activeVersion: version, spec };
    let instance: AgentInstance | undefined;
    // Watched like any activation, but kept out of the stale marking and the activating count.
    const activation = this.#newActivation(project, idOrName);
    activation.agentId = agent.id;
    try {
      instance = await this.#build(
        atVersion,
        project + SEP + agent.name + SEP + version,
        performance.now(),
        activation,
      );
      // Counted as live before the place is given back, so maxActive holds throughout.
      this.#oneShots.add(instance);
      instance.lease(this.#clock.now());
      return new Lease(instance, this.#releaseFn);
    } catch (err) {
      if (instance !== undefined) this.#fail(instance, err);
      throw activationFailed(err, project, idOrName);
    } finally {
      this.#activations.delete(activation);
      this.#room.release();
    }
  }

  /**
   * A new instance of `agent`, made ready: its model and tools resolved, an ephemeral agent
   * touched (the caller holds a place in the room). `started` is when the activation began, not
   * counting any wait for room; a failure ends the instance and is rethrown.
   */
  async #build(agent: Agent, key: string, started: number, activation: Activation): Promise<AgentInstance> {
    let assigned = agent.spec.tier === 'auto' ? this.#tiers?.tierOf(agent) : undefined;
    // only when the project's limits were not cached
    if (assigned instanceof Promise) assigned = await this.#bounded(activation, assigned);
    const now = this.#clock.now();
    const tier = this.#tierCounts[assigned ?? servingTier(agent.spec.tier)];
    if (tier.instances >= tier.maxInstances)
      throw tierSaturated(agent, assigned ?? servingTier(agent.spec.tier), 'maxInstances', tier.maxInstances);
    if (tier.leases >= tier.maxLeases)
      throw tierSaturated(
        agent,
        assigned ?? servingTier(agent.spec.tier),
        'maxConcurrentRuns',
        tier.maxLeases,
      );
    const instance = new AgentInstance(newId('ins', now), agent, key, now, this.#observe);
    if (this.#migratedTier !== undefined) instance.migratedTo = this.#migratedTier(agent.id);
    instance.assignedTier = assigned;
    instance.tierCounts = tier;
    tier.instances++;
    this.#byState.created++;
    instance.transition('initializing', now, 'activate');
    try {
      if (this.#resolveResources !== undefined)
        instance.resources = await this.#bounded(activation, this.#resolveResources(agent));
      if (agent.spec.ttlSeconds !== undefined)
        await this.#bounded(activation, this.#registry.touch(agent.id));
      this.#assertOpen();
      instance.transition('ready', this.#clock.now(), 'activated');
    } catch (err) {
      this.#fail(instance, err);
      throw err;
    }
    this.#counters.activations++;
    const counters = this.#projectCounters.of(agent.project);
    counters.activations++;
    instance.projectCounters = counters;
    this.#latency.observe(performance.now() - started);
    return instance;
  }

  /** Ends an instance whose activation failed. */
  #fail(instance: AgentInstance, err: unknown): void {
    if (instance.state === 'terminated') return;
    this.#counters.activationFailures++;
    this.#projectCounters.of(instance.agent.project).activationFailures++;
    instance.fail(err instanceof Error ? err : new Error(String(err)), this.#clock.now());
    instance.terminate(this.#clock.now(), 'failed');
    this.#onActivationFailed?.(instance.agent, err);
  }

  /** Admits a preloaded instance like any other; one kept out (cold tier, stale, refused) leaves at once, unused. */
  #admitPreloaded(instance: AgentInstance, activation: Activation, source: PreloadSource): PreloadOutcome {
    instance.preloadedBy = source;
    this.#preloads[source].issued++;
    this.#admit(instance, activation);
    if (!this.#oneShots.delete(instance)) return 'activated';
    instance.terminate(this.#clock.now(), 'one-shot'); // counted wasted as it ends
    return 'refused';
  }

  /** Makes a fresh ready instance resident, or keeps it out as a one-shot (cold tier, stale, refused). */
  #admit(instance: AgentInstance, activation: Activation): void {
    const previous = this.#cache.get(instance.key);
    if (previous !== undefined) this.#retire(previous, 'retired');
    if (instance.tier === 'cold' || activation.stale) {
      this.#oneShots.add(instance);
      return;
    }
    // hot instances are pinned, keeping at least one slot for everything else
    if (instance.tier === 'hot' && this.#cache.pinnedCount < this.#limits.maxActive - 1)
      instance.pinned = true;
    const evicted = this.#cache.insert(instance, this.#oneShots.size + this.#room.reserved - 1);
    const refused = evicted.indexOf(instance);
    if (refused >= 0) {
      evicted.splice(refused, 1);
      this.#oneShots.add(instance);
    }
    this.#terminateEvicted(evicted);
  }

  #terminateEvicted(evicted: AgentInstance[]): void {
    const now = this.#clock.now();
    for (const instance of evicted) {
      this.#counters.evictions++;
      instance.terminate(now, 'evicted');
      this.#touchIfEphemeral(instance);
    }
  }

  /** Takes an instance out of service: now when idle, at its last release when busy. */
  #retire(instance: AgentInstance, reason: TransitionReason): void {
    this.#cache.remove(instance);
    if (reason === 'retired') this.#counters.retirements++;
    if (instance.state === 'busy') {
      instance.retireOnRelease = true;
      this.#oneShots.add(instance);
      return;
    }
    if (instance.state !== 'terminated') {
      instance.terminate(this.#clock.now(), reason);
      this.#touchIfEphemeral(instance);
    }
    this.#room.wake();
  }

  #onAgentChanged(e: AgentChange): void {
    for (const a of this.#activations) {
      if (a.agentId === e.agentId || (a.agentId === undefined && a.project === e.project)) a.stale = true;
    }
    const instance = this.#cache.getByAgentId(e.agentId);
    if (instance === undefined) return;
    // A change of the active version to the one the instance serves leaves it current; any other
    // change (another version, deletion, a rollout starting, changing or ending) retires it.
    const versioned =
      e.type === 'agent.updated' || e.type === 'agent.rolled_back' || e.type === 'agent.rollout_promoted';
    if (versioned && instance.agent.activeVersion === e.version) return;
    this.#retireChanged(instance, e.type !== 'agent.deleted');
  }

  /** The store lost track of other processes' changes: no resident can be trusted to be current. */
  #onChangesLost(): void {
    for (const a of this.#activations) a.stale = true;
    for (const instance of [...this.#cache.values()]) this.#retireChanged(instance, true);
  }

  #retireChanged(instance: AgentInstance, rewarm: boolean): void {
    const wasPinned = instance.pinned;
    this.#retire(instance, 'retired');
    if (wasPinned && rewarm && !this.#closed) {
      const { project, id } = instance.agent;
      this.prewarm(project, id).catch(() => undefined); // a hot agent stays warm on its new version
    }
  }

  /** Hands the registry the last use of every live instance used since the previous collection. */
  #collectUses(note: (agentId: string, at: number) => void): void {
    const since = this.#usesCollectedAt;
    this.#usesCollectedAt = this.#clock.now();
    for (const instance of this.#cache.values()) {
      if (instance.uses > 0 && instance.lastUsedAt >= since) note(instance.agent.id, instance.lastUsedAt);
    }
    for (const instance of this.#oneShots) {
      if (instance.uses > 0 && instance.lastUsedAt >= since) note(instance.agent.id, instance.lastUsedAt);
    }
  }

  #touchIfEphemeral(instance: AgentInstance): void {
    if (instance.agent.spec.ttlSeconds !== undefined && !this.#closed) {
      this.#registry.touch(instance.agent.id).catch(() => undefined); // best effort: expiry only moves later
    }
  }

  #scheduleSweep(): void {
    if (this.options.maxIdleMs === 0 || this.#closed) return;
    this.#sweepTimer = this.#clock.setTimeout(() => {
      this.sweepIdle();
      this.#scheduleSweep();
    }, this.options.idleSweepIntervalMs);
  }

  #refuseTier(instance: AgentInstance, limit: 'maxConcurrentRuns'): never {
    throw tierSaturated(instance.agent, servingTier(instance.tier), limit, instance.tierCounts!.maxLeases);
  }

  #assertOpen(): void {
    if (this.#closed) throw closedError();
  }

  #newActivation(project: string, ref: string): Activation {
    const activation: Activation = {
      project,
      ref,
      reserved: false,
      stale: false,
      since: this.#clock.now(),
      abort: undefined,
      timedOut: false,
    };
    this.#activations.add(activation);
    return activation;
  }

  /**
   * `work`, unless the health monitor gives up on the activation first: then the activation's
   * error (and what `work` yields later is dropped). One promise per await of an activation,
   * never on the warm path.
   */
  #bounded<T>(activation: Activation, work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      activation.abort = reject;
      work.then(
        (value) => {
          activation.abort = undefined;
          resolve(value);
        },
        (err: unknown) => {
          activation.abort = undefined;
          reject(err);
        },
      );
    });
  }
}

/** An activation the health monitor gave up on. */
export interface TimedOutActivation {
  project: string;
  /** As the acquirer named it (id or name). */
  agent: string;
  /** Known once the agent was read. */
  agentId: string | null;
  elapsedMs: number;
}

function notHot(instance: AgentInstance): boolean {
  return instance.tier !== 'hot';
}

/** The tier a spec's tier serves in: `auto`, until classified, serves as warm. */
function servingTier(tier: string): ServingTier {
  return tier === 'hot' || tier === 'cold' ? tier : 'warm';
}
