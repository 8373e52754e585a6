/**
 * One run per thread at a time. A run claims its thread before it writes anything to it; what
 * happens when the thread is busy is the run's `multitask` strategy:
 * - `reject`: fail at once with `THREAD_BUSY`;
 * - `enqueue`: wait, in arrival order, for the runs ahead to finish;
 * - `interrupt`: the newest message wins: the running run and every run waiting ahead are
 *   cancelled (they end `interrupted`), and this one goes next.
 * State exists only for threads with a run in flight, and each queue is bounded.
 */
import { AgentPoolError } from '../core/errors.ts';
import { SoloMap } from '../core/solo-map.ts';

/** What a run does when its thread is busy. */
export const MULTITASK_STRATEGIES = ['reject', 'enqueue', 'interrupt'] as const;
/** One of {@link MULTITASK_STRATEGIES}. */
export type MultitaskStrategy = (typeof MULTITASK_STRATEGIES)[number];

/** A run as the gate sees it: its id and how to stop it. */
export interface GateEntrant {
  runId: string;
  /** Aborted (with a RUN_INTERRUPTED error as reason) when an `interrupt` run takes over. */
  controller: AbortController;
}

interface Waiter {
  entrant: GateEntrant;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface ThreadTurn {
  active: GateEntrant;
  queue: Waiter[];
}

/** Grants threads to runs one at a time. */
export class ThreadGate {
  /** Threads held; usually one at a time, so a SoloMap. */
  readonly #threads = new SoloMap<string, ThreadTurn>();
  readonly #maxQueue: number;

  /** @param maxQueue runs waiting on one thread at most; more fail with `THREAD_BUSY`. */
  constructor(maxQueue = 100) {
    this.#maxQueue = maxQueue;
  }

  /** The run holding a thread, if any. */
  activeRun(threadId: string): string | undefined {
    return this.#threads.get(threadId)?.active.runId;
  }

  /** True when a `reject` run would be refused now. */
  isBusy(threadId: string): boolean {
    return this.#threads.has(threadId);
  }

  /** Threads with a run holding them (and maybe runs waiting). */
  get size(): number {
    return this.#threads.size;
  }

  /** The runs holding a thread now. */
  *holders(): IterableIterator<GateEntrant> {
    for (const turn of this.#threads.values()) yield turn.active;
  }

  /**
   * Grants a free thread to `entrant` at once and returns true (then call {@link release} exactly
   * once); false, taking nothing, when the thread is busy.
   */
  claimFree(threadId: string, entrant: GateEntrant): boolean {
    if (this.#threads.has(threadId)) return false;
    this.#threads.set(threadId, { active: entrant, queue: [] });
    return true;
  }

  /**
   * Resolves when `entrant` holds the thread; the caller must then call {@link release} exactly
   * once. Rejects with `THREAD_BUSY` (reject strategy, or a full queue) or with the abort reason
   * when the entrant is cancelled while waiting.
   */
  claim(threadId: string, entrant: GateEntrant, strategy: MultitaskStrategy): Promise<void> {
    if (this.claimFree(threadId, entrant)) return Promise.resolve();
    const turn = this.#threads.get(threadId) as ThreadTurn;
    if (strategy === 'reject') return Promise.reject(busy(threadId, turn.active.runId, 'is running'));
    if (turn.queue.length >= this.#maxQueue) {
      return Promise.reject(
        busy(threadId, turn.active.runId, `has ${turn.queue.length} runs queued already`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { entrant, resolve, reject };
      if (strategy === 'interrupt') {
        const reason = new AgentPoolError('RUN_INTERRUPTED', `interrupted by run ${entrant.runId}`, {
          threadId,
          by: entrant.runId,
        });
        for (const superseded of turn.queue.splice(0)) superseded.reject(reason);
        turn.queue.push(waiter);
        turn.active.controller.abort(reason);
      } else {
        turn.queue.push(waiter);
      }
      entrant.controller.signal.addEventListener(
        'abort',
        () => {
          const i = turn.queue.indexOf(waiter);
          if (i < 0) return;
          turn.queue.splice(i, 1);
          reject(entrant.controller.signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Gives the thread to the next waiting run, or frees it. */
  release(threadId: string, entrant: GateEntrant): void {
    const turn = this.#threads.get(threadId);
    if (turn === undefined || turn.active !== entrant) return;
    const next = turn.queue.shift();
    if (next === undefined) {
      this.#threads.delete(threadId);
      return;
    }
    turn.active = next.entrant;
    next.resolve();
  }
}

function busy(threadId: string, activeRunId: string, what: string): AgentPoolError {
  return new AgentPoolError('THREAD_BUSY', `thread ${threadId} ${what} (run ${activeRunId})`, {
    threadId,
    activeRunId,
  });
}
