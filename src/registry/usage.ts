/**
 * Agents' `lastUsedAt` and run figures (uses, successes, failures, latency, cost), coalesced: uses
 * and finished runs are noted in memory (per agent, the latest use and the sums since the last
 * write) and written in one store write per interval, and at close, so a run never pays for a
 * store write of its own (one Map lookup and a few additions).
 * The pool is the source: its instances carry when they were last leased, and it hands those over
 * when asked (a collector), or when an instance ends; nothing is added to the acquire path.
 */
import type { Clock, TimerHandle } from '../core/clock.ts';
import { intOption } from '../core/options.ts';
import type {
  AgentStore,
  AgentUsageRecord,
  AgentUse,
  ListUsageQuery,
  Page,
  RunRecord,
} from '../store/ports.ts';
import { addRunTotals, zeroRunTotals } from '../store/usage-paging.ts';

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

/** What is pending of one agent: its latest use, and the figures of runs finished since the last write. */
interface PendingUse {
  at: number;
  runs: MutableRunTotals | undefined;
}

interface MutableRunTotals {
  uses: number;
  successes: number;
  failures: number;
  latencyMsTotal: number;
  latencyCount: number;
  costUsd: number;
}

/** The terminal statuses a run is a use in (a `queued` or `running` record is not finished). */
const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

/** Coalesced writes of agents' last use and run figures. */
export class AgentUsage {
  readonly options: ResolvedAgentUsageOptions;
  readonly #store: AgentStore;
  readonly #clock: Clock;
  /** Latest use per agent since the last write; at most `maxPendingUses` entries. */
  #pending = new Map<string, PendingUse>();
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
      if (at > known.at) known.at = at;
      return;
    }
    this.#add(agentId, { at, runs: undefined });
  };

  /**
   * Adds a finished run to its agent's figures (uses, successes, failures, latency, cost) and moves
   * its last use; written with the next flush. Runs not in a terminal status are ignored.
   */
  record(run: RunRecord): void {
    if (this.#closed || !FINISHED.has(run.status)) return;
    const at = run.finishedAt ?? run.createdAt;
    let pending = this.#pending.get(run.agentId);
    const fresh = pending === undefined;
    if (pending === undefined) pending = { at, runs: undefined };
    else if (at > pending.at) pending.at = at;
    const r = (pending.runs ??= zeroTotals());
    r.uses++;
    if (run.status === 'succeeded') r.successes++;
    else if (run.status === 'failed') r.failures++;
    if (run.startedAt !== null && run.finishedAt !== null) {
      r.latencyMsTotal += run.finishedAt - run.startedAt;
      r.latencyCount++;
    }
    r.costUsd += run.cost;
    if (fresh) this.#add(run.agentId, pending);
  }

  /** What is pending of one agent (not yet written), for live figures. */
  peek(agentId: string): AgentUse | undefined {
    const p = this.#pending.get(agentId);
    return p && { id: agentId, at: p.at, runs: p.runs && { ...p.runs } };
  }

  /** `record` (the store's) with what this process has not written yet of its agent added. */
  withPending(record: AgentUsageRecord): AgentUsageRecord {
    const p = this.#pending.get(record.agentId);
    if (p === undefined) return record;
    const runs = p.runs === undefined ? record : addRunTotals(record, p.runs);
    return { ...record, ...runs, lastUsedAt: Math.max(record.lastUsedAt, p.at) };
  }

  /**
   * An agent's usage as of now: what the store holds plus what this process has not written yet;
   * undefined when neither has any. Another node's pending figures arrive with its next flush.
   */
  async of(agent: {
    id: string;
    project: string;
    name: string;
    lastUsedAt: number;
  }): Promise<AgentUsageRecord | undefined> {
    const stored = await this.#store.getUsage(agent.id);
    if (stored === undefined && !this.#pending.has(agent.id)) return undefined;
    const { id: agentId, project, name, lastUsedAt } = agent;
    return this.withPending(stored ?? { agentId, project, name, lastUsedAt, ...zeroRunTotals() });
  }

  /** The activity report: used agents by `query.sort`, paged, this process's pending figures written first. */
  async list(query: ListUsageQuery): Promise<Page<AgentUsageRecord>> {
    await this.flush();
    return this.#store.listUsage(query);
  }

  #add(agentId: string, pending: PendingUse): void {
    this.#pending.set(agentId, pending);
    if (this.#pending.size >= this.options.maxPendingUses) {
      this.flush().catch(() => undefined); // failures keep the uses for the next flush
    } else {
      this.#schedule();
    }
  }

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
    for (const [id, p] of batch)
      uses.push(p.runs === undefined ? { id, at: p.at } : { id, at: p.at, runs: p.runs });
    const writing = this.#store.recordUse(uses);
    this.#writing = writing;
    try {
      await writing;
    } catch (err) {
      // Put back, merged with what was noted meanwhile: run figures are sums, so none may be lost twice or kept twice.
      for (const [id, p] of batch) {
        const now = this.#pending.get(id);
        if (now === undefined) {
          if (this.#pending.size >= this.options.maxPendingUses) continue;
          this.#pending.set(id, p);
          continue;
        }
        if (p.at > now.at) now.at = p.at;
        if (p.runs !== undefined) {
          if (now.runs === undefined) now.runs = p.runs;
          else addInto(now.runs, p.runs);
        }
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

function zeroTotals(): MutableRunTotals {
  return { uses: 0, successes: 0, failures: 0, latencyMsTotal: 0, latencyCount: 0, costUsd: 0 };
}

/** `to += from`, field by field. */
function addInto(to: MutableRunTotals, from: MutableRunTotals): void {
  to.uses += from.uses;
  to.successes += from.successes;
  to.failures += from.failures;
  to.latencyMsTotal += from.latencyMsTotal;
  to.latencyCount += from.latencyCount;
  to.costUsd += from.costUsd;
}
