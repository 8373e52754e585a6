/**
 * Agents' `lastUsedAt`, coalesced: uses are noted in memory (per agent, the latest) and written in
 * one store write per interval, and at close, so a run never pays for a store write of its own.
 * The pool is the source: its instances carry when they were last leased, and it hands those over
 * when asked (a collector), or when an instance ends; nothing is added to the acquire path.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { intOption } from '../core/options.ts';
import type { AgentStore, AgentUse } from '../store/ports.ts';

/** How uses are recorded. */
export interface AgentUsageOptions {
  /**
   * How often the uses noted since the last write are written to the store, ms: an agent's
   * `lastUsedAt` lags its real last use by up to this much (the pool's close writes the rest).
   * @default 60000
   */
  lastUsedFlushIntervalMs?: number;
  /**
   * Agents whose latest use is held in memory at most; noting one more writes them all at once.
   * @default 10000
   */
  maxPendingUses?: number;
}

/** {@link AgentUsageOptions} with every default applied. */
export type ResolvedAgentUsageOptions = Required<AgentUsageOptions>;

/** Applies defaults and rejects bad values with a message naming the field. */
export function resolveAgentUsageOptions(
  input: AgentUsageOptions = {},
  prefix = 'agents.',
): ResolvedAgentUsageOptions {
  return {
    lastUsedFlushIntervalMs: intOption(
      `${prefix}lastUsedFlushIntervalMs`,
      input.lastUsedFlushIntervalMs,
      60_000,
      1,
    ),
    maxPendingUses: intOption(`${prefix}maxPendingUses`, input.maxPendingUses, 10_000, 1),
  };
}

/** Hands the uses its owner kept itself to `note` (called before every write). */
export type UseCollector = (note: (agentId: string, at: number) => void) => void;

/** Coalesced writes of agents' last use. */
export class AgentUsage {
  readonly options: ResolvedAgentUsageOptions;
  readonly #store: AgentStore;
  readonly #clock: Clock;
  /** Latest use per agent since the last write; at most `maxPendingUses` entries. */
  #pending = new Map<string, number>();
  readonly #collectors = new Set<UseCollector>();
  #timer: TimerHandle | undefined;
  #writing: Promise<void> | undefined;
  /** Set at the start of close(): the last flush still takes uses, but nothing is scheduled. */
  #closing = false;
  #closed = false;

  constructor(store: AgentStore, clock: Clock, options: AgentUsageOptions = {}) {
    this.options = resolveAgentUsageOptions(options);
    this.#store = store;
    this.#clock = clock;
  }

  /** Uses noted and not yet written. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Notes that the agent was used at `at`; written with the next flush. */
  readonly note = (agentId: string, at: number): void => {
    if (this.#closed) return;
    const known = this.#pending.get(agentId);
    if (known !== undefined) {
      if (at > known) this.#pending.set(agentId, at);
      return;
    }
    this.#pending.set(agentId, at);
    if (this.#pending.size >= this.options.maxPendingUses) {
      this.flush().catch(() => undefined); // failures keep the uses for the next flush
    } else {
      this.#schedule();
    }
  };

  /**
   * Adds a source of uses asked at every flush; returns the function that removes it. The periodic
   * flush runs while there is a collector or a pending use.
   */
  addCollector(collect: UseCollector): () => void {
    this.#collectors.add(collect);
    this.#schedule();
    return () => {
      this.#collectors.delete(collect);
      if (this.#collectors.size === 0 && this.#pending.size === 0) {
        this.#timer?.cancel();
        this.#timer = undefined;
      }
    };
  }

  /**
   * Collects, then writes every pending use in one store call. One write at a time: a flush asked
   * for while one runs waits for it, then writes what was noted meanwhile. A failed write keeps its
   * uses (within the bound) for the next one.
   */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing.catch(() => undefined);
    for (const collect of this.#collectors) collect(this.note);
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const uses: AgentUse[] = [];
    for (const [id, at] of batch) uses.push({ id, at });
    const writing = this.#store.recordUse(uses);
    this.#writing = writing;
    try {
      await writing;
    } catch (err) {
      for (const [id, at] of batch) {
        if (this.#pending.size >= this.options.maxPendingUses) break;
        if (!((this.#pending.get(id) ?? 0) >= at)) this.#pending.set(id, at);
      }
      throw err;
    } finally {
      this.#writing = undefined;
    }
  }

  /** Stops the timer and writes what is pending; later uses are ignored. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      this.#collectors.clear();
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closing) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.flush()
        .catch(() => undefined) // best effort: lastUsedAt is bookkeeping; the uses wait for the next flush
        .finally(() => {
          if (this.#collectors.size > 0 || this.#pending.size > 0) this.#schedule();
        });
    }, this.options.lastUsedFlushIntervalMs);
  }
}
