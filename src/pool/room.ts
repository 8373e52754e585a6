/**
 * Room in the pool: at most `maxActive` live instances. An activation takes a place before it
 * builds its instance: at once when one is free or can be freed by evicting (the policy picks
 * the victim), otherwise by waiting in arrival order, up to `acquireTimeoutMs`
 * (`ACQUIRE_TIMEOUT`), in a queue of at most `maxWaiting` (`POOL_SATURATED`). Evicting when the
 * place is taken, not when the instance is inserted, keeps the bound exact: the victim cannot
 * become busy in between.
 */
import type { Clock } from '../core/clock.ts';
import { AgentPoolError } from '../core/errors.ts';
import { Histogram, type HistogramSnapshot } from '../core/metrics.ts';

/** The limits the room enforces. */
export interface RoomLimits {
  maxActive: number;
  maxWaiting: number;
  acquireTimeoutMs: number;
}

/** What the room asks of the pool. */
export interface RoomHooks {
  /** Live instances that hold no reservation (resident and one-shot). */
  occupied(): number;
  /** Evicts one idle instance if one may leave now; true when it did. */
  evictOne(): boolean;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Places for activations under the `maxActive` bound. */
export class Room {
  readonly #limits: RoomLimits;
  readonly #clock: Clock;
  readonly #hooks: RoomHooks;
  /** Bounded by `maxWaiting`. */
  readonly #waiters: Waiter[] = [];
  #reserved = 0;
  #timeouts = 0;
  /** How long acquirers that had to wait waited, in ms (whatever the outcome). */
  readonly #waits = new Histogram();

  constructor(limits: RoomLimits, clock: Clock, hooks: RoomHooks) {
    this.#limits = limits;
    this.#clock = clock;
    this.#hooks = hooks;
  }

  /** Places held by activations in flight. */
  get reserved(): number {
    return this.#reserved;
  }

  /** Acquirers waiting for a place. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Waits that ended in `ACQUIRE_TIMEOUT`. */
  get timeouts(): number {
    return this.#timeouts;
  }

  /** Waits for a place, in ms: only acquirers that had to wait are counted. */
  waitSnapshot(): HistogramSnapshot {
    return this.#waits.snapshot();
  }

  /** Live instances plus places held: what `maxActive` bounds. */
  live(): number {
    return this.#hooks.occupied() + this.#reserved;
  }

  /** Resolves holding a place (give it back with {@link release}); waits in arrival order. */
  reserve(project: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.#waiters.length === 0 && this.#tryTake()) return Promise.resolve();
    if (this.#waiters.length >= this.#limits.maxWaiting) {
      return Promise.reject(
        new AgentPoolError(
          'POOL_SATURATED',
          `${this.#waiters.length} acquirers are already waiting for room`,
          {
            maxWaiting: this.#limits.maxWaiting,
          },
        ),
      );
    }
    const timeoutMs = options.timeoutMs ?? this.#limits.acquireTimeoutMs;
    const { signal } = options;
    const since = performance.now();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.#waits.observe(performance.now() - since);
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
      };
      const waiter: Waiter = {
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      const timer = this.#clock.setTimeout(() => {
        this.#timeouts++;
        waiter.reject(
          new AgentPoolError(
            'ACQUIRE_TIMEOUT',
            `no room for a new instance within ${timeoutMs} ms: all ${this.#limits.maxActive} live instances are busy or pinned`,
            { project, timeoutMs, maxActive: this.#limits.maxActive },
          ),
        );
      }, timeoutMs);
      const onAbort = () => waiter.reject(signal?.reason);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Takes a place only when one is free now and nobody waits for one: never waits, never evicts
   * (a preload must not cost a request its place). True when taken; give it back with {@link release}.
   */
  tryReserveFree(): boolean {
    if (this.#waiters.length > 0 || this.live() >= this.#limits.maxActive) return false;
    this.#reserved++;
    return true;
  }

  /** Gives a place back and lets waiters in. */
  release(): void {
    this.#reserved--;
    this.wake();
  }

  /** Lets waiters in while places are free or can be freed; call it whenever something left. */
  wake(): void {
    for (let waiter = this.#waiters[0]; waiter !== undefined; waiter = this.#waiters[0]) {
      if (!this.#tryTake()) return;
      waiter.resolve();
    }
  }

  /** Fails every waiter (the pool is closing). */
  rejectAll(err: unknown): void {
    for (const waiter of this.#waiters.slice()) waiter.reject(err);
  }

  #tryTake(): boolean {
    if (this.live() >= this.#limits.maxActive && !this.#hooks.evictOne()) return false;
    this.#reserved++;
    return true;
  }
}
