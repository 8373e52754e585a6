/**
 * Canary rollouts of agent versions. `update` with a `rollout` strategy stores the new version as
 * the candidate of a rollout instead of activating it; `routeVersion` sends the flag's share of
 * requests to it; `promote` makes it active, `abortRollout` drops it. While a rollout runs, the
 * active version changes only by promotion. The flag strategies come from governance/flags.ts,
 * which depends on core/ only.
 *
 * This file owns the routing and the rollout writes; the registry calls them under its per-agent
 * lock and hands them what they need, so nothing here imports the registry.
 */
import { retryRacedWrite } from './raced-writes.ts';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError, validationError } from '../core/errors.ts';
import type { EventSink } from '../events/bus.ts';
import { evaluateFlag, type FlagStrategy, parseFlagStrategy, sameFlagStrategy } from '../governance/flags.ts';
import type { AgentStore } from '../store/ports.ts';
import type { Agent, AgentEvent, Rollout } from './agent.ts';
import { type AgentSpec, sameSpec } from './definition.ts';

/**
 * The version a request should run on: the rollout's candidate when its flag selects the request,
 * else the active version. `key` is what the share is taken of (a thread id keeps a conversation
 * on one version, a run id spreads single runs). It is hashed with the agent's id and the
 * candidate, so each rollout samples its own keys, and raising the share only ever adds keys.
 */
export function routeVersion(agent: Agent, key: string, now: number): number {
  const rollout = agent.rollout;
  if (rollout === null) return agent.activeVersion;
  const selected = evaluateFlag(rollout.flag, {
    project: agent.project,
    key: `${agent.id}\u0000${rollout.candidateVersion}\u0000${key}`,
    now,
    startedAt: rollout.flagStartedAt,
  });
  return selected ? rollout.candidateVersion : agent.activeVersion;
}

/** What the rollout writes are built from: the registry's store, bus and clock. */
export interface RolloutWriterDeps {
  store: AgentStore;
  bus: EventSink<AgentEvent>;
  clock: Clock;
  /** How often a write that lost a race to another writer (`VERSION_CONFLICT`) is tried. */
}

/** The registry's rollout writes; the caller holds the agent's write lock. */
export class RolloutWriter {
  readonly #store: AgentStore;
  readonly #bus: EventSink<AgentEvent>;
  readonly #clock: Clock;

  constructor(deps: RolloutWriterDeps) {
    this.#store = deps.store;
    this.#bus = deps.bus;
    this.#clock = deps.clock;
  }

  /** `update` of an agent with a rollout running: only the flag may change. */
  async updateRollingOut(
    current: Agent,
    rollout: Rollout,
    spec: AgentSpec,
    flag: FlagStrategy | undefined,
  ): Promise<{ agent: Agent; changed: boolean }> {
    if (!sameSpec(spec, current.spec)) {
      const candidate =
        flag === undefined
          ? undefined
          : await this.#store.getVersion<AgentSpec>(current.id, rollout.candidateVersion);
      // A patch that restates the candidate with a rollout is the request that started it, repeated.
      if (candidate === undefined || !sameSpec(spec, candidate.spec)) {
        throw rolloutInProgress(current, rollout);
      }
    }
    if (flag === undefined || sameFlagStrategy(flag, rollout.flag)) return { agent: current, changed: false };
    const now = this.#clock.now();
    const next: Rollout = { ...rollout, flag, flagStartedAt: now };
    const agent = await this.#store.setRollout<AgentSpec, FlagStrategy>(
      current.id,
      rollout.candidateVersion,
      next,
      now,
    );
    this.#emitRollout('agent.rollout_changed', agent, now);
    return { agent, changed: true };
  }

  /** Stores `spec` as a new version, the candidate of a rollout with `flag`; the active version stays. */
  async startRollout(current: Agent, spec: AgentSpec, flag: FlagStrategy): Promise<Agent> {
    const now = this.#clock.now();
    const agent = await this.#store.addVersion<AgentSpec, FlagStrategy>(
      current.id,
      current.latestVersion,
      spec,
      now,
      { rollout: flag },
    );
    this.#emitRollout('agent.rollout_started', agent, now);
    return agent;
  }

  /**
   * Promotes or aborts the running rollout of the agent `load` reads, retrying when another writer
   * got there first.
   */
  endRollout(load: () => Promise<Agent>, promote: boolean): Promise<Agent> {
    return retryRacedWrite(async () => {
      const current = await load();
      const rollout = current.rollout;
      if (rollout === null) throw noRollout(current);
      const candidateVersion = rollout.candidateVersion;
      const now = this.#clock.now();
      const agent = await this.#store.setRollout<AgentSpec, FlagStrategy>(
        current.id,
        candidateVersion,
        null,
        now,
        promote ? { activate: candidateVersion } : {},
      );
      const about = { at: now, project: agent.project, agentId: agent.id, name: agent.name };
      if (promote) {
        this.#emit({
          type: 'agent.rollout_promoted',
          ...about,
          version: candidateVersion,
          previousVersion: current.activeVersion,
        });
      } else {
        this.#emit({
          type: 'agent.rollout_aborted',
          ...about,
          activeVersion: agent.activeVersion,
          candidateVersion,
        });
      }
      return agent;
    });
  }

  #emitRollout(type: 'agent.rollout_started' | 'agent.rollout_changed', agent: Agent, now: number): void {
    this.#emit({
      type,
      at: now,
      project: agent.project,
      agentId: agent.id,
      name: agent.name,
      activeVersion: agent.activeVersion,
      rollout: agent.rollout as Rollout,
    });
  }

  #emit(event: AgentEvent): void {
    this.#bus.emit(event);
  }
}

/** Separates an update's `rollout` (validated) from the spec patch. */
export function splitRollout(patch: unknown): { specPatch: unknown; flag: FlagStrategy | undefined } {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch) || !('rollout' in patch)) {
    return { specPatch: patch, flag: undefined };
  }
  const { rollout, ...specPatch } = patch as Record<string, unknown>;
  if (rollout === undefined) return { specPatch, flag: undefined };
  if (rollout === null) {
    throw validationError('rollout', 'must be a flag strategy; to end a rollout, promote or abort it');
  }
  return { specPatch, flag: parseFlagStrategy(rollout, 'rollout') };
}

/** `ROLLOUT_IN_PROGRESS`: the change must wait until the rollout is promoted or aborted. */
export function rolloutInProgress(agent: Agent, rollout: Rollout): AgentPoolError {
  return new AgentPoolError(
    'ROLLOUT_IN_PROGRESS',
    `agent ${agent.name} is rolling out version ${rollout.candidateVersion} (version ${agent.activeVersion} is active); promote or abort the rollout first`,
    {
      project: agent.project,
      agent: agent.name,
      candidateVersion: rollout.candidateVersion,
      activeVersion: agent.activeVersion,
    },
  );
}

/** `ROLLOUT_NOT_FOUND`: the agent has no rollout running. */
export function noRollout(agent: Agent): AgentPoolError {
  return new AgentPoolError('ROLLOUT_NOT_FOUND', `agent ${agent.name} has no rollout in progress`, {
    project: agent.project,
    agent: agent.name,
  });
}
