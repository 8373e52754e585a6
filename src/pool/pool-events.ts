/**
 * The pool's side of the event bus: the agent events it listens to (every change after which a
 * live instance may no longer match its agent's record) and the instance event it emits on every
 * transition.
 */
import type { BusEvent, EventSink, Listener } from '../events/bus.ts';
import type { AgentEvent } from '../registry/registry.ts';
import type { AgentInstance, InstanceState, TransitionReason } from './instance.ts';

/**
 * What the pool needs of the pool's bus: it listens to agent events and emits instance events.
 * Narrower than EventBus, so a bus carrying more event types (the pool's) fits.
 */
export interface PoolBus extends EventSink<InstanceEvent> {
  on(type: AgentEvent['type'], listener: Listener<AgentEvent>): () => void;
  hasListeners(type: InstanceEvent['type']): boolean;
}

/** Emitted on every instance transition. */
export type InstanceEvent = BusEvent & {
  type: 'instance.state_changed';
  project: string;
  agentId: string;
  name: string;
  version: number;
  instanceId: string;
  from: InstanceState;
  to: InstanceState;
  reason: TransitionReason;
};

/** The registry events after which an agent's instance may no longer match its record. */
export type AgentChange = Exclude<AgentEvent, { type: 'agent.created' | 'agent.changes_lost' }>;

/** Subscribes `listener` to every {@link AgentChange}; returns the function that unsubscribes it. */
export function onAgentChanges(bus: PoolBus, listener: (e: AgentChange) => void): () => void {
  const onAgentChanged = (e: AgentEvent) => {
    if (e.type !== 'agent.created' && e.type !== 'agent.changes_lost') listener(e);
  };
  const offs = [
    bus.on('agent.updated', onAgentChanged),
    bus.on('agent.rolled_back', onAgentChanged),
    bus.on('agent.rollout_promoted', onAgentChanged),
    bus.on('agent.deleted', onAgentChanged),
    // A lease's agent record carries the rollout that routing reads, so it must not go stale.
    bus.on('agent.rollout_started', onAgentChanged),
    bus.on('agent.rollout_changed', onAgentChanged),
    bus.on('agent.rollout_aborted', onAgentChanged),
    // Another process changed it on the same store (see registry/changes.ts).
    bus.on('agent.changed', onAgentChanged),
  ];
  return () => {
    for (const off of offs) off();
  };
}

/** The event of an instance's transition from `from` to `to`, at `at`. */
export function instanceStateChanged(
  instance: AgentInstance,
  from: InstanceState,
  to: InstanceState,
  reason: TransitionReason,
  at: number,
): InstanceEvent {
  const a = instance.agent;
  return {
    type: 'instance.state_changed',
    at,
    project: a.project,
    agentId: a.id,
    name: a.name,
    version: a.activeVersion,
    instanceId: instance.id,
    from,
    to,
    reason,
  };
}
