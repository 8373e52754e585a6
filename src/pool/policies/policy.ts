/**
 * The eviction policy interface: which resident instance leaves the activation cache when it is
 * over capacity. Policies only order keys; the cache owns the instances and tells the policy,
 * through `canEvict`, which keys may leave now (busy and pinned instances never do).
 */

import type { SketchSnapshot } from './count-min-sketch.ts';

/** The policies agentpool ships. */
export type PolicyName = 'lru' | 'tinylfu';

/** Maps a key to a 32-bit hash for frequency sketches. */
export type KeyHasher<K> = (key: K) => number;

/** Says whether a resident key may be evicted now. */
export type CanEvict<K> = (key: K) => boolean;

/** Options common to every policy. */
export interface PolicyOptions<K> {
  /** Maximum resident keys; a positive integer. */
  capacity: number;
  /** Hash of a key; used by frequency-based policies. */
  hash: KeyHasher<K>;
}

/** Orders resident keys for eviction. Implementations are bounded by `capacity`. */
export interface EvictionPolicy<K> {
  readonly name: PolicyName;
  /** Resident keys tracked. */
  readonly size: number;
  readonly capacity: number;
  has(key: K): boolean;
  /** Records an access to a resident key. */
  hit(key: K): void;
  /**
   * Adds a key that is not resident and evicts as needed to return within capacity. Returns the
   * evicted keys, which may include `key` itself when admission refuses it. Never returns a key
   * for which `canEvict` is false; if nothing may be evicted, size stays above capacity until a
   * later call can evict.
   */
  add(key: K, canEvict: CanEvict<K>): K[];
  /** Forgets a resident key (explicit deactivation, expiry, retirement). No-op when absent. */
  delete(key: K): void;
  /** Removes and returns one victim in the policy's order among evictable keys, if any. */
  evict(canEvict: CanEvict<K>): K | undefined;
  /** Changes capacity, evicting as needed; returns the evicted keys. */
  resize(capacity: number, canEvict: CanEvict<K>): K[];
  /** A snapshot of internal sizes for stats (for example the tinylfu window size). */
  describe(): Record<string, number | string>;
  /**
   * The frequency sketch's counters, for a working-set checkpoint (pool/checkpoint.ts); absent
   * on policies without one (lru).
   */
  exportSketch?(): SketchSnapshot;
  /** Restores counters from {@link exportSketch} of an earlier process; false when they do not fit. */
  importSketch?(snapshot: SketchSnapshot): boolean;
  /**
   * How often a key was asked for lately, resident or not (a frequency policy's estimate). Absent
   * when the policy keeps no such figure (lru): then it cannot say one key is worth more than another.
   */
  frequency?(key: K): number;
  /**
   * The evictable key the policy would give up first, without evicting it; with
   * {@link frequency}, what a preload compares itself with (pool/preload.ts).
   */
  peekVictim?(canEvict: CanEvict<K>): K | undefined;
}
