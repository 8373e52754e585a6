/**
 * Thread leases: the port behind "one run per thread", and its one-process adapter. A run claims
 * its thread before it writes anything to it; the claim resolves with the fencing token the run's
 * writes must carry (`RunStore.createRun` / `commitStep`, see "Fencing" in store/ports.ts), so a
 * run that lost its lease without noticing (its node paused, cut off from Redis) cannot write into
 * a thread another run now holds: the store that holds the data refuses it.
 *
 * The strategies are the run's `multitask` (thread-gate.ts): `reject`, `enqueue` in arrival
 * order, `interrupt` (the newest wins). One process needs no fence and no expiry: the local
 * adapter wraps the in-process {@link ThreadGate} and answers `undefined` tokens. A cluster uses
 * the Redis adapter (redis/thread-leases.ts), whose leases expire with a dead node.
 */
import { AgentPoolError } from '../core/errors.ts';
import { type GateEntrant, type MultitaskStrategy, ThreadGate } from './thread-gate.ts';

/** Grants threads to runs one at a time, in one process or across a cluster. */
export interface ThreadLeases {
  /** Resolves, once `entrant` holds the thread, with the fencing token its writes must carry
   *  (undefined from the local adapter: one process needs no fence). Rejects with THREAD_BUSY
   *  (reject strategy, or a full queue), the entrant's abort reason when it is aborted while
   *  waiting (incl. RUN_INTERRUPTED when a newer `interrupt` run supersedes it), or
   *  COORDINATION_UNAVAILABLE (Redis down). */
  claim(threadId: string, entrant: GateEntrant, strategy: MultitaskStrategy): Promise<number | undefined>;
  /**
   * Grants a free thread at once, without a promise, where the adapter can tell without waiting
   * (one process): true when `entrant` now holds it, with no fencing token, to be released as after
   * {@link claim}; false, taking nothing, when it is busy, the entrant aborted, the leases closed,
   * or the adapter must ask elsewhere (then {@link claim} decides). @default absent: always claim
   */
  claimNow?(threadId: string, entrant: GateEntrant): boolean;
  /** True when this node knows `runId` holds the thread now (synchronous; the warm path's check). */
  holds(threadId: string, runId: string): boolean;
  /** Whether claims answer fencing tokens (a cluster): a run's writes must then wait for its token. */
  readonly fenced: boolean;
  /** The run holding the thread now, on any node; undefined when it is free. */
  holder(threadId: string): Promise<string | undefined>;
  /** Gives the thread up (next waiter, any node, gets it). Never throws; a cluster adapter
   *  whose release cannot reach Redis leaves the lease to expire. Idempotent. */
  release(threadId: string, entrant: GateEntrant): void;
  /** Threads this node holds now. */
  readonly held: number;
  /** Stops timers and subscriptions; waiting claims reject with the given error. */
  close(): Promise<void>;
}

/** The error waiting claims (and claims made after `close()`) reject with, and holders are aborted with. */
export function nodeClosing(): AgentPoolError {
  return new AgentPoolError('RUN_INTERRUPTED', 'the node is closing');
}

interface LocalWaiter {
  readonly threadId: string;
  readonly entrant: GateEntrant;
  readonly reject: (err: unknown) => void;
}

/**
 * Thread leases for one process: the {@link ThreadGate}'s turns, with no token (nothing else can
 * write to the store) and nothing to renew. `close()` rejects the claims still waiting with
 * `RUN_INTERRUPTED` ("the node is closing") and aborts the runs holding a thread with the same
 * error, as the cluster adapter does when it gives their leases up.
 */
export class LocalThreadLeases implements ThreadLeases {
  readonly #gate: ThreadGate;
  /** Claims waiting in the gate, so that `close()` can refuse them. */
  readonly #waiting = new Set<LocalWaiter>();
  #closed = false;

  /** @param gate the gate to wrap (its `maxQueue` bounds each thread's queue). @default a new ThreadGate(100) */
  constructor(gate: ThreadGate = new ThreadGate()) {
    this.#gate = gate;
  }

  claimNow(threadId: string, entrant: GateEntrant): boolean {
    return !this.#closed && !entrant.controller.signal.aborted && this.#gate.claimFree(threadId, entrant);
  }

  claim(threadId: string, entrant: GateEntrant, strategy: MultitaskStrategy): Promise<number | undefined> {
    if (this.#closed) return Promise.reject(nodeClosing());
    const signal = entrant.controller.signal;
    if (signal.aborted) return Promise.reject(signal.reason as unknown);
    // The gate grants a free thread synchronously, so `holds()` is true as soon as this returns.
    const granted = this.#gate.claim(threadId, entrant, strategy);
    return new Promise<number | undefined>((resolve, reject) => {
      const waiter: LocalWaiter = { threadId, entrant, reject };
      this.#waiting.add(waiter);
      granted.then(
        () => {
          if (this.#waiting.delete(waiter)) resolve(undefined);
          // Refused by close() while it waited: the turn it got is given straight back.
          else this.release(threadId, entrant);
        },
        (err: unknown) => {
          if (this.#waiting.delete(waiter)) reject(err);
        },
      );
    });
  }

  holds(threadId: string, runId: string): boolean {
    return this.#gate.activeRun(threadId) === runId;
  }

  readonly fenced = false;

  holder(threadId: string): Promise<string | undefined> {
    return Promise.resolve(this.#gate.activeRun(threadId));
  }

  release(threadId: string, entrant: GateEntrant): void {
    this.#gate.release(threadId, entrant);
  }

  get held(): number {
    return this.#gate.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = nodeClosing();
    const waiting = new Set<GateEntrant>();
    for (const w of this.#waiting) {
      waiting.add(w.entrant);
      w.reject(reason);
    }
    this.#waiting.clear();
    for (const holder of this.#gate.holders()) {
      if (!waiting.has(holder) && !holder.controller.signal.aborted) holder.controller.abort(reason);
    }
  }
}
