/**
 * The coded errors the pool itself raises (the codes are catalogued in core/errors.ts; the room
 * raises its own, `ACQUIRE_TIMEOUT` and `POOL_SATURATED`).
 */
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import type { Agent } from '../registry/registry.ts';

/** `AGENT_PAUSED`: the agent's instance grants no leases until resumed. */
export function pausedError(agent: Agent): AgentPoolError {
  return new AgentPoolError('AGENT_PAUSED', `agent ${agent.name} is paused`, {
    project: agent.project,
    agent: agent.name,
  });
}

/** An activation's error as callers see it: coded errors as they are, others as ACTIVATION_FAILED. */
export function activationFailed(err: unknown, project: string, idOrName: string): AgentPoolError {
  if (isAgentPoolError(err)) return err;
  return new AgentPoolError(
    'ACTIVATION_FAILED',
    `activating ${JSON.stringify(idOrName)} failed: ${String(err)}`,
    { project, agent: idOrName },
    { cause: err },
  );
}

/** `POOL_CLOSED`: the pool was closed. */
export function closedError(): AgentPoolError {
  return new AgentPoolError('POOL_CLOSED', 'the pool is closed');
}

/** `INSTANCE_NOT_FOUND`: the agent has no live instance to act on. */
export function instanceNotFound(project: string, idOrName: string): AgentPoolError {
  return new AgentPoolError('INSTANCE_NOT_FOUND', `agent ${JSON.stringify(idOrName)} has no live instance`, {
    project,
    agent: idOrName,
  });
}

/** `ACTIVATION_TIMEOUT`: the health monitor gave up on an activation that took too long. */
export function activationTimedOut(
  project: string,
  idOrName: string,
  timeoutMs: number,
  elapsedMs: number,
): AgentPoolError {
  return new AgentPoolError(
    'ACTIVATION_TIMEOUT',
    `activating ${JSON.stringify(idOrName)} took longer than ${timeoutMs} ms`,
    { project, agent: idOrName, timeoutMs, elapsedMs },
  );
}

/** `TIER_SATURATED`: the tier's instance or concurrent-run limit is reached (pool.tiers.limits). */
export function tierSaturated(
  agent: Agent,
  tier: string,
  limit: 'maxInstances' | 'maxConcurrentRuns',
  value: number,
): AgentPoolError {
  return new AgentPoolError(
    'TIER_SATURATED',
    `the ${tier} tier is at its ${limit} (${value}): agent ${agent.name} cannot be served now`,
    { project: agent.project, agent: agent.name, tier, limit, value, retryAfterSeconds: 1 },
  );
}
