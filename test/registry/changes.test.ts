/**
 * Definitions changed by another process on the same SQLite file: two registries, each on its own
 * store, as `agentpool serve` and `agentpool apply -f` have them. What one writes, the other
 * announces on its bus at its next `checkForChanges()`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'acme';

/** A registry on its own store over `path`, recording the events it emits. */
function registryOn(path: string, changeHistory?: number) {
  const store = new SqliteAgentStore({ path, ...(changeHistory !== undefined && { changeHistory }) });
  const bus = new LocalEventBus<AgentEvent>();
  const events: AgentEvent[] = [];
  bus.on('*', (e) => events.push(e));
  const registry = new AgentRegistry({ store, bus, clock: new ManualClock() });
  return { registry, store, events };
}

describe('changes made by another process on the same store', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: ReturnType<typeof registryOn>;
  let other: ReturnType<typeof registryOn>;

  beforeEach(async () => {
    tmp = tempDir();
    const path = join(tmp.dir, 'agentpool.db');
    server = registryOn(path);
    other = registryOn(path);
    await server.registry.checkForChanges(); // where the feed stands when the server starts
  });
  afterEach(async () => {
    await server.store.close();
    await other.store.close();
    tmp.cleanup();
  });

  /** The server's events after a check, without `at`. */
  const announced = async () => {
    server.events.length = 0;
    await server.registry.checkForChanges();
    return server.events.map(({ at: _at, ...rest }) => rest);
  };

  it('announces a create, an update, a rollout and a delete as agent.created, agent.changed and agent.deleted', async () => {
    const a = await other.registry.create(P, { name: 'a', instructions: 'v1' });
    assert.deepEqual(await announced(), [
      { type: 'agent.created', project: P, agentId: a.id, name: 'a', version: 1 },
    ]);
    await other.registry.apply(P, { name: 'a', instructions: 'v2' });
    assert.deepEqual(await announced(), [
      {
        type: 'agent.changed',
        project: P,
        agentId: a.id,
        name: 'a',
        activeVersion: 2,
        latestVersion: 2,
        rollout: null,
      },
    ]);
    await other.registry.update(P, 'a', {
      instructions: 'v3',
      rollout: { strategy: 'percentage', percent: 20 },
    });
    const [rollout] = await announced();
    assert.equal(rollout?.type, 'agent.changed');
    assert.equal(rollout?.type === 'agent.changed' && rollout.rollout?.candidateVersion, 3);
    await other.registry.delete(P, 'a');
    assert.deepEqual(await announced(), [
      { type: 'agent.deleted', project: P, agentId: a.id, name: 'a', reason: 'deleted' },
    ]);
  });

  it('announces several changes of one agent between two looks as one, with its state now', async () => {
    await other.registry.create(P, { name: 'a', instructions: 'v1' });
    await server.registry.checkForChanges();
    await other.registry.update(P, 'a', { instructions: 'v2' });
    await other.registry.update(P, 'a', { instructions: 'v3' });
    await other.registry.rollback(P, 'a', 2);
    const events = await announced();
    assert.equal(events.length, 1);
    assert.equal(events[0]?.type === 'agent.changed' && events[0].activeVersion, 2);
  });

  it('does not announce its own writes twice: they were announced when made', async () => {
    await server.registry.create(P, { name: 'mine' });
    await server.registry.update(P, 'mine', { instructions: 'v2' });
    assert.deepEqual(await announced(), []);
  });

  it('answers synchronously with no promise when nothing changed', async () => {
    assert.equal(server.registry.checkForChanges(), undefined);
    await other.registry.create(P, { name: 'a' });
    const checking = server.registry.checkForChanges();
    assert.ok(checking instanceof Promise);
    await checking;
    assert.equal(server.registry.checkForChanges(), undefined);
  });

  it('only notes where the feed stands on its first look: earlier changes are already in the store', async () => {
    await other.registry.create(P, { name: 'before' });
    const late = registryOn(join(tmp.dir, 'agentpool.db'));
    try {
      await late.registry.checkForChanges();
      assert.equal(late.events.length, 0);
      await other.registry.create(P, { name: 'after' });
      await late.registry.checkForChanges();
      assert.deepEqual(
        late.events.map((e) => e.type === 'agent.created' && e.name),
        ['after'],
      );
    } finally {
      await late.store.close();
    }
  });

  it('catches up over several pages', async () => {
    for (let i = 0; i < 1201; i++)
      await other.store.create({
        id: `agt_${i}`,
        project: P,
        name: `n${i}`,
        spec: { labels: {}, tier: 'warm' },
        now: 0,
      });
    const events = await announced();
    assert.equal(events.length, 1201);
    const last = events.at(-1);
    assert.equal(last?.type === 'agent.created' && last.agentId, 'agt_1200');
  });

  it('announces agent.changes_lost when deletions it has not seen were pruned from the history', async () => {
    const pruning = registryOn(join(tmp.dir, 'agentpool.db'), 2);
    try {
      for (const name of ['a', 'b', 'c']) await pruning.registry.create(P, { name });
      for (const name of ['a', 'b', 'c']) await pruning.registry.delete(P, name);
      const events = await announced();
      assert.equal(events[0]?.type, 'agent.changes_lost');
      assert.ok(events.slice(1).every((e) => e.type !== 'agent.changes_lost'));
      assert.deepEqual(await announced(), [], 'a later look is complete again');
    } finally {
      await pruning.store.close();
    }
  });

  it('a memory store has no other writers: there is nothing to check', () => {
    const registry = new AgentRegistry({
      store: new MemoryAgentStore(),
      bus: new LocalEventBus<AgentEvent>(),
      clock: new ManualClock(),
    });
    assert.equal(registry.checkForChanges(), undefined);
  });
});
