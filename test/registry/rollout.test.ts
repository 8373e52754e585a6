import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { type AgentEvent, AgentRegistry, routeVersion } from '../../src/registry/registry.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import type { AgentStore } from '../../src/store/ports.ts';
import { SqliteAgentStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../support/temp-dir.ts';

const P = 'acme';
const TENTH = { strategy: 'percentage', percent: 10 } as const;
const HALF = { strategy: 'percentage', percent: 50 } as const;

const code =
  (c: string, check: (details: Record<string, unknown>) => boolean = () => true) =>
  (err: unknown) =>
    isAgentPoolError(err) && err.code === c && check(err.details);

const stores: [string, () => { store: AgentStore; cleanup: () => Promise<void> }][] = [
  [
    'memory store',
    () => {
      const store = new MemoryAgentStore();
      return { store, cleanup: () => store.close() };
    },
  ],
  [
    'SQLite store',
    () => {
      const { dir, cleanup } = tempDir();
      const store = new SqliteAgentStore({ path: join(dir, 'a.db') });
      return {
        store,
        cleanup: async () => {
          await store.close();
          cleanup();
        },
      };
    },
  ],
];

for (const [storeName, makeStore] of stores) {
  describe(`agent rollouts (${storeName})`, () => {
    let registry: AgentRegistry;
    let clock: ManualClock;
    let events: AgentEvent[];
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      const made = makeStore();
      cleanup = made.cleanup;
      clock = new ManualClock();
      const bus = new LocalEventBus<AgentEvent>();
      events = [];
      bus.on('*', (e) => events.push(e));
      registry = new AgentRegistry({ store: made.store, bus, clock });
      await registry.create(P, { name: 'support', instructions: 'v1' });
      clock.advance(1000);
    });
    afterEach(async () => {
      await cleanup();
    });

    const startRollout = () => registry.update(P, 'support', { instructions: 'v2', rollout: TENTH });
    const types = () => events.map((e) => e.type);

    it('a spec change with a rollout makes a candidate version without activating it', async () => {
      const { agent, changed } = await startRollout();
      assert.equal(changed, true);
      assert.equal(agent.activeVersion, 1);
      assert.equal(agent.latestVersion, 2);
      assert.equal(agent.spec.instructions, 'v1');
      const rollout = {
        candidateVersion: 2,
        flag: TENTH,
        startedAt: clock.now(),
        flagStartedAt: clock.now(),
      };
      assert.deepEqual(agent.rollout, rollout);
      assert.deepEqual(await registry.get(P, 'support'), agent);
      assert.deepEqual(await registry.rollout(P, agent.id), rollout);
      assert.equal((await registry.version(P, 'support', 2)).spec.instructions, 'v2');
      assert.deepEqual(types(), ['agent.created', 'agent.rollout_started']);
      assert.deepEqual(events[1], {
        type: 'agent.rollout_started',
        at: clock.now(),
        project: P,
        agentId: agent.id,
        name: 'support',
        activeVersion: 1,
        rollout,
      });
    });

    it('refuses a rollout with nothing to roll out, and a bad strategy, naming the field', async () => {
      await assert.rejects(
        registry.update(P, 'support', { rollout: TENTH }),
        code('VALIDATION_FAILED', (d) => d.field === 'rollout'),
      );
      await assert.rejects(
        registry.update(P, 'support', { instructions: 'v1', rollout: TENTH }),
        /rollout has nothing to roll out/,
      );
      await assert.rejects(
        registry.update(P, 'support', {
          instructions: 'v2',
          rollout: { strategy: 'percentage', percent: 101 },
        }),
        code('VALIDATION_FAILED', (d) => d.field === 'rollout.percent'),
      );
      await assert.rejects(
        registry.update(P, 'support', { instructions: 'v2', rollout: null }),
        code('VALIDATION_FAILED', (d) => d.field === 'rollout'),
      );
      assert.equal((await registry.get(P, 'support')).latestVersion, 1);
      assert.deepEqual(types(), ['agent.created']);
      await assert.rejects(registry.rollout(P, 'support'), code('ROLLOUT_NOT_FOUND'));
    });

    it('refuses every change of the active version while a rollout runs, naming the candidate', async () => {
      await startRollout();
      const inProgress = code(
        'ROLLOUT_IN_PROGRESS',
        (d) => d.candidateVersion === 2 && d.activeVersion === 1,
      );
      await assert.rejects(registry.update(P, 'support', { instructions: 'v3' }), inProgress);
      await assert.rejects(registry.update(P, 'support', { instructions: 'v2' }), inProgress);
      await assert.rejects(registry.update(P, 'support', { instructions: 'v3', rollout: HALF }), inProgress);
      await assert.rejects(registry.apply(P, { name: 'support', instructions: 'v3' }), inProgress);
      await assert.rejects(registry.rollback(P, 'support', 2), inProgress);
      // What changes nothing still answers as before.
      assert.equal((await registry.update(P, 'support', { instructions: 'v1' })).changed, false);
      assert.equal((await registry.apply(P, { name: 'support', instructions: 'v1' })).result, 'unchanged');
      assert.equal((await registry.rollback(P, 'support', 1)).activeVersion, 1);
      const agent = await registry.get(P, 'support');
      assert.equal(agent.latestVersion, 2);
      assert.equal(agent.rollout?.candidateVersion, 2);
      assert.deepEqual(types(), ['agent.created', 'agent.rollout_started']);
    });

    it('changes the flag of a running rollout, keeping its candidate and start; the new flag counts from now', async () => {
      const { agent: started } = await startRollout();
      clock.advance(60_000);
      const { agent, changed } = await registry.update(P, 'support', { rollout: HALF });
      assert.equal(changed, true);
      assert.deepEqual(agent.rollout, {
        candidateVersion: 2,
        flag: HALF,
        startedAt: started.rollout?.startedAt,
        flagStartedAt: clock.now(),
      });
      assert.equal(agent.latestVersion, 2);
      assert.equal(events.at(-1)?.type, 'agent.rollout_changed');
      // The same flag again, or the first request repeated, changes nothing more.
      assert.equal((await registry.update(P, 'support', { rollout: HALF })).changed, false);
      const repeated = await registry.update(P, 'support', { instructions: 'v2', rollout: HALF });
      assert.equal(repeated.changed, false);
      assert.equal(repeated.agent.latestVersion, 2);
      const back = await registry.update(P, 'support', { instructions: 'v2', rollout: TENTH });
      assert.equal(back.changed, true);
      assert.deepEqual(back.agent.rollout?.flag, TENTH);
      assert.deepEqual(types(), [
        'agent.created',
        'agent.rollout_started',
        'agent.rollout_changed',
        'agent.rollout_changed',
      ]);
    });

    it('promotes: the candidate becomes active and the rollout ends', async () => {
      const { agent: started } = await startRollout();
      clock.advance(5000);
      const promoted = await registry.promote(P, 'support');
      assert.equal(promoted.activeVersion, 2);
      assert.equal(promoted.spec.instructions, 'v2');
      assert.equal(promoted.rollout, null);
      assert.deepEqual(events.at(-1), {
        type: 'agent.rollout_promoted',
        at: clock.now(),
        project: P,
        agentId: started.id,
        name: 'support',
        version: 2,
        previousVersion: 1,
      });
      await assert.rejects(registry.rollout(P, 'support'), code('ROLLOUT_NOT_FOUND'));
      await assert.rejects(registry.promote(P, 'support'), code('ROLLOUT_NOT_FOUND'));
      await assert.rejects(registry.abortRollout(P, 'support'), code('ROLLOUT_NOT_FOUND'));
      const next = await registry.update(P, 'support', { instructions: 'v3' });
      assert.equal(next.agent.activeVersion, 3);
    });

    it('aborts: the stable version stays active and the candidate stays in history', async () => {
      const { agent: started } = await startRollout();
      const aborted = await registry.abortRollout(P, started.id);
      assert.equal(aborted.activeVersion, 1);
      assert.equal(aborted.latestVersion, 2);
      assert.equal(aborted.spec.instructions, 'v1');
      assert.equal(aborted.rollout, null);
      assert.equal((await registry.version(P, 'support', 2)).spec.instructions, 'v2');
      assert.deepEqual(events.at(-1), {
        type: 'agent.rollout_aborted',
        at: clock.now(),
        project: P,
        agentId: started.id,
        name: 'support',
        activeVersion: 1,
        candidateVersion: 2,
      });
      await assert.rejects(registry.abortRollout(P, 'support'), code('ROLLOUT_NOT_FOUND'));
      const again = await registry.update(P, 'support', { instructions: 'v2b', rollout: HALF });
      assert.equal(again.agent.rollout?.candidateVersion, 3);
      assert.equal((await registry.rollback(P, 'support', 1)).activeVersion, 1);
    });

    it('of a concurrent promotion and abort, exactly one happens', async () => {
      await startRollout();
      const results = await Promise.allSettled([
        registry.promote(P, 'support'),
        registry.abortRollout(P, 'support'),
      ]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.ok(results.some((r) => r.status === 'rejected' && code('ROLLOUT_NOT_FOUND')(r.reason)));
      assert.equal((await registry.get(P, 'support')).rollout, null);
    });
  });
}

describe('agent rollouts across two registries on one SQLite file', () => {
  it('a promotion and an abort racing through two processes end with exactly one of them', async () => {
    const { dir, cleanup } = tempDir();
    const path = join(dir, 'shared.db');
    const stores = [new SqliteAgentStore({ path }), new SqliteAgentStore({ path })];
    try {
      const clock = new ManualClock();
      const [a, b] = stores.map(
        (store) => new AgentRegistry({ store, bus: new LocalEventBus<AgentEvent>(), clock }),
      ) as [AgentRegistry, AgentRegistry];
      await a.create(P, { name: 'support', instructions: 'v1' });
      const { agent } = await a.update(P, 'support', { instructions: 'v2', rollout: TENTH });
      // By id through one, by name through the other: not even the in-process lock is shared.
      const results = await Promise.allSettled([a.promote(P, agent.id), b.abortRollout(P, 'support')]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.ok(results.some((r) => r.status === 'rejected' && code('ROLLOUT_NOT_FOUND')(r.reason)));
      const final = await b.get(P, 'support');
      assert.equal(final.rollout, null);
      assert.equal(final.activeVersion, results[0].status === 'fulfilled' ? 2 : 1);
    } finally {
      for (const store of stores) await store.close();
      cleanup();
    }
  });
});

describe('routeVersion', () => {
  async function rolledOut(flag: object) {
    const clock = new ManualClock();
    const registry = new AgentRegistry({
      store: new MemoryAgentStore(),
      bus: new LocalEventBus<AgentEvent>(),
      clock,
    });
    await registry.create(P, { name: 'support', instructions: 'v1' });
    const { agent } = await registry.update(P, 'support', { instructions: 'v2', rollout: flag });
    return { agent, clock };
  }

  const candidates = (agent: Awaited<ReturnType<typeof rolledOut>>['agent'], now: number) => {
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (routeVersion(agent, `thr_${i}`, now) === 2) n++;
    return n / 100;
  };

  it('routes to the active version when no rollout runs', async () => {
    const { agent, clock } = await rolledOut(TENTH);
    assert.equal(routeVersion({ ...agent, rollout: null }, 'k', clock.now()), 1);
  });

  it("sends the flag's share of keys to the candidate, each key always the same way", async () => {
    const { agent, clock } = await rolledOut(TENTH);
    const share = candidates(agent, clock.now());
    assert.ok(Math.abs(share - 10) <= 1.5, `${share} %`);
    for (let i = 0; i < 100; i++) {
      assert.equal(
        routeVersion(agent, `thr_${i}`, clock.now()),
        routeVersion(agent, `thr_${i}`, clock.now()),
      );
    }
    const all = await rolledOut({ strategy: 'all' });
    assert.equal(candidates(all.agent, all.clock.now()), 100);
  });

  it('follows a gradual flag from when it took effect', async () => {
    const { agent, clock } = await rolledOut({
      strategy: 'gradual',
      startPercent: 0,
      endPercent: 100,
      durationMs: 1000,
    });
    assert.equal(candidates(agent, clock.now()), 0);
    const half = candidates(agent, clock.now() + 500);
    assert.ok(Math.abs(half - 50) <= 2, `${half} %`);
    assert.equal(candidates(agent, clock.now() + 1000), 100);
  });
});
