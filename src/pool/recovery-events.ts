/**
 * The event failure recovery emits for each step it takes or undoes (`instance.recovery`), and the
 * vocabulary of steps: the four strategies in escalation order, then what ends them.
 */
import type { BusEvent } from '../events/bus.ts';
import type { Tier } from '../registry/definition.ts';

/** The recovery strategies, in escalation order. */
export const RECOVERY_STRATEGIES = ['restart', 'recover', 'migrate', 'escalate'] as const;
/** One of {@link RECOVERY_STRATEGIES}. */
export type RecoveryStrategy = (typeof RECOVERY_STRATEGIES)[number];

/**
 * A step of an agent's record of recovery: a strategy, or what undoes them: `reset` (an operator),
 * `cooldown_ended` (a degraded agent serves again), `restored` (no failure left in the window: a
 * migrated agent is back on its own tier).
 */
export type RecoveryStepName = RecoveryStrategy | 'reset' | 'cooldown_ended' | 'restored';

/** One entry of an agent's record of recovery. */
export interface RecoveryStep {
  readonly step: RecoveryStepName;
  /** Epoch ms. */
  readonly at: number;
  /** The agent's counted failures in the window when the step was taken. */
  readonly failures: number;
  /** The failure that triggered a strategy; null for the steps that undo them. */
  readonly cause: { readonly code: string; readonly message: string } | null;
  /** `migrate`: the tier the agent now activates at; `restored`: its own tier again. */
  readonly tier?: Tier;
  /** `escalate`: when the cooldown ends (null: only a reset ends it). */
  readonly until?: number | null;
  /** `restart`: what happened to the live instance (restarted in place, retired, none live). */
  readonly outcome?: string;
  /** The node that took the step. */
  readonly node: string;
}

/** Emitted for every step of {@link RecoveryStep}. */
export type RecoveryEvent = BusEvent &
  RecoveryStep & {
    type: 'instance.recovery';
    project: string;
    agentId: string;
    name: string;
  };
