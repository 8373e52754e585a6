/**
 * An instance: the live, activated form of one agent version, and its lifecycle.
 *
 *   created → initializing → ready ⇄ busy,  ready → paused → ready,
 *   any → error → initializing (restart) | terminated;  created, ready, paused → terminated.
 *
 * The state and its data form one discriminated union changed through one setter,
 * {@link AgentInstance.transition}, which rejects illegal moves and reports every legal one to the
 * owner (the pool emits the event and updates gauges).
 */
import { AgentPoolError } from '../core/errors.ts';
import type { ModelTarget } from '../models/resilient-model.ts';
import type { Tier } from '../registry/definition.ts';
import type { Agent } from '../registry/registry.ts';
import type { HookSet } from '../tools/hooks.ts';
import type { Tool } from '../tools/tool.ts';

/** What activation resolves once and every run of the instance reuses. */
export interface InstanceResources {
  /**
   * The agent's model, then its fallbacks in the order they are tried; each provider model is
   * shared by every instance using the same `provider/model-id`.
   */
  readonly models: readonly ModelTarget[];
  /** The agent's tools, resolved from its references. */
  readonly tools: readonly Tool[];
  /** The pool's hooks, then the definition's, resolved from its module references. @default the pool's */
  readonly hooks?: HookSet;
}

/** Live instances and leases of one tier, against its limits (Infinity: none); shared by its instances. */
export interface TierCounts {
  instances: number;
  leases: number;
  readonly maxInstances: number;
  readonly maxLeases: number;
}

/** Every lifecycle state. */
export const INSTANCE_STATES = [
  'created',
  'initializing',
  'ready',
  'busy',
  'paused',
  'error',
  'terminated',
] as const;
/** One of {@link INSTANCE_STATES}. */
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** The state with the data that only exists in it. */
export type InstanceStatus =
  | { readonly state: 'created'; readonly since: number }
  | { readonly state: 'initializing'; readonly since: number }
  | { readonly state: 'ready'; readonly since: number }
  | { readonly state: 'busy'; readonly since: number; leases: number }
  | { readonly state: 'paused'; readonly since: number }
  | { readonly state: 'error'; readonly since: number; readonly error: Error }
  | { readonly state: 'terminated'; readonly since: number; readonly reason: TransitionReason };

/** Why a transition happened; carried on events. */
export type TransitionReason =
  | 'activate'
  | 'activated'
  | 'acquire'
  | 'release'
  | 'pause'
  | 'resume'
  | 'failed'
  | 'restart'
  | 'evicted'
  | 'idle'
  | 'retired'
  | 'deactivated'
  | 'one-shot'
  | 'closed'
  /** An `auto` agent classified cold: its instance leaves and it runs one-shot from now on. */
  | 'tier';

/** The legal moves, by source state. */
export const TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  created: ['initializing', 'error', 'terminated'],
  initializing: ['ready', 'error', 'terminated'],
  ready: ['busy', 'paused', 'error', 'terminated'],
  busy: ['ready', 'error'],
  paused: ['ready', 'error', 'terminated'],
  error: ['initializing', 'terminated'],
  terminated: [],
};

/** True when `from → to` is a legal move. */
export function canTransition(from: InstanceState, to: InstanceState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Told of every transition, after it happened. */
export type TransitionObserver = (
  instance: AgentInstance,
  from: InstanceState,
  to: InstanceState,
  reason: TransitionReason,
) => void;

/** Fixed cost of an instance beyond its spec, in bytes; bench/memory.bench.ts compares the estimate with a measurement. */
const INSTANCE_BASE_BYTES = 1024;

/** The live form of one agent version. */
export class AgentInstance {
  readonly id: string;
  readonly agent: Agent;
  /** The activation-cache key: project and agent name. */
  readonly key: string;
  /** Estimated heap cost, counted against the pool's byte bound. */
  readonly estimatedBytes: number;
  /** The compiled system prompt. */
  readonly prompt: string;
  /** Model and tools, set while initializing (absent when the pool was built without a resolver). */
  resources: InstanceResources | undefined;
  /** Leases granted over the instance's life. */
  uses = 0;
  /** Epoch ms of the last acquire or release. */
  lastUsedAt: number;
  /** Never evicted while pinned (the hot tier). */
  pinned = false;
  /** Terminate instead of returning to ready when the last lease is released. */
  retireOnRelease = false;
  /** Pause instead of returning to ready when the last lease is released. */
  pauseOnRelease = false;
  /** The tier failure recovery's `migrate` moved the agent down to; its own tier when undefined. */
  migratedTo: Tier | undefined = undefined;
  /**
   * Its project's pool figures, where the pool also counts a warm hit on this instance: looked
   * up once at activation, so the warm path pays no per-project lookup.
   */
  projectCounters: { hits: number } | undefined = undefined;
  /** Set while a preloaded or prefetched instance has served no lease yet (pool/preload.ts counts it used or wasted). */
  preloadedBy: 'preload' | 'prefetch' | undefined = undefined;
  /**
   * The tier an `auto` agent was classified into (pool/tiers.ts), or a project's default tier;
   * undefined: its spec's tier applies.
   */
  assignedTier: 'hot' | 'warm' | 'cold' | undefined = undefined;
  /** Its tier's counts (pool/tier-limits.ts), kept in step by lease and unlease: two increments a run. */
  tierCounts: TierCounts | undefined = undefined;
  #status: InstanceStatus;
  readonly #observe: TransitionObserver;

  constructor(id: string, agent: Agent, key: string, now: number, observe: TransitionObserver) {
    this.id = id;
    this.agent = agent;
    this.key = key;
    this.prompt = agent.spec.instructions;
    this.estimatedBytes = INSTANCE_BASE_BYTES + 2 * JSON.stringify(agent.spec).length;
    this.lastUsedAt = now;
    this.#status = { state: 'created', since: now };
    this.#observe = observe;
  }

  get status(): InstanceStatus {
    return this.#status;
  }

  get state(): InstanceState {
    return this.#status.state;
  }

  /** The tier in effect: the one assigned to an `auto` agent, else its spec's. */
  get tier(): Tier {
    return this.migratedTo ?? this.assignedTier ?? this.agent.spec.tier;
  }

  /** Leases currently held. */
  get leases(): number {
    return this.#status.state === 'busy' ? this.#status.leases : 0;
  }

  /** True when the cache may evict it now: ready, unpinned, and not about to leave anyway. */
  get evictable(): boolean {
    return this.#status.state === 'ready' && !this.pinned;
  }

  /** Grants a lease: ready → busy, or one more lease on a busy instance. */
  lease(now: number): void {
    this.uses++;
    if (this.tierCounts !== undefined) this.tierCounts.leases++;
    this.lastUsedAt = now;
    if (this.#status.state === 'busy') this.#status.leases++;
    else this.#set({ state: 'busy', since: now, leases: 1 }, 'acquire');
  }

  /** Returns a lease; the last one moves busy → ready. Returns true when the instance became idle. */
  unlease(now: number): boolean {
    this.lastUsedAt = now;
    const status = this.#status;
    if (status.state !== 'busy') throw illegal(this, 'ready');
    if (this.tierCounts !== undefined) this.tierCounts.leases--;
    if (status.leases > 1) {
      status.leases--;
      return false;
    }
    this.#set({ state: 'ready', since: now }, 'release');
    return true;
  }

  /** The one setter for states without extra data. */
  transition(
    to: Exclude<InstanceState, 'busy' | 'error' | 'terminated'>,
    now: number,
    reason: TransitionReason,
  ): void {
    this.#set({ state: to, since: now }, reason);
  }

  /** Moves to error, keeping the cause. */
  fail(error: Error, now: number): void {
    this.#set({ state: 'error', since: now, error }, 'failed');
  }

  /** Moves to terminated (final). */
  terminate(now: number, reason: TransitionReason): void {
    this.#set({ state: 'terminated', since: now, reason }, reason);
  }

  #set(next: InstanceStatus, reason: TransitionReason): void {
    const from = this.#status.state;
    if (!canTransition(from, next.state)) throw illegal(this, next.state);
    this.#status = next;
    this.#observe(this, from, next.state, reason);
  }
}

function illegal(instance: AgentInstance, to: InstanceState): AgentPoolError {
  return new AgentPoolError(
    'INVALID_STATE_TRANSITION',
    `instance ${instance.id} of ${instance.agent.name} cannot go from ${instance.state} to ${to}`,
    { instanceId: instance.id, from: instance.state, to },
  );
}
