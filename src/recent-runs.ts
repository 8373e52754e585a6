/**
 * The last runs of each agent on this node, for the dashboard's drill-down: a few per agent, for
 * the agents that ran most recently (bounded both ways). The run store has no index by agent; this
 * costs a Map lookup per finished run instead.
 */
import { OldestKey } from './core/oldest-key.ts';
import type { RunRecord } from './store/ports.ts';

/** One recent run of an agent. */
export interface RecentRun {
  runId: string;
  status: RunRecord['status'];
  threadId: string | null;
  version: number;
  model: string;
  cost: number;
  durationMs: number;
  finishedAt: number;
}

/** The last `perAgent` runs of the `maxAgents` agents that finished a run last. */
export class RecentRuns {
  readonly #perAgent: number;
  readonly #maxAgents: number;
  /** Insertion order is recency: an agent that runs again moves to the end. */
  readonly #byAgent = new Map<string, RecentRun[]>();
  /** The agent that finished a run last: already the newest key of #byAgent. */
  #newest: string | undefined;
  readonly #oldest = new OldestKey(this.#byAgent);

  constructor(perAgent: number, maxAgents: number) {
    this.#perAgent = perAgent;
    this.#maxAgents = maxAgents;
  }

  /** Notes a finished run. */
  runFinished(run: RunRecord): void {
    let list = this.#byAgent.get(run.agentId);
    if (list === undefined) {
      if (this.#byAgent.size >= this.#maxAgents) {
        this.#oldest.evict();
      }
      list = [];
      this.#byAgent.set(run.agentId, list);
    } else if (run.agentId !== this.#newest) {
      // Moved to the end; an agent that ran last already is there (a delete and set of a Map's
      // only key cost it a new table each time).
      this.#byAgent.delete(run.agentId);
      this.#byAgent.set(run.agentId, list);
    }
    this.#newest = run.agentId;
    const finishedAt = run.finishedAt ?? run.createdAt;
    list.unshift({
      runId: run.id,
      status: run.status,
      threadId: run.threadId,
      version: run.agentVersion,
      model: run.model,
      cost: run.cost,
      durationMs: Math.max(0, finishedAt - run.createdAt),
      finishedAt,
    });
    if (list.length > this.#perAgent) list.pop();
  }

  /** The agent's last runs here, newest first. */
  of(agentId: string): RecentRun[] {
    return [...(this.#byAgent.get(agentId) ?? [])];
  }
}
