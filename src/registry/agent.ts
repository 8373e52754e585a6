/**
 * What the registry hands out and announces: the agent record with its versions and rollout, and
 * the `agent.*` events emitted on every change. Shared by the registry, its rollouts and the pool;
 * it imports no other registry module, so any of them can depend on it.
 */
import type { BusEvent } from '../events/bus.ts';
import type { FlagStrategy } from '../governance/flags.ts';
import type { AgentRecord, AgentRollout, AgentVersionRecord } from '../store/ports.ts';
import type { AgentSpec } from './definition.ts';

/** A persisted agent whose active spec is a validated {@link AgentSpec}. */
export type Agent = AgentRecord<AgentSpec, FlagStrategy>;
/** A canary rollout of an agent version, with its validated flag. */
export type Rollout = AgentRollout<FlagStrategy>;
/** One immutable version of an agent. */
export type AgentVersion = AgentVersionRecord<AgentSpec>;

/** Events the registry emits. */
export type AgentEvent =
  | (BusEvent & { type: 'agent.created'; project: string; agentId: string; name: string; version: number })
  | (BusEvent & {
      type: 'agent.updated' | 'agent.rolled_back';
      project: string;
      agentId: string;
      name: string;
      version: number;
      previousVersion: number;
    })
  | (BusEvent & {
      type: 'agent.deleted';
      project: string;
      agentId: string;
      name: string;
      reason: 'deleted' | 'expired';
    })
  | (BusEvent & {
      /** A rollout began, or its flag changed; the active version did not change. */
      type: 'agent.rollout_started' | 'agent.rollout_changed';
      project: string;
      agentId: string;
      name: string;
      activeVersion: number;
      rollout: Rollout;
    })
  | (BusEvent & {
      /** The candidate became the active version, like `agent.updated`. */
      type: 'agent.rollout_promoted';
      project: string;
      agentId: string;
      name: string;
      version: number;
      previousVersion: number;
    })
  | (BusEvent & {
      /** The rollout ended without a change of the active version. */
      type: 'agent.rollout_aborted';
      project: string;
      agentId: string;
      name: string;
      activeVersion: number;
      candidateVersion: number;
    })
  | (BusEvent & {
      /**
       * Another process changed the agent on the same store (a new or re-activated version, a
       * rollout started, changed or ended). The store reports the state after the change, not the
       * change: several changes between two looks arrive as one, so the pool retires the instance.
       */
      type: 'agent.changed';
      project: string;
      agentId: string;
      name: string;
      activeVersion: number;
      latestVersion: number;
      rollout: Rollout | null;
    })
  | (BusEvent & {
      /**
       * The store no longer holds every change other processes made since this registry last looked
       * (its bounded history of deletions was pruned past that point): whatever was derived from
       * the agents' earlier state (live instances) must be dropped. `after` is the cursor it had.
       */
      type: 'agent.changes_lost';
      after: string;
    });
