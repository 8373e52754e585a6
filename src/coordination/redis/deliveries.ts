/**
 * Operations a node sends to Redis without making its caller wait: giving back a run's place or
 * reservation, settling a cost, counting tokens. They leave in the order they were made (one
 * connection, so Redis applies them in that order); one that fails because Redis cannot be reached
 * is kept and sent again by the node's timer, oldest first, so a short outage loses nothing. The
 * list of those owed is bounded: beyond it the oldest is dropped and logged (its effect then comes
 * back by expiry: a place or reservation held by a run expires; a lost charge is the one thing
 * that stays lost, which is why it is logged as an error).
 */
import { isAgentPoolError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { redisFailure } from './lua-script.ts';

interface Owed {
  readonly what: string;
  readonly op: () => Promise<unknown>;
}

/** Fire-and-forget operations with redelivery. */
export class Deliveries {
  readonly #pending = new Set<Promise<void>>();
  #owed: Owed[] = [];
  readonly #maxOwed: number;
  readonly #log: Logger;

  constructor(log: Logger, maxOwed = 10_000) {
    this.#log = log;
    this.#maxOwed = maxOwed;
  }

  /** Operations that failed and wait for the next {@link retry}. */
  get owed(): number {
    return this.#owed.length;
  }

  /** Sends `op` now; `what` names it in logs. */
  send(what: string, op: () => Promise<unknown>): void {
    const sent = op().then(
      () => undefined,
      (err: unknown) => this.#owe({ what, op }, err),
    );
    this.#pending.add(sent);
    void sent.finally(() => this.#pending.delete(sent));
  }

  /** Sends again, oldest first, what failed so far. */
  retry(): void {
    const owed = this.#owed;
    this.#owed = [];
    for (const o of owed) this.send(o.what, o.op);
  }

  /** Resolves once everything sent so far was answered (applied, or owed for a retry). */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  /** Logs what is still owed and forgets it (the node is stopping). */
  abandon(): void {
    if (this.#owed.length > 0) {
      const what = [...new Set(this.#owed.map((o) => o.what))];
      this.#log.error({ owed: this.#owed.length, what }, 'operations Redis never received were given up');
    }
    this.#owed = [];
  }

  #owe(owed: Owed, cause: unknown): void {
    const err = redisFailure(cause, owed.what);
    if (!isAgentPoolError(err, 'COORDINATION_UNAVAILABLE')) {
      // Redis answered and refused: sending it again would fail the same way.
      this.#log.error({ err, what: owed.what }, 'Redis refused an operation');
      return;
    }
    if (this.#owed.length >= this.#maxOwed) {
      const dropped = this.#owed.shift();
      this.#log.error({ what: dropped?.what }, 'too many operations owed to Redis: the oldest was dropped');
    }
    if (this.#owed.length === 0)
      this.#log.warn({ err, what: owed.what }, 'Redis unreachable: operations kept for a retry');
    this.#owed.push(owed);
  }
}
