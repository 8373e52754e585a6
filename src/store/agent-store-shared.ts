/**
 * The errors every AgentStore adapter raises, built in one place so adapters agree on codes,
 * messages and details (the conformance suite checks them).
 */
import { AgentPoolError, validationError } from '../core/errors.ts';

/** An agent id the store does not have. */
export function agentNotFound(id: string): AgentPoolError {
  return new AgentPoolError('AGENT_NOT_FOUND', `agent "${id}" not found`, { id });
}

/** A version the agent does not have. */
export function versionNotFound(id: string, version: number): AgentPoolError {
  return new AgentPoolError('VERSION_NOT_FOUND', `agent "${id}" has no version ${version}`, { id, version });
}

/** An agent id, or a (project, name), already taken. */
export function agentExists(
  agent: { id: string; project: string; name: string },
  byName: boolean,
): AgentPoolError {
  return byName
    ? new AgentPoolError(
        'AGENT_EXISTS',
        `agent "${agent.name}" already exists in project "${agent.project}"`,
        {
          project: agent.project,
          name: agent.name,
        },
      )
    : new AgentPoolError('AGENT_EXISTS', `an agent with id "${agent.id}" already exists`, { id: agent.id });
}

/** addVersion by a writer that read an older latest version. */
export function versionConflict(id: string, expectedLatest: number, latest: number): AgentPoolError {
  return new AgentPoolError(
    'VERSION_CONFLICT',
    `agent "${id}" is at version ${latest}, not ${expectedLatest}; reload it and retry`,
    { id, expectedLatest, latestVersion: latest },
  );
}

/** setRollout by a writer that read another rollout (or none). */
export function rolloutConflict(id: string, expected: number | null, running: number | null): AgentPoolError {
  const say = (c: number | null) => (c === null ? 'no rollout' : `a rollout of version ${c}`);
  return new AgentPoolError(
    'VERSION_CONFLICT',
    `agent "${id}" has ${say(running)}, not ${say(expected)}; reload it and retry`,
    { id, expectedCandidate: expected, candidateVersion: running },
  );
}

/** A change of the active version while a rollout runs. */
export function rolloutInProgress(
  id: string,
  candidateVersion: number,
  activeVersion: number,
): AgentPoolError {
  return new AgentPoolError(
    'ROLLOUT_IN_PROGRESS',
    `agent "${id}" is rolling out version ${candidateVersion}; promote or abort the rollout first`,
    { id, candidateVersion, activeVersion },
  );
}

/** A rollout whose candidate would be the active version. */
export function candidateIsActive(version: number): AgentPoolError {
  return validationError(
    'rollout.candidateVersion',
    `is ${version}, the active version; nothing to roll out`,
    {
      version,
    },
  );
}
