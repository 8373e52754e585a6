/**
 * The W-TinyLFU eviction policy, after Caffeine: a small LRU admission window in front of a
 * segmented LRU main area (probation + protected), a count-min sketch that decides whether a key
 * leaving the window deserves a victim's place, and a hill climber that resizes the window to the
 * workload (large for recency-heavy traffic, small for frequency-heavy traffic). Owns the three
 * recency lists, the sketch and the climber's state; the cache owns the instances.
 */
import { intOption } from '../../core/options.ts';
import { CountMinSketch, type SketchSnapshot } from './count-min-sketch.ts';
import { LinkedList, ListNode } from './linked-list.ts';
import type { CanEvict, EvictionPolicy, KeyHasher, PolicyOptions } from './policy.ts';

/** Share of the capacity given to the main area at start (Caffeine's 99%: the window starts at 1%). */
const PERCENT_MAIN = 0.99;
/** Share of the main area the protected segment may hold. */
const PERCENT_MAIN_PROTECTED = 0.8;
/** The climber's step, as a share of capacity, after a restart. */
const STEP_PERCENT = 0.0625;
/** The step shrinks by this factor every sample so the window settles. */
const STEP_DECAY = 0.98;
/** A hit-rate change this large means the workload changed: restart with a full step. */
const RESTART_THRESHOLD = 0.05;
/**
 * Fewest accesses per climbing sample. The hit-rate change between two samples of n accesses
 * has a standard deviation up to 0.71/√n; at 5,000 that is 1%, so noise alone rarely passes for
 * a workload change (5%) and small caches do not random-walk their window.
 */
const MIN_CLIMB_PERIOD = 5000;

/** Keys of each list peekVictim looks at, at most. */
const PEEK_LIMIT = 16;

/** Options of the tinylfu policy beyond those common to every policy. */
export interface TinyLfuOptions<K> extends PolicyOptions<K> {
  /**
   * Accesses (hits + adds) per hill-climbing sample; fixed when given.
   * @default max(10 × capacity, 5000), following the capacity on resize
   */
  climbPeriod?: number;
}

/** The window size W-TinyLFU starts with: 1% of capacity, at least 1, leaving main ≥ 1 when it can. */
function initialWindow(capacity: number): number {
  return Math.min(Math.max(1, capacity - Math.floor(PERCENT_MAIN * capacity)), Math.max(1, capacity - 1));
}

/**
 * Protected segment bound for a window size. As in Caffeine the window trades places with the
 * protected segment (probation keeps its initial share, so admission always has victims to
 * compare against), and the segment never exceeds 80% of the main area.
 */
function protectedMaximum(capacity: number, window: number): number {
  const window0 = initialWindow(capacity);
  const traded = Math.floor(PERCENT_MAIN_PROTECTED * (capacity - window0)) - (window - window0);
  return Math.max(0, Math.min(traded, Math.floor(PERCENT_MAIN_PROTECTED * (capacity - window))));
}

/** Window-TinyLFU: recency window, frequency-gated admission into a segmented LRU, adaptive window. */
export class TinyLfuPolicy<K> implements EvictionPolicy<K> {
  readonly name = 'tinylfu';
  private maxSize: number;
  private maxWindow: number;
  /** The window's share of capacity as last set: resize keeps it, free of the clamp to ≥ 1. */
  private windowShare = 1 - PERCENT_MAIN;
  private maxProtected: number;
  private readonly nodes = new Map<K, ListNode<K>>();
  private readonly window = new LinkedList<K>();
  private readonly probation = new LinkedList<K>();
  private readonly protectedList = new LinkedList<K>();
  private sketch: CountMinSketch;
  private readonly hashKey: KeyHasher<K>;
  private readonly fixedClimbPeriod: number | undefined;
  private climbPeriod: number;
  private hitsInSample = 0;
  private missesInSample = 0;
  private previousHitRate = 0;
  /** Signed: the direction is the sign. Caffeine starts by trying to shrink the window. */
  private stepSize: number;

  constructor(options: TinyLfuOptions<K>) {
    this.maxSize = intOption('policy.capacity', options.capacity, 1);
    this.fixedClimbPeriod =
      options.climbPeriod === undefined ? undefined : intOption('policy.climbPeriod', options.climbPeriod, 1);
    this.hashKey = options.hash;
    this.maxWindow = initialWindow(this.maxSize);
    this.maxProtected = protectedMaximum(this.maxSize, this.maxWindow);
    this.sketch = new CountMinSketch(this.maxSize);
    this.climbPeriod = this.fixedClimbPeriod ?? Math.max(10 * this.maxSize, MIN_CLIMB_PERIOD);
    this.stepSize = -STEP_PERCENT * this.maxSize;
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
    if (node === undefined) return;
    this.sketch.increment(node.hash);
    const list = node.list;
    if (list === this.protectedList || list === this.window) {
      list.moveToMru(node);
    } else {
      // A second access while on probation earns a protected place.
      this.probation.remove(node);
      this.protectedList.pushMru(node);
      if (this.protectedList.size > this.maxProtected) this.demoteFromProtected();
    }
    if (++this.hitsInSample + this.missesInSample >= this.climbPeriod) this.climb();
  }

  add(key: K, canEvict: CanEvict<K>): K[] {
    if (this.nodes.has(key)) {
      // Adding a resident key is a caller bug in spirit; counting it as an access keeps the
      // lists consistent instead of duplicating the node.
      this.hit(key);
      return [];
    }
    const node = new ListNode(key, this.hashKey(key));
    this.nodes.set(key, node);
    this.window.pushMru(node);
    this.sketch.increment(node.hash);
    this.missesInSample++;
    const evicted: K[] = [];
    const candidate = this.evictFromWindow();
    if (this.nodes.size > this.maxSize) this.evictFromMain(candidate, this.maxSize, canEvict, evicted);
    if (this.hitsInSample + this.missesInSample >= this.climbPeriod) this.climb();
    return evicted;
  }

  delete(key: K): void {
    const node = this.nodes.get(key);
    if (node === undefined) return;
    node.list?.remove(node);
    this.nodes.delete(key);
  }

  evict(canEvict: CanEvict<K>): K | undefined {
    if (this.nodes.size === 0) return undefined;
    const evicted: K[] = [];
    // The window's LRU key is the candidate, as if a newcomer were pushing it out.
    this.evictFromMain(null, this.nodes.size - 1, canEvict, evicted);
    return evicted[0];
  }

  resize(capacity: number, canEvict: CanEvict<K>): K[] {
    this.maxSize = intOption('policy.capacity', capacity, 1);
    // Keep the window share the climber learned rather than starting over.
    const scaled = Math.round(this.windowShare * this.maxSize);
    this.maxWindow = Math.min(Math.max(1, scaled), Math.max(1, this.maxSize - 1));
    this.maxProtected = protectedMaximum(this.maxSize, this.maxWindow);
    const sketch = new CountMinSketch(this.maxSize);
    // A sketch sized for another capacity ages at the wrong pace; the lost counts are relearned
    // within one sample.
    if (sketch.width !== this.sketch.width) this.sketch = sketch;
    if (this.fixedClimbPeriod === undefined) this.climbPeriod = Math.max(10 * this.maxSize, MIN_CLIMB_PERIOD);
    this.stepSize = Math.sign(this.stepSize || -1) * STEP_PERCENT * this.maxSize;
    this.hitsInSample = 0;
    this.missesInSample = 0;
    this.demoteFromProtected();
    const evicted: K[] = [];
    const candidate = this.evictFromWindow();
    if (this.nodes.size > this.maxSize) this.evictFromMain(candidate, this.maxSize, canEvict, evicted);
    return evicted;
  }

  describe(): Record<string, number | string> {
    return {
      policy: this.name,
      size: this.nodes.size,
      capacity: this.maxSize,
      window: this.window.size,
      probation: this.probation.size,
      protected: this.protectedList.size,
      maxWindow: this.maxWindow,
      maxProtected: this.maxProtected,
      sketchWidth: this.sketch.width,
    };
  }

  /** Resident keys per segment, least recently used first (for tests and debugging; O(size)). */
  segments(): { window: K[]; probation: K[]; protected: K[] } {
    return {
      window: [...this.window.keys()],
      probation: [...this.probation.keys()],
      protected: [...this.protectedList.keys()],
    };
  }

  /**
   * The least frequent of the first evictable keys at the LRU ends of the window and of probation
   * (protected when probation has none): the victims evict() would duel first. Looks at most
   * {@link PEEK_LIMIT} keys of each list, so a list led by busy instances costs little.
   */
  peekVictim(canEvict: CanEvict<K>): K | undefined {
    const first = (node: ListNode<K> | null): ListNode<K> | null => {
      for (let n = 0; node !== null && n < PEEK_LIMIT; node = node.next, n++)
        if (canEvict(node.key)) return node;
      return null;
    };
    const main = first(this.probation.head) ?? first(this.protectedList.head);
    const window = first(this.window.head);
    if (main === null || window === null) return (main ?? window)?.key;
    return this.sketch.frequency(window.hash) < this.sketch.frequency(main.hash) ? window.key : main.key;
  }

  exportSketch(): SketchSnapshot {
    return this.sketch.snapshot();
  }

  importSketch(snapshot: SketchSnapshot): boolean {
    return this.sketch.restore(snapshot);
  }

  /** The sketch's estimate for a key, resident or not (for tests, stats and checkpoints). */
  frequency(key: K): number {
    return this.sketch.frequency(this.hashKey(key));
  }

  /** Moves the window's overflow to probation's MRU end; returns the first moved, the oldest candidate. */
  private evictFromWindow(): ListNode<K> | null {
    let first: ListNode<K> | null = null;
    while (this.window.size > this.maxWindow) {
      const node = this.window.head!;
      this.window.remove(node);
      this.probation.pushMru(node);
      first ??= node;
    }
    return first;
  }

  /**
   * Caffeine's evictFromMain: candidates (keys just moved out of the window, then the window
   * itself) duel victims (probation LRU onward, then protected, then window) on frequency until
   * the size is within `limit`. A candidate must be strictly more frequent to stay, so a stream
   * of one-hit wonders cannot flush the main area. Keys that may not leave are stepped over and
   * keep their place; a candidate that may not leave wins its duel by default. Both cursors
   * only move forward and nodes never change lists here, so one call is O(size) at worst and
   * ends either within `limit` or with every remaining key non-evictable.
   */
  private evictFromMain(candidate: ListNode<K> | null, limit: number, canEvict: CanEvict<K>, out: K[]): void {
    let victimList = this.probation;
    let victim = this.probation.head;
    let candidatesFromWindow = false;
    while (this.nodes.size > limit) {
      if (candidate === null && !candidatesFromWindow) {
        candidate = this.window.head;
        candidatesFromWindow = true;
      }
      if (candidate === null && victim === null) {
        if (victimList === this.probation) {
          victimList = this.protectedList;
          victim = this.protectedList.head;
          continue;
        }
        if (victimList === this.protectedList) {
          victimList = this.window;
          victim = this.window.head;
          continue;
        }
        break;
      }
      if (victim !== null && !canEvict(victim.key)) {
        victim = victim.next;
        continue;
      }
      if (victim === null) {
        // Only a candidate is left in this round: it goes if it may.
        const node = candidate!;
        candidate = node.next;
        if (canEvict(node.key)) this.remove(node, out);
        continue;
      }
      if (candidate === null) {
        const node = victim;
        victim = node.next;
        this.remove(node, out);
        continue;
      }
      if (candidate === victim) {
        victim = victim.next;
        this.remove(candidate, out);
        candidate = null;
        continue;
      }
      if (
        !canEvict(candidate.key) ||
        this.sketch.frequency(candidate.hash) > this.sketch.frequency(victim.hash)
      ) {
        const node = victim;
        victim = node.next;
        this.remove(node, out);
        candidate = candidate.next;
      } else {
        const node = candidate;
        candidate = node.next;
        this.remove(node, out);
      }
    }
  }

  private remove(node: ListNode<K>, out: K[]): void {
    node.list!.remove(node);
    this.nodes.delete(node.key);
    out.push(node.key);
  }

  /** Protected overflow returns to probation's MRU end: it gets one more chance before eviction. */
  private demoteFromProtected(): void {
    while (this.protectedList.size > this.maxProtected) {
      const node = this.protectedList.head!;
      this.protectedList.remove(node);
      this.probation.pushMru(node);
    }
  }

  /**
   * Caffeine's hill climber: once per sample, step the window size in the direction that last
   * raised the hit rate, reverse when it fell, restart with a full step when the hit rate jumps
   * (the workload changed), and otherwise let the step decay so the window settles.
   */
  private climb(): void {
    const hits = this.hitsInSample;
    const requests = hits + this.missesInSample;
    this.hitsInSample = 0;
    this.missesInSample = 0;
    // Without evictions the window size does not change the hit rate; nothing to learn.
    if (this.nodes.size < this.maxSize) return;
    const hitRate = hits / requests;
    const change = hitRate - this.previousHitRate;
    const amount = change >= 0 ? this.stepSize : -this.stepSize;
    this.stepSize =
      Math.abs(change) >= RESTART_THRESHOLD
        ? STEP_PERCENT * this.maxSize * (amount >= 0 ? 1 : -1)
        : STEP_DECAY * amount;
    this.previousHitRate = hitRate;
    const delta = Math.trunc(amount);
    if (delta > 0) this.increaseWindow(delta);
    else if (delta < 0) this.decreaseWindow(-delta);
  }

  /**
   * Grows the window by taking main's least valuable keys (probation first) into it. Unlike
   * Caffeine, which stops once the protected segment is used up (~80%), the window may grow to
   * capacity − 1: on the benchmark's recency-biased trace that extra room was worth about
   * 3 points (61% instead of 57–58%, LRU 62.5%).
   */
  private increaseWindow(amount: number): void {
    const quota = Math.min(amount, this.maxSize - 1 - this.maxWindow);
    if (quota <= 0) return;
    this.maxWindow += quota;
    this.windowShare = this.maxWindow / this.maxSize;
    this.maxProtected = protectedMaximum(this.maxSize, this.maxWindow);
    this.demoteFromProtected();
    for (let moved = 0; moved < quota; moved++) {
      const node = this.probation.head ?? this.protectedList.head;
      if (node === null) break;
      node.list!.remove(node);
      this.window.pushMru(node);
    }
  }

  /** Shrinks the window, moving its LRU keys to probation where they must earn their place. */
  private decreaseWindow(amount: number): void {
    const quota = Math.min(amount, this.maxWindow - 1);
    if (quota <= 0) return;
    this.maxWindow -= quota;
    this.windowShare = this.maxWindow / this.maxSize;
    this.maxProtected = protectedMaximum(this.maxSize, this.maxWindow);
    this.evictFromWindow();
  }
}
