/**
 * The activation cache: the resident instances, indexed by key (project + agent name) and by
 * agent id, bounded by count and by estimated bytes. The eviction policy orders the unpinned
 * residents; the cache tells it which may leave now (ready and unpinned: busy and pinned
 * instances are never evicted) and keeps the count of those that may, so the pool can tell in
 * O(1) whether an activation has room or must wait.
 */
import type { AgentInstance, InstanceState } from './instance.ts';
import { hashString } from '../core/hash.ts';
import { createPolicy } from './policies/create-policy.ts';
import type { SketchSnapshot } from './policies/count-min-sketch.ts';
import type { EvictionPolicy, PolicyName } from './policies/policy.ts';

/** Bounds and policy of the cache. */
export interface ActivationCacheOptions {
  maxActive: number;
  maxBytes: number;
  policy: PolicyName;
}

/** Resident instances and their eviction order. */
export class ActivationCache {
  /** Changed at run time by {@link resize} (the autoscaler). */
  maxActive: number;
  readonly maxBytes: number;
  readonly #byKey = new Map<string, AgentInstance>();
  readonly #byAgentId = new Map<string, AgentInstance>();
  readonly #policy: EvictionPolicy<string>;
  readonly #canEvict = (key: string): boolean => this.#byKey.get(key)?.evictable === true;
  #bytes = 0;
  #pinned = 0;
  #evictable = 0;

  constructor(options: ActivationCacheOptions) {
    this.maxActive = options.maxActive;
    this.maxBytes = options.maxBytes;
    this.#policy = createPolicy<string>(options.policy, { capacity: options.maxActive, hash: hashString });
  }

  /** Resident instances. */
  get size(): number {
    return this.#byKey.size;
  }

  /** Estimated bytes of the resident instances. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Residents that could be evicted right now (kept in step by {@link stateChanged}). */
  get evictableCount(): number {
    return this.#evictable;
  }

  get pinnedCount(): number {
    return this.#pinned;
  }

  get(key: string): AgentInstance | undefined {
    return this.#byKey.get(key);
  }

  getByAgentId(agentId: string): AgentInstance | undefined {
    return this.#byAgentId.get(agentId);
  }

  values(): IterableIterator<AgentInstance> {
    return this.#byKey.values();
  }

  /** Records a request served by a resident instance. */
  hit(instance: AgentInstance): void {
    if (!instance.pinned) this.#policy.hit(instance.key);
  }

  /**
   * Makes an instance resident. Returns the instances evicted to stay within bounds; they have
   * left the cache and the caller terminates them. The list may hold `instance` itself when the
   * policy refused to admit it (it then serves its lease and leaves).
   */
  insert(instance: AgentInstance, othersLive: number): AgentInstance[] {
    this.#byKey.set(instance.key, instance);
    this.#byAgentId.set(instance.agent.id, instance);
    this.#bytes += instance.estimatedBytes;
    if (instance.evictable) this.#evictable++;
    if (instance.pinned) {
      // pinned instances stay out of the policy, whose capacity shrinks to make room for them
      this.#pinned++;
      return this.#resizePolicy().concat(this.trim(othersLive));
    }
    const evicted = this.#policy.add(instance.key, this.#canEvict).map((key) => this.#detach(key));
    return evicted.concat(this.trim(othersLive));
  }

  /** Removes an instance (deactivation, retirement); false when it was not resident. */
  remove(instance: AgentInstance): boolean {
    if (this.#byKey.get(instance.key) !== instance) return false;
    const wasPinned = instance.pinned;
    if (!wasPinned) this.#policy.delete(instance.key);
    this.#detach(instance.key);
    if (wasPinned) this.#resizePolicy(); // grows: evicts nothing
    return true;
  }

  /** Keeps the evictable count true; the pool calls it on every transition. */
  stateChanged(instance: AgentInstance, from: InstanceState, to: InstanceState): void {
    if (instance.pinned || this.#byKey.get(instance.key) !== instance) return;
    if (from === 'ready') this.#evictable--;
    if (to === 'ready') this.#evictable++;
  }

  /** Evicts one instance in policy order, if any may leave now (and passes `also`, when given). */
  evictOne(also?: (instance: AgentInstance) => boolean): AgentInstance | undefined {
    const canEvict =
      also === undefined
        ? this.#canEvict
        : (key: string) => {
            const instance = this.#byKey.get(key);
            return instance !== undefined && instance.evictable && also(instance);
          };
    const key = this.#policy.evict(canEvict);
    return key === undefined ? undefined : this.#detach(key);
  }

  /**
   * Evicts, in policy order, while the live count (residents + `othersLive`) is above maxActive
   * or the bytes above maxBytes, and something may be evicted.
   */
  trim(othersLive: number): AgentInstance[] {
    const evicted: AgentInstance[] = [];
    while (this.#byKey.size + othersLive > this.maxActive || this.#bytes > this.maxBytes) {
      const key = this.#policy.evict(this.#canEvict);
      if (key === undefined) break;
      evicted.push(this.#detach(key));
    }
    return evicted;
  }

  /**
   * The resident a preload of `key` may take the place of: the policy's next victim, provided the
   * policy estimates `key` more frequently asked for. Undefined when nothing may leave, when the
   * victim is worth as much or more, or when the policy cannot compare (lru). Busy and pinned
   * (hot) instances are never offered.
   */
  victimFor(key: string): AgentInstance | undefined {
    const policy = this.#policy;
    if (policy.peekVictim === undefined || policy.frequency === undefined) return undefined;
    const victim = policy.peekVictim(this.#canEvict);
    if (victim === undefined || policy.frequency(key) <= policy.frequency(victim)) return undefined;
    return this.#byKey.get(victim);
  }

  /** The policy's recent-frequency estimate of a key (0 for policies without a sketch). */
  frequency(key: string): number {
    return this.#policy.frequency?.(key) ?? 0;
  }

  /** The policy's frequency sketch, for a working-set checkpoint; undefined without one (lru). */
  exportSketch(): SketchSnapshot | undefined {
    return this.#policy.exportSketch?.();
  }

  /** Restores the policy's frequency sketch; false when it has none or the snapshot does not fit. */
  importSketch(snapshot: SketchSnapshot): boolean {
    return this.#policy.importSketch?.(snapshot) ?? false;
  }

  /**
   * Changes the count bound (the autoscaler's capacity): the policy is resized with it and, when
   * it shrank, instances that may leave now (ready, unpinned) are evicted in policy order until
   * the live count fits; busy ones leave as they are released. Returns the evicted instances,
   * which the caller terminates.
   */
  resize(maxActive: number, othersLive: number): AgentInstance[] {
    this.maxActive = maxActive;
    return this.#resizePolicy().concat(this.trim(othersLive));
  }

  /**
   * Pins or unpins a resident instance (its tier changed): a pinned one leaves the policy, whose
   * capacity shrinks to make room for it; an unpinned one joins it and competes for its place
   * like a newcomer. Returns the instances evicted to stay within bounds (possibly itself, when
   * unpinned and idle and the policy refuses it), which the caller terminates.
   */
  setPinned(instance: AgentInstance, pinned: boolean, othersLive: number): AgentInstance[] {
    if (this.#byKey.get(instance.key) !== instance || instance.pinned === pinned) return [];
    const wasEvictable = instance.evictable;
    if (pinned) this.#policy.delete(instance.key);
    instance.pinned = pinned;
    this.#pinned += pinned ? 1 : -1;
    if (wasEvictable !== instance.evictable) this.#evictable += instance.evictable ? 1 : -1;
    let evicted = this.#resizePolicy();
    if (!pinned)
      evicted = evicted.concat(this.#policy.add(instance.key, this.#canEvict).map((k) => this.#detach(k)));
    return evicted.concat(this.trim(othersLive));
  }

  /** Policy internals for stats. */
  describePolicy(): Record<string, number | string> {
    return { name: this.#policy.name, ...this.#policy.describe() };
  }

  #resizePolicy(): AgentInstance[] {
    const capacity = Math.max(1, this.maxActive - this.#pinned);
    return this.#policy.resize(capacity, this.#canEvict).map((key) => this.#detach(key));
  }

  #detach(key: string): AgentInstance {
    const instance = this.#byKey.get(key);
    if (instance === undefined) throw new Error(`activation cache: policy returned unknown key ${key}`);
    this.#byKey.delete(key);
    if (this.#byAgentId.get(instance.agent.id) === instance) this.#byAgentId.delete(instance.agent.id);
    this.#bytes -= instance.estimatedBytes;
    if (instance.evictable) this.#evictable--;
    if (instance.pinned) this.#pinned--;
    return instance;
  }
}
