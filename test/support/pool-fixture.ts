/** A registry and instance pool on the memory store with a manual clock, for pool tests. */
import { ManualClock } from '../../src/core/clock.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { type InstanceEvent, InstancePool } from '../../src/pool/pool.ts';
import type { InstancePoolOptions } from '../../src/pool/pool-options.ts';
import { type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';

export const P = 'acme';

/** Everything a pool test needs; `events` records every event emitted. */
export function poolFixture(options: InstancePoolOptions = {}) {
  const clock = new ManualClock();
  const bus = new LocalEventBus<AgentEvent | InstanceEvent>();
  const events: (AgentEvent | InstanceEvent)[] = [];
  bus.on('*', (e) => events.push(e));
  const store = new MemoryAgentStore();
  const registry = new AgentRegistry({ store, bus, clock });
  const pool = new InstancePool({ registry, bus, clock }, options);
  const transitions = () =>
    events
      .filter((e): e is InstanceEvent => e.type === 'instance.state_changed')
      .map((e) => `${e.name}:${e.from}>${e.to}:${e.reason}`);
  return { clock, bus, events, store, registry, pool, transitions };
}

/** Creates agents named `${prefix}0` … in the fixture's project. */
export async function createAgents(registry: AgentRegistry, count: number, prefix = 'a', extra: object = {}) {
  for (let i = 0; i < count; i++) await registry.create(P, { name: `${prefix}${i}`, ...extra });
}

/** Lets pending promise continuations run. */
export const flush = () => new Promise<void>((resolve) => setImmediate(resolve));
