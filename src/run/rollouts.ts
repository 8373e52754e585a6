/**
 * Canary rollouts as an operator sees them: the running rollout of an agent next to what its runs
 * did on each version since it started (success rate, latency), and the two ways to end it.
 * Routing runs to the candidate is the run manager's; the rollout record is the registry's.
 */
import type { Clock } from '../core/clock.ts';
import { currentPercent, type FlagStrategy } from '../governance/flags.ts';
import type { Agent, AgentRegistry } from '../registry/registry.ts';
import type { RunStore, VersionStats } from '../store/ports.ts';

/** A running rollout and the outcomes of each version's runs since it started. */
export interface RolloutStatus {
  readonly agent: string;
  readonly activeVersion: number;
  readonly candidateVersion: number;
  readonly flag: FlagStrategy;
  readonly startedAt: number;
  /** The share of runs the candidate gets now, 0..100; null for allow/deny lists (by project). */
  readonly currentPercent: number | null;
  /** Runs of the active version since the rollout started. */
  readonly stable: VersionStats;
  /** Runs of the candidate. */
  readonly candidate: VersionStats;
}

function noRuns(version: number): VersionStats {
  return {
    version,
    runs: 0,
    succeeded: 0,
    failed: 0,
    cancelled: 0,
    successRate: null,
    p50Ms: null,
    p99Ms: null,
  };
}

/** Rollouts of agent versions: status, promote, abort. */
export class Rollouts {
  readonly #registry: AgentRegistry;
  readonly #store: RunStore;
  readonly #clock: Clock;

  constructor(deps: { registry: AgentRegistry; store: RunStore; clock: Clock }) {
    this.#registry = deps.registry;
    this.#store = deps.store;
    this.#clock = deps.clock;
  }

  /** The agent's running rollout with per-version run outcomes; `ROLLOUT_NOT_FOUND` when none runs. */
  async status(project: string, agentRef: string): Promise<RolloutStatus> {
    const agent = await this.#registry.get(project, agentRef);
    const rollout = await this.#registry.rollout(project, agent.id);
    const stats = await this.#store.versionStats(project, agent.id, rollout.startedAt);
    const of = (version: number) => stats.find((s) => s.version === version) ?? noRuns(version);
    return {
      agent: agent.name,
      activeVersion: agent.activeVersion,
      candidateVersion: rollout.candidateVersion,
      flag: rollout.flag,
      startedAt: rollout.startedAt,
      currentPercent: currentPercent(rollout.flag, this.#clock.now(), rollout.flagStartedAt),
      stable: of(agent.activeVersion),
      candidate: of(rollout.candidateVersion),
    };
  }

  /** Makes the candidate the active version and ends the rollout. */
  promote(project: string, agentRef: string): Promise<Agent> {
    return this.#registry.promote(project, agentRef);
  }

  /** Ends the rollout; the active version stays, the candidate stays in the history. */
  abort(project: string, agentRef: string): Promise<Agent> {
    return this.#registry.abortRollout(project, agentRef);
  }
}
