/**
 * The autoscaler: every `intervalMs` it reads the pool's load (busy / capacity, acquirers waiting,
 * evictions and how long activations took since the last reading) and the heap, and moves the
 * pool's capacity (its maxActive in effect) between `minActive` and `maxActive`:
 *
 * - up by `stepRatio` (at least one, and at least the acquirers waiting) when utilisation reaches
 *   `scaleUpThreshold`, when acquirers wait for room, or when the pool evicts while activations
 *   are slow (churn that more room would save), unless the heap is at 90% of `memoryLimitBytes`,
 *   or the capacity shrank less than `cooldownMs` ago;
 * - down by `stepRatio` when utilisation is at most `scaleDownThreshold`, nobody waits and
 *   nothing was evicted, once `cooldownMs` passed since the last change (never below what would
 *   put the busy instances above `scaleUpThreshold`);
 * - down at once, whatever the cooldown, while the heap is above `memoryLimitBytes`.
 *
 * Shrinking evicts idle, unpinned instances only (busy ones leave as they are released, hot ones
 * stay). Each change is a `pool.scaled` event with its reasons. Nothing here runs per run: the
 * figures are the pool's cumulative counters, read once per interval.
 */
import { getHeapStatistics } from 'node:v8';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { Logger } from '../core/logger.ts';
import type { EventSink } from '../events/bus.ts';
import {
  type AutoscalingOptions,
  type ResolvedAutoscalingOptions,
  resolveAutoscalingOptions,
} from './autoscaler-options.ts';
import type { InstancePool } from './pool.ts';
import type { ScaledEvent } from './scaling-events.ts';

/** One change of capacity. */
export interface ScalingDecision {
  at: number;
  direction: 'up' | 'down';
  from: number;
  to: number;
  reasons: string[];
  evicted: number;
}

/** Figures for stats and metrics. */
export interface AutoscalerStats {
  enabled: boolean;
  /** The pool's capacity in effect. */
  capacity: number;
  minActive: number;
  maxActive: number;
  /** The heap limit decisions use, bytes. */
  memoryLimitBytes: number;
  decisions: { up: number; down: number };
  /** Readings where load asked for more room and the heap refused it. */
  blockedByMemory: number;
  last: ScalingDecision | null;
}

/** What the autoscaler works with. */
export interface AutoscalerDeps {
  pool: InstancePool;
  bus: EventSink<ScaledEvent>;
  clock: Clock;
  log: Logger;
  /** Heap in use, bytes. @default process.memoryUsage().heapUsed */
  heapUsed?: () => number;
}

const MiB = 2 ** 20;
const fixed2 = (x: number) => (Math.round(x * 100) / 100).toString();

/** Moves the pool's capacity with its load and the heap. */
export class Autoscaler {
  readonly options: ResolvedAutoscalingOptions;
  /** The heap limit decisions use: `memoryLimitBytes`, or 80% of V8's. */
  readonly memoryLimitBytes: number;
  readonly #deps: AutoscalerDeps;
  readonly #heapUsed: () => number;
  #timer: TimerHandle | undefined;
  #closed = false;
  #lastChangeAt = 0;
  #lastDirection: 'up' | 'down' | null = null;
  /** The cumulative figures of the previous reading. */
  #seen = { evictions: 0, activations: 0, latencySum: 0 };
  #up = 0;
  #down = 0;
  #blockedByMemory = 0;
  #last: ScalingDecision | null = null;

  constructor(deps: AutoscalerDeps, options: AutoscalingOptions = {}) {
    this.options = resolveAutoscalingOptions(options, deps.pool.options.maxActive);
    this.memoryLimitBytes =
      this.options.memoryLimitBytes > 0
        ? this.options.memoryLimitBytes
        : Math.floor(0.8 * getHeapStatistics().heap_size_limit);
    this.#deps = deps;
    this.#heapUsed = deps.heapUsed ?? (() => process.memoryUsage().heapUsed);
  }

  /** Brings the capacity within bounds and starts the readings (when enabled). */
  start(): void {
    if (!this.options.enabled || this.#closed || this.#timer !== undefined) return;
    const { pool, clock } = this.#deps;
    this.#lastChangeAt = clock.now(); // a pool just started is idle: no shrinking for a cooldown
    const s = pool.stats();
    this.#seen = {
      evictions: s.evictions,
      activations: s.activations,
      latencySum: s.activationLatencyMs.sum,
    };
    const { minActive, maxActive } = this.options;
    const within = Math.min(maxActive, Math.max(minActive, pool.capacity));
    if (within !== pool.capacity) {
      this.#apply(within > pool.capacity ? 'up' : 'down', within, [
        `capacity within minActive ${minActive} … maxActive ${maxActive}`,
      ]);
    }
    this.#schedule();
  }

  /** Takes one reading and decision now (the timer calls it); returns the change made, if any. */
  tick(): ScalingDecision | undefined {
    if (this.#closed) return undefined;
    const { pool, clock } = this.#deps;
    const o = this.options;
    const now = clock.now();
    const s = pool.stats();
    const capacity = pool.capacity;
    const busy = s.byState.busy + s.activating;
    const utilisation = busy / capacity;
    const evictions = s.evictions - this.#seen.evictions;
    const activations = s.activations - this.#seen.activations;
    const activationMs =
      activations > 0 ? (s.activationLatencyMs.sum - this.#seen.latencySum) / activations : 0;
    this.#seen = {
      evictions: s.evictions,
      activations: s.activations,
      latencySum: s.activationLatencyMs.sum,
    };
    const heap = this.#heapUsed();
    const limit = this.memoryLimitBytes;

    if (heap > limit && capacity > o.minActive) {
      const to = Math.max(o.minActive, capacity - this.#step(capacity));
      return this.#apply('down', to, [
        `heap ${(heap / MiB).toFixed(0)} MiB > memoryLimitBytes ${(limit / MiB).toFixed(0)} MiB`,
      ]);
    }

    const up: string[] = [];
    if (utilisation >= o.scaleUpThreshold)
      up.push(`utilisation ${fixed2(utilisation)} ≥ ${o.scaleUpThreshold}`);
    if (s.waiting > 0) up.push(`${s.waiting} acquirer(s) waiting for room`);
    if (evictions > 0 && activationMs >= o.slowActivationMs) {
      up.push(
        `${evictions} eviction(s) while activations took ${activationMs.toFixed(0)} ms ≥ ${o.slowActivationMs}`,
      );
    }
    if (up.length > 0) {
      if (capacity >= o.maxActive) return undefined;
      if (heap >= 0.9 * limit) {
        this.#blockedByMemory++;
        this.#deps.log.debug(
          { heap, limit, reasons: up },
          'capacity not grown: the heap is near memoryLimitBytes',
        );
        return undefined;
      }
      if (this.#lastDirection === 'down' && now - this.#lastChangeAt < o.cooldownMs) return undefined;
      const to = Math.min(o.maxActive, capacity + Math.max(this.#step(capacity), s.waiting));
      return this.#apply('up', to, up);
    }

    if (
      utilisation <= o.scaleDownThreshold &&
      s.waiting === 0 &&
      evictions === 0 &&
      capacity > o.minActive &&
      now - this.#lastChangeAt >= o.cooldownMs
    ) {
      // Not so far down that the busy instances would ask to grow again at once.
      const floor = Math.max(o.minActive, Math.floor(busy / o.scaleUpThreshold) + 1);
      const to = Math.max(floor, capacity - this.#step(capacity));
      if (to >= capacity) return undefined;
      return this.#apply('down', to, [
        `utilisation ${fixed2(utilisation)} ≤ ${o.scaleDownThreshold}, nobody waiting, no evictions`,
      ]);
    }
    return undefined;
  }

  stats(): AutoscalerStats {
    return {
      enabled: this.options.enabled,
      capacity: this.#deps.pool.capacity,
      minActive: this.options.minActive,
      maxActive: this.options.maxActive,
      memoryLimitBytes: this.memoryLimitBytes,
      decisions: { up: this.#up, down: this.#down },
      blockedByMemory: this.#blockedByMemory,
      last: this.#last,
    };
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  #step(capacity: number): number {
    return Math.max(1, Math.round(capacity * this.options.stepRatio));
  }

  #apply(direction: 'up' | 'down', to: number, reasons: string[]): ScalingDecision {
    const { pool, clock, bus, log } = this.#deps;
    const from = pool.capacity;
    const evicted = pool.resize(to);
    const at = clock.now();
    const decision: ScalingDecision = { at, direction, from, to, reasons, evicted };
    this.#last = decision;
    this.#lastChangeAt = at;
    this.#lastDirection = direction;
    if (direction === 'up') this.#up++;
    else this.#down++;
    bus.emit({ type: 'pool.scaled', ...decision });
    log.info({ direction, from, to, reasons, evicted }, 'pool capacity changed');
    return decision;
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#timer = this.#deps.clock.setTimeout(() => {
      try {
        this.tick();
      } catch (err) {
        this.#deps.log.error({ err }, 'autoscaler reading failed');
      }
      this.#schedule();
    }, this.options.intervalMs);
  }
}
