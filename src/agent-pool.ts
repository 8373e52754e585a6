/**
 * The composition root and the public library API: `createAgentPool()` wires a store, the event
 * bus, the registry and the instance pool, and schedules the registry's ttl sweep. Everything
 * hangs on the returned object, so two pools can live in one process.
 */
import { join } from 'node:path';
import { type Clock, systemClock, type TimerHandle } from './core/clock.ts';
import { enumOption, intOption } from './core/options.ts';
import { type EventBus, LocalEventBus } from './events/bus.ts';
import { type InstanceEvent, InstancePool } from './pool/pool.ts';
import type { InstancePoolOptions } from './pool/pool-options.ts';
import { type AgentEvent, AgentRegistry } from './registry/registry.ts';
import { MemoryAgentStore } from './store/memory.ts';
import type { AgentStore } from './store/ports.ts';
import { SqliteAgentStore } from './store/sqlite.ts';

/** Every event an agent pool emits. */
export type AgentPoolEvent = AgentEvent | InstanceEvent;

/** Options of {@link createAgentPool}. */
export interface AgentPoolOptions {
  /** Where definitions live: the embedded SQLite file, process memory, or your own adapter. @default 'sqlite' */
  store?: 'sqlite' | 'memory' | AgentStore;
  /** Directory of the SQLite file (`agentpool.db`). @default './data' */
  dataDir?: string;
  /** Bounds and ageing of live instances. */
  pool?: InstancePoolOptions;
  /** How often ephemeral agents past their ttl are deleted; 0 never. @default 60000 */
  ttlSweepIntervalMs?: number;
  /** Time source. @default the system clock */
  clock?: Clock;
  /** The event bus. @default an in-process bus */
  bus?: EventBus<AgentPoolEvent>;
}

/** A running agent pool. */
export interface AgentPool {
  /** Agent definitions and versions. */
  readonly agents: AgentRegistry;
  /** Live instances: acquire, release, prewarm, pause, stats. */
  readonly instances: InstancePool;
  /** Subscribe to `agent.*` and `instance.*` events. */
  readonly events: EventBus<AgentPoolEvent>;
  readonly store: AgentStore;
  readonly clock: Clock;
  /** Activates every hot-tier agent of every project; returns how many were prewarmed. */
  prewarmHot(): Promise<number>;
  /** Stops timers, terminates instances and closes the store (a store you passed in is closed too). */
  close(): Promise<void>;
}

/** Creates an agent pool. */
export async function createAgentPool(options: AgentPoolOptions = {}): Promise<AgentPool> {
  const clock = options.clock ?? systemClock;
  const ttlSweepIntervalMs = intOption('ttlSweepIntervalMs', options.ttlSweepIntervalMs, 60_000, 0);
  const store = openStore(options);
  const bus = options.bus ?? new LocalEventBus<AgentPoolEvent>();
  const agents = new AgentRegistry({ store, bus, clock });
  let instances: InstancePool;
  try {
    instances = new InstancePool({ registry: agents, bus, clock }, options.pool);
  } catch (err) {
    await store.close();
    throw err;
  }

  let closed = false;
  let sweeping = false;
  let ttlTimer: TimerHandle | undefined;
  const scheduleTtlSweep = () => {
    if (ttlSweepIntervalMs === 0 || closed) return;
    ttlTimer = clock.setTimeout(() => {
      scheduleTtlSweep();
      if (sweeping) return; // the previous sweep is still running
      sweeping = true;
      agents
        .sweepExpired((id) => instances.isActive(id))
        .catch((err: unknown) => console.error('agentpool: ttl sweep failed', err))
        .finally(() => {
          sweeping = false;
        });
    }, ttlSweepIntervalMs);
  };
  scheduleTtlSweep();

  return {
    agents,
    instances,
    events: bus,
    store,
    clock,
    async prewarmHot() {
      let count = 0;
      let cursor: string | undefined;
      do {
        const page = await agents.listByTier('hot', { limit: 500, ...(cursor !== undefined && { cursor }) });
        for (const agent of page.data) {
          await instances.prewarm(agent.project, agent.id);
          count++;
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      return count;
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        ttlTimer?.cancel();
        instances.close();
      } finally {
        await store.close();
      }
    },
  };
}

function openStore(options: AgentPoolOptions): AgentStore {
  const store = options.store ?? 'sqlite';
  if (typeof store === 'object') return store;
  const kind = enumOption('store', store, ['sqlite', 'memory'] as const, 'sqlite');
  if (kind === 'memory') return new MemoryAgentStore();
  return new SqliteAgentStore({ path: join(options.dataDir ?? './data', 'agentpool.db') });
}
