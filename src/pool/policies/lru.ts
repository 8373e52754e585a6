/**
 * The least-recently-used eviction policy: the baseline the activation cache can fall back to,
 * and the yardstick TinyLFU is measured against. Owns one recency list of resident keys.
 */
import { intOption } from '../../core/options.ts';
import { LinkedList, ListNode } from './linked-list.ts';
import type { CanEvict, EvictionPolicy, PolicyOptions } from './policy.ts';

/** Evicts the least recently used key that may leave; busy and pinned keys are skipped in place. */
export class LruPolicy<K> implements EvictionPolicy<K> {
  readonly name = 'lru';
  private maxSize: number;
  private readonly nodes = new Map<K, ListNode<K>>();
  private readonly list = new LinkedList<K>();

  constructor(options: PolicyOptions<K>) {
    this.maxSize = intOption('policy.capacity', options.capacity, 1);
  }

  get size(): number {
    return this.nodes.size;
  }

  get capacity(): number {
    return this.maxSize;
  }

  has(key: K): boolean {
    return this.nodes.has(key);
  }

  hit(key: K): void {
    const node = this.nodes.get(key);
    if (node !== undefined) this.list.moveToMru(node);
  }

  add(key: K, canEvict: CanEvict<K>): K[] {
    const existing = this.nodes.get(key);
    if (existing !== undefined) {
      // Adding a resident key is a caller bug in spirit; treating it as an access keeps the
      // policy consistent instead of duplicating the node.
      this.list.moveToMru(existing);
      return [];
    }
    const node = new ListNode(key, 0);
    this.nodes.set(key, node);
    this.list.pushMru(node);
    const evicted: K[] = [];
    if (this.nodes.size > this.maxSize) this.evictDownTo(this.maxSize, canEvict, evicted);
    return evicted;
  }

  delete(key: K): void {
    const node = this.nodes.get(key);
    if (node === undefined) return;
    this.list.remove(node);
    this.nodes.delete(key);
  }

  evict(canEvict: CanEvict<K>): K | undefined {
    if (this.nodes.size === 0) return undefined;
    const evicted: K[] = [];
    this.evictDownTo(this.nodes.size - 1, canEvict, evicted);
    return evicted[0];
  }

  resize(capacity: number, canEvict: CanEvict<K>): K[] {
    this.maxSize = intOption('policy.capacity', capacity, 1);
    const evicted: K[] = [];
    if (this.nodes.size > this.maxSize) this.evictDownTo(this.maxSize, canEvict, evicted);
    return evicted;
  }

  describe(): Record<string, number | string> {
    return { policy: this.name, size: this.nodes.size, capacity: this.maxSize };
  }

  /** Keys from least to most recently used (for tests and debugging). */
  keys(): K[] {
    return [...this.list.keys()];
  }

  /**
   * One pass from the LRU end: non-evictable keys keep their position (they are not "used" by
   * being skipped), and the pass resumes where it was, so evicting n keys past p pinned ones is
   * O(n + p), not O(n × p).
   */
  private evictDownTo(limit: number, canEvict: CanEvict<K>, out: K[]): void {
    let node = this.list.head;
    while (node !== null && this.nodes.size > limit) {
      const next = node.next;
      if (canEvict(node.key)) {
        this.list.remove(node);
        this.nodes.delete(node.key);
        out.push(node.key);
      }
      node = next;
    }
  }
}
