import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { type AgentEvent, AgentRegistry } from '../../src/registry/registry.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import type { AgentStore } from '../../src/store/ports.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'acme';

function setup(store: AgentStore = new MemoryAgentStore()) {
  const clock = new ManualClock();
  const bus = new LocalEventBus<AgentEvent>();
  const events: AgentEvent[] = [];
  bus.on('*', (e) => events.push(e));
  return { registry: new AgentRegistry({ store, bus, clock }), clock, events, store };
}

const code = (c: string) => (err: unknown) => isAgentPoolError(err) && err.code === c;

describe('agent registry', () => {
  it('creates an agent and gets it by id and by name', async () => {
    const { registry, events } = setup();
    const agent = await registry.create(P, { name: 'support', instructions: 'Help.' });
    assert.match(agent.id, /^agt_/);
    assert.equal(agent.activeVersion, 1);
    assert.deepEqual(await registry.get(P, agent.id), agent);
    assert.deepEqual(await registry.get(P, 'support'), agent);
    assert.deepEqual(
      events.map((e) => e.type),
      ['agent.created'],
    );
  });

  it('answers AGENT_EXISTS for a taken name, AGENT_NOT_FOUND for a missing one', async () => {
    const { registry } = setup();
    await registry.create(P, { name: 'support' });
    await assert.rejects(registry.create(P, { name: 'support' }), code('AGENT_EXISTS'));
    await assert.rejects(registry.get(P, 'nobody'), code('AGENT_NOT_FOUND'));
  });

  it('keeps projects apart, by name and by id', async () => {
    const { registry } = setup();
    const mine = await registry.create('one', { name: 'support' });
    const theirs = await registry.create('two', { name: 'support' });
    assert.notEqual(mine.id, theirs.id);
    await assert.rejects(registry.get('two', mine.id), code('AGENT_NOT_FOUND'));
    await assert.rejects(registry.update('two', mine.id, { instructions: 'x' }), code('AGENT_NOT_FOUND'));
    await assert.rejects(registry.delete('two', mine.id), code('AGENT_NOT_FOUND'));
    assert.equal((await registry.list('one')).data.length, 1);
  });

  it('rejects a bad project id', async () => {
    const { registry } = setup();
    await assert.rejects(registry.create('Bad Project', { name: 'x' }), code('VALIDATION_FAILED'));
  });

  it('makes a version for each change and none for a no-op update', async () => {
    const { registry, clock, events } = setup();
    await registry.create(P, { name: 'support', instructions: 'v1' });
    clock.advance(1000);
    const { agent: v2, changed } = await registry.update(P, 'support', { instructions: 'v2' });
    assert.equal(changed, true);
    assert.equal(v2.activeVersion, 2);
    assert.equal(v2.spec.instructions, 'v2');
    const noop = await registry.update(P, 'support', { instructions: 'v2' });
    assert.equal(noop.changed, false);
    assert.equal(noop.agent.latestVersion, 2);
    const versions = await registry.versions(P, 'support');
    assert.deepEqual(
      versions.data.map((v) => [v.version, v.spec.instructions]),
      [
        [2, 'v2'],
        [1, 'v1'],
      ],
    );
    assert.deepEqual(
      events.map((e) => e.type),
      ['agent.created', 'agent.updated'],
    );
  });

  it('rolls back to an earlier version, and refuses one that does not exist', async () => {
    const { registry, events } = setup();
    await registry.create(P, { name: 'support', instructions: 'v1' });
    await registry.update(P, 'support', { instructions: 'v2' });
    const rolled = await registry.rollback(P, 'support', 1);
    assert.equal(rolled.activeVersion, 1);
    assert.equal(rolled.latestVersion, 2);
    assert.equal(rolled.spec.instructions, 'v1');
    await assert.rejects(registry.rollback(P, 'support', 9), code('VERSION_NOT_FOUND'));
    const next = await registry.update(P, 'support', { instructions: 'v3' });
    assert.equal(next.agent.activeVersion, 3);
    assert.equal(events.at(-1)?.type, 'agent.updated');
    assert.ok(
      events.some((e) => e.type === 'agent.rolled_back' && e.version === 1 && e.previousVersion === 2),
    );
  });

  it('deletes an agent with its versions', async () => {
    const { registry, events } = setup();
    const agent = await registry.create(P, { name: 'gone' });
    await registry.delete(P, 'gone');
    await assert.rejects(registry.get(P, agent.id), code('AGENT_NOT_FOUND'));
    await assert.rejects(registry.delete(P, 'gone'), code('AGENT_NOT_FOUND'));
    assert.ok(events.some((e) => e.type === 'agent.deleted' && e.reason === 'deleted'));
  });

  it('lists with cursor pagination and a label filter', async () => {
    const { registry } = setup();
    for (let i = 0; i < 25; i++) {
      await registry.create(P, {
        name: `a-${String(i).padStart(2, '0')}`,
        labels: { team: i % 2 ? 'odd' : 'even' },
      });
    }
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await registry.list(P, { limit: 10, ...(cursor && { cursor }) });
      assert.ok(page.data.length <= 10);
      names.push(...page.data.map((a) => a.name));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    assert.equal(names.length, 25);
    assert.deepEqual(names, [...names].sort());
    const odd = await registry.list(P, { labels: { team: 'odd' }, limit: 100 });
    assert.equal(odd.data.length, 12);
    assert.ok(odd.data.every((a) => a.spec.labels.team === 'odd'));
    await assert.rejects(registry.list(P, { limit: 0 }), code('VALIDATION_FAILED'));
  });

  it('apply creates, then updates on change, then leaves an unchanged spec alone', async () => {
    const { registry } = setup();
    const spec = { name: 'support', instructions: 'one' };
    assert.equal((await registry.apply(P, spec)).result, 'created');
    assert.equal((await registry.apply(P, spec)).result, 'unchanged');
    const updated = await registry.apply(P, { ...spec, instructions: 'two' });
    assert.equal(updated.result, 'updated');
    assert.equal(updated.agent.activeVersion, 2);
    // apply replaces the whole spec: an omitted field returns to its default
    await registry.apply(P, { ...spec, temperature: 0.3 });
    const reset = await registry.apply(P, spec);
    assert.equal(reset.result, 'updated');
    assert.equal(reset.agent.spec.temperature, undefined);
  });

  it('getOrCreate returns an existing agent unchanged', async () => {
    const { registry } = setup();
    const first = await registry.getOrCreate(P, 'support', { instructions: 'first' });
    const again = await registry.getOrCreate(P, 'support', { instructions: 'second' });
    assert.equal(again.id, first.id);
    assert.equal(again.spec.instructions, 'first');
  });

  it('deletes ephemeral agents unused past their ttl, sparing active ones', async () => {
    const { registry, clock, events } = setup();
    const eph = await registry.create(P, { name: 'eph', ttlSeconds: 60 });
    const busy = await registry.create(P, { name: 'busy', ttlSeconds: 60 });
    await registry.create(P, { name: 'forever' });
    clock.advance(30_000);
    assert.equal(await registry.sweepExpired(() => false), 0);
    clock.advance(31_000);
    assert.equal(await registry.sweepExpired((id) => id === busy.id), 1);
    await assert.rejects(registry.get(P, eph.id), code('AGENT_NOT_FOUND'));
    assert.ok(await registry.find(P, 'busy'));
    assert.ok(await registry.find(P, 'forever'));
    assert.ok(
      events.some((e) => e.type === 'agent.deleted' && e.reason === 'expired' && e.agentId === eph.id),
    );
    await registry.touch(busy.id);
    clock.advance(59_000);
    assert.equal(await registry.sweepExpired(() => false), 0);
  });
});

describe('agent registry under concurrency', () => {
  const dirs: (() => void)[] = [];
  after(() => {
    for (const cleanup of dirs) cleanup();
  });

  async function concurrentGetOrCreate(stores: AgentStore[], calls: number): Promise<void> {
    const registries = stores.map((s) => setup(s).registry);
    const results = await Promise.all(
      Array.from({ length: calls }, (_, i) =>
        (registries[i % registries.length] as AgentRegistry).getOrCreate(P, 'popular', {
          instructions: `call ${i}`,
        }),
      ),
    );
    const ids = new Set(results.map((a) => a.id));
    assert.equal(ids.size, 1, 'every caller gets the same agent');
    assert.equal(await (stores[0] as AgentStore).count(P), 1, 'exactly one agent was created');
    const versions = await (stores[0] as AgentStore).listVersions(results[0]?.id ?? '', { limit: 10 });
    assert.equal(versions.data.length, 1, 'and it has one version');
  }

  it('1,000 concurrent getOrCreate calls on the memory store create one agent', async () => {
    await concurrentGetOrCreate([new MemoryAgentStore()], 1000);
  });

  it('1,000 concurrent getOrCreate calls on SQLite create one agent', async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const store = new SqliteAgentStore({ path: join(dir, 'a.db') });
    try {
      await concurrentGetOrCreate([store], 1000);
    } finally {
      await store.close();
    }
  });

  it('1,000 concurrent getOrCreate calls through two registries on one SQLite file create one agent', async () => {
    const { dir, cleanup } = tempDir();
    dirs.push(cleanup);
    const path = join(dir, 'shared.db');
    const stores = [new SqliteAgentStore({ path }), new SqliteAgentStore({ path })];
    try {
      await concurrentGetOrCreate(stores, 1000);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('concurrent applies of different specs leave one consistent version chain', async () => {
    const { registry } = setup();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => registry.apply(P, { name: 'racy', instructions: `v${i % 4}` })),
    );
    assert.equal(results.filter((r) => r.result === 'created').length, 1);
    const agent = await registry.get(P, 'racy');
    const versions = await registry.versions(P, 'racy', { limit: 100 });
    assert.equal(versions.data.length, agent.latestVersion);
    assert.equal(agent.spec.instructions, results.at(-1)?.agent.spec.instructions);
  });
});
