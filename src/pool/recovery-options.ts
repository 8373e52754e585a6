/**
 * Options of failure recovery (`pool.recovery`), their defaults, and their validation in one step.
 */
import { boolOption, intOption, objectOption } from '../core/options.ts';

/** How the pool counts an agent's failures and how far it goes to heal the agent. */
export interface RecoveryOptions {
  /** Count failures and take recovery steps; false leaves every agent alone. @default true */
  enabled?: boolean;
  /**
   * Failures an agent may have within `windowMs` before recovery steps in: the failure that
   * brings the count to this number takes the first step (`restart`), each further one the next.
   * With the default one-hour window this is failures per hour, hence the name.
   * @default 5
   */
  maxFailuresPerHour?: number;
  /** The sliding window failures are counted over (ms). @default 3600000 (1 h) */
  windowMs?: number;
  /**
   * How long a degraded agent refuses its runs (`AGENT_DEGRADED`) before it is tried again (ms);
   * 0 keeps it degraded until an operator resets it. @default 900000 (15 min)
   */
  cooldownMs?: number;
  /** Steps kept in each agent's record of recovery, newest last. @default 20 */
  historySize?: number;
  /**
   * Agents whose failures and record are kept at most; beyond it the agent that failed least
   * recently and is not degraded is forgotten. @default 10000
   */
  maxTrackedAgents?: number;
  /** How often cooldowns are ended and failures that left the window are dropped (ms). @default 60000 */
  sweepIntervalMs?: number;
}

/** {@link RecoveryOptions} with every default applied. */
export type ResolvedRecoveryOptions = Required<RecoveryOptions>;

const FIELDS = [
  'enabled',
  'maxFailuresPerHour',
  'windowMs',
  'cooldownMs',
  'historySize',
  'maxTrackedAgents',
  'sweepIntervalMs',
] as const;

/** Applies defaults and rejects bad values with a message naming the field (`pool.recovery.windowMs`). */
export function resolveRecoveryOptions(input?: RecoveryOptions): ResolvedRecoveryOptions {
  const given = objectOption('pool.recovery', input, FIELDS) as RecoveryOptions;
  return {
    enabled: boolOption('pool.recovery.enabled', given.enabled, true),
    maxFailuresPerHour: intOption('pool.recovery.maxFailuresPerHour', given.maxFailuresPerHour, 5, 1, 10_000),
    windowMs: intOption('pool.recovery.windowMs', given.windowMs, 3_600_000, 1000),
    cooldownMs: intOption('pool.recovery.cooldownMs', given.cooldownMs, 900_000, 0),
    historySize: intOption('pool.recovery.historySize', given.historySize, 20, 1, 1000),
    maxTrackedAgents: intOption('pool.recovery.maxTrackedAgents', given.maxTrackedAgents, 10_000),
    sweepIntervalMs: intOption('pool.recovery.sweepIntervalMs', given.sweepIntervalMs, 60_000, 1000),
  };
}
