/**
 * The AgentStore conformance suite: one specification of the port that every adapter (memory,
 * sqlite, later redis and postgres) must pass. Each adapter's test file calls it with a factory.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ErrorCode, isAgentPoolError } from '../../src/core/errors.ts';
import type { AgentRecord, AgentStore, IndexedSpec } from '../../src/store/ports.ts';

/** A spec shaped like a real agent definition: indexed fields plus opaque, nested data. */
interface TestSpec extends IndexedSpec {
  readonly instructions: string;
  readonly metadata?: Record<string, unknown>;
}

const T0 = Date.UTC(2026, 0, 1);

function spec(overrides: Partial<TestSpec> = {}): TestSpec {
  return { instructions: 'help', labels: {}, tier: 'warm', ...overrides };
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAgentPoolError(err), `expected an AgentPoolError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Registers the AgentStore specification against the adapter that `factory` builds. */
export function agentStoreConformance(
  name: string,
  factory: () => Promise<{ store: AgentStore; cleanup(): Promise<void> }>,
): void {
  describe(name, () => {
    let store: AgentStore;
    let cleanup: () => Promise<void>;
    let seq = 0;

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const make = (agentName: string, s: TestSpec = spec(), project = 'p1', now = T0) =>
      store.create({ id: `agt_${String(++seq).padStart(8, '0')}`, project, name: agentName, spec: s, now });

    const names = (records: readonly AgentRecord[]) => records.map((r) => r.name);

    const listAll = async (project: string, limit: number, labels?: Record<string, string>) => {
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list(project, { limit, cursor, labels });
        pages.push(names(page.data));
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && pages.length < 100);
      return pages;
    };

    describe('create and get', () => {
      it('creates an agent whose version 1 is active', async () => {
        const s = spec({ labels: { env: 'prod' } });
        const created = await store.create({
          id: 'agt_alpha',
          project: 'p1',
          name: 'alpha',
          spec: s,
          now: T0,
        });
        assert.deepEqual(created, {
          id: 'agt_alpha',
          project: 'p1',
          name: 'alpha',
          activeVersion: 1,
          latestVersion: 1,
          spec: spec({ labels: { env: 'prod' } }),
          createdAt: T0,
          updatedAt: T0,
          lastUsedAt: T0,
          expiresAt: null,
          rollout: null,
        });
      });

      it('finds an agent by id and by project and name', async () => {
        const created = await make('alpha');
        assert.deepEqual(await store.getById(created.id), created);
        assert.deepEqual(await store.getByName('p1', 'alpha'), created);
      });

      it('returns undefined for an unknown id, name, or a name of another project', async () => {
        await make('alpha');
        assert.equal(await store.getById('agt_missing'), undefined);
        assert.equal(await store.getByName('p1', 'beta'), undefined);
        assert.equal(await store.getByName('p2', 'alpha'), undefined);
      });

      it('rejects a duplicate name in the same project with AGENT_EXISTS and keeps the first', async () => {
        const first = await make('alpha', spec({ instructions: 'first' }));
        await rejectsWith(make('alpha', spec({ instructions: 'second' })), 'AGENT_EXISTS');
        assert.deepEqual(await store.getByName('p1', 'alpha'), first);
        assert.equal(await store.count('p1'), 1);
      });

      it('rejects a duplicate id with AGENT_EXISTS', async () => {
        const a = await make('alpha');
        const dup = store.create({ id: a.id, project: 'p2', name: 'beta', spec: spec(), now: T0 });
        await rejectsWith(dup, 'AGENT_EXISTS');
        assert.equal(await store.getByName('p2', 'beta'), undefined);
      });

      it('allows the same name in another project', async () => {
        const a = await make('alpha', spec(), 'p1');
        const b = await make('alpha', spec(), 'p2');
        assert.notEqual(a.id, b.id);
        assert.equal((await store.getByName('p2', 'alpha'))?.id, b.id);
      });

      it('round-trips a spec exactly, nested metadata included', async () => {
        const s = spec({
          labels: { 'app.example.com/team': 'search', env: 'prod' },
          tier: 'hot',
          ttlSeconds: 90,
          metadata: { a: { b: [1, 2.5, { c: null, d: true, e: 'é ✓ 𝄞' }] }, empty: {}, list: [] },
        });
        const created = await make('alpha', s);
        assert.deepEqual(created.spec, s);
        assert.deepEqual((await store.getById(created.id))?.spec, s);
        assert.deepEqual((await store.getVersion(created.id, 1))?.spec, s);
      });

      it('does not let callers mutate stored state through the specs they pass or receive', async () => {
        const input = { ...spec(), labels: { env: 'prod' }, metadata: { n: 1 } };
        const created = await make('alpha', input);
        input.labels.env = 'dev';
        input.metadata.n = 2;
        (created.spec.metadata as { n: number }).n = 3;
        const again = await store.getById<TestSpec>(created.id);
        assert.deepEqual(again?.spec, { ...spec(), labels: { env: 'prod' }, metadata: { n: 1 } });
      });

      it('sets expiresAt to now + ttlSeconds when the spec has a ttl', async () => {
        const created = await make('alpha', spec({ ttlSeconds: 60 }));
        assert.equal(created.expiresAt, T0 + 60_000);
        assert.equal((await store.getById(created.id))?.expiresAt, T0 + 60_000);
      });
    });

    describe('list', () => {
      it("lists only the project's agents, ordered by name", async () => {
        for (const n of ['delta', 'alpha', 'charlie', 'bravo']) await make(n);
        await make('aardvark', spec(), 'p2');
        const page = await store.list('p1', { limit: 10 });
        assert.deepEqual(names(page.data), ['alpha', 'bravo', 'charlie', 'delta']);
        assert.equal(page.nextCursor, null);
      });

      it('pages with a cursor across several pages with no gaps or duplicates', async () => {
        const all = Array.from({ length: 23 }, (_, i) => `agent-${String(i).padStart(2, '0')}`);
        for (const n of [...all].reverse()) await make(n);
        const pages = await listAll('p1', 5);
        assert.deepEqual(
          pages.map((p) => p.length),
          [5, 5, 5, 5, 3],
        );
        assert.deepEqual(pages.flat(), all);
      });

      it('ends with a null cursor when the last page is exactly full', async () => {
        for (let i = 0; i < 10; i++) await make(`a${i}`);
        assert.deepEqual(
          (await listAll('p1', 5)).map((p) => p.length),
          [5, 5],
        );
      });

      it('rejects a limit outside 1..1000 and a malformed cursor with VALIDATION_FAILED', async () => {
        await rejectsWith(store.list('p1', { limit: 0 }), 'VALIDATION_FAILED');
        await rejectsWith(store.list('p1', { limit: 1001 }), 'VALIDATION_FAILED');
        await rejectsWith(store.list('p1', { limit: 10, cursor: 'not-a-cursor' }), 'VALIDATION_FAILED');
      });

      it('returns an empty last page for an unknown project', async () => {
        assert.deepEqual(await store.list('nobody', { limit: 10 }), { data: [], nextCursor: null });
      });

      it('filters by one label', async () => {
        await make('a', spec({ labels: { env: 'prod' } }));
        await make('b', spec({ labels: { env: 'dev' } }));
        await make('c', spec({ labels: { env: 'prod', team: 'x' } }));
        await make('d');
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: { env: 'prod' } })).data), [
          'a',
          'c',
        ]);
      });

      it('filters by several labels, keeping only agents that carry all of them', async () => {
        await make('a', spec({ labels: { env: 'prod', 'app.io/team': 'x' } }));
        await make('b', spec({ labels: { env: 'prod', 'app.io/team': 'y' } }));
        await make('c', spec({ labels: { env: 'prod', 'app.io/team': 'x', zone: 'eu' } }));
        await make('d', spec({ labels: { 'app.io/team': 'x' } }));
        const both = { env: 'prod', 'app.io/team': 'x' };
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: both })).data), ['a', 'c']);
        const three = { ...both, zone: 'eu' };
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: three })).data), ['c']);
        const none = { ...both, zone: 'us' };
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: none })).data), []);
      });

      it('searches names by a contained text (q), in name order, paging without gaps', async () => {
        for (const n of ['alpha-bot', 'beta-bot', 'gamma', 'bot-one', 'delta-bot', 'robot-x']) {
          await make(n, spec({ labels: n.startsWith('b') ? { env: 'prod' } : {} }));
        }
        await make('other-bot', spec(), 'p2');
        const all: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.list('p1', { limit: 2, q: 'bot', cursor });
          all.push(...names(page.data));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        assert.deepEqual(all, ['alpha-bot', 'beta-bot', 'bot-one', 'delta-bot', 'robot-x']);
        assert.deepEqual(names((await store.list('p1', { limit: 10, q: 'zzz' })).data), []);
        const labelled = await store.list('p1', { limit: 10, q: 'bot', labels: { env: 'prod' } });
        assert.deepEqual(names(labelled.data), ['beta-bot', 'bot-one']);
      });

      it('keeps label filters inside the project', async () => {
        await make('a', spec({ labels: { env: 'prod' } }), 'p1');
        await make('b', spec({ labels: { env: 'prod' } }), 'p2');
        assert.deepEqual(names((await store.list('p2', { limit: 10, labels: { env: 'prod' } })).data), ['b']);
      });

      it('pages a label-filtered listing without gaps or duplicates', async () => {
        const expected: string[] = [];
        for (let i = 0; i < 30; i++) {
          const n = `agent-${String(i).padStart(2, '0')}`;
          const hit = i % 3 === 0 || i === 29;
          if (hit) expected.push(n);
          await make(n, spec({ labels: hit ? { env: 'prod', team: 'x' } : { env: 'prod' } }));
        }
        const pages = await listAll('p1', 4, { team: 'x', env: 'prod' });
        assert.deepEqual(
          pages.map((p) => p.length),
          [4, 4, 3],
        );
        assert.deepEqual(pages.flat(), expected);
      });

      it('filters on the labels of the active version', async () => {
        const a = await make('a', spec({ labels: { env: 'prod' } }));
        await store.addVersion(a.id, 1, spec({ labels: { env: 'dev' } }), T0 + 1);
        const prod = () => store.list('p1', { limit: 10, labels: { env: 'prod' } });
        assert.deepEqual(names((await prod()).data), []);
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: { env: 'dev' } })).data), ['a']);
        await store.activateVersion(a.id, 1, T0 + 2);
        assert.deepEqual(names((await prod()).data), ['a']);
      });
    });

    describe('listByTier', () => {
      it('lists agents of every project with the tier, ordered by id, page by page', async () => {
        const hot: string[] = [];
        for (const [i, project] of ['p1', 'p2', 'p3', 'p1', 'p2'].entries()) {
          hot.push((await make(`hot-${i}`, spec({ tier: 'hot' }), project)).id);
          await make(`cold-${i}`, spec({ tier: 'cold' }), project);
        }
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.listByTier('hot', { limit: 2, cursor });
          seen.push(...page.data.map((r) => r.id));
          cursor = page.nextCursor ?? undefined;
          pages++;
        } while (cursor !== undefined && pages < 10);
        assert.equal(pages, 3);
        assert.deepEqual(seen, [...hot].sort());
      });

      it('follows the tier of the active version', async () => {
        const a = await make('a', spec({ tier: 'cold' }));
        await store.addVersion(a.id, 1, spec({ tier: 'hot' }), T0 + 1);
        assert.deepEqual(names((await store.listByTier('hot', { limit: 10 })).data), ['a']);
        assert.deepEqual((await store.listByTier('cold', { limit: 10 })).data, []);
      });
    });

    describe('count', () => {
      it('counts the agents of one project', async () => {
        for (const n of ['a', 'b', 'c']) await make(n, spec(), 'p1');
        const d = await make('d', spec(), 'p2');
        assert.equal(await store.count('p1'), 3);
        assert.equal(await store.count('p2'), 1);
        assert.equal(await store.count('nobody'), 0);
        await store.delete(d.id);
        assert.equal(await store.count('p2'), 0);
      });
    });

    describe('addVersion', () => {
      it('appends version expectedLatest + 1 and makes it active', async () => {
        const a = await make('a', spec({ instructions: 'v1' }));
        const v2 = await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 5);
        assert.deepEqual(v2, {
          ...a,
          activeVersion: 2,
          latestVersion: 2,
          spec: spec({ instructions: 'v2' }),
          updatedAt: T0 + 5,
        });
        assert.deepEqual(await store.getById(a.id), v2);
        assert.equal((await store.getVersion<TestSpec>(a.id, 1))?.spec.instructions, 'v1');
      });

      it('rejects a stale expectedLatest with VERSION_CONFLICT and changes nothing', async () => {
        const a = await make('a');
        const v2 = await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 1);
        await rejectsWith(
          store.addVersion(a.id, 1, spec({ instructions: 'stale' }), T0 + 2),
          'VERSION_CONFLICT',
        );
        await rejectsWith(
          store.addVersion(a.id, 3, spec({ instructions: 'ahead' }), T0 + 2),
          'VERSION_CONFLICT',
        );
        assert.deepEqual(await store.getById(a.id), v2);
        assert.equal(await store.getVersion(a.id, 3), undefined);
      });

      it('rejects an unknown agent with AGENT_NOT_FOUND', async () => {
        await rejectsWith(store.addVersion('agt_missing', 1, spec(), T0), 'AGENT_NOT_FOUND');
      });

      it("recomputes expiresAt from the new version's ttl", async () => {
        const a = await make('a');
        assert.equal(
          (await store.addVersion(a.id, 1, spec({ ttlSeconds: 30 }), T0 + 1000)).expiresAt,
          T0 + 31_000,
        );
        assert.equal((await store.addVersion(a.id, 2, spec(), T0 + 2000)).expiresAt, null);
      });

      it('lets exactly one of many concurrent writers with the same expectedLatest win', async () => {
        const a = await make('a');
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            store.addVersion(a.id, 1, spec({ instructions: `w${i}` }), T0 + 1),
          ),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.ok(lost.every((r) => isAgentPoolError(r.reason, 'VERSION_CONFLICT')));
        const current = await store.getById(a.id);
        assert.equal(current?.latestVersion, 2);
        assert.deepEqual(current?.spec, won[0]?.value.spec);
      });
    });

    describe('activateVersion', () => {
      it('makes an earlier version active again (rollback) without adding a version', async () => {
        const a = await make('a', spec({ instructions: 'v1', ttlSeconds: 10 }));
        await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 1);
        await store.addVersion(a.id, 2, spec({ instructions: 'v3' }), T0 + 2);
        const back = await store.activateVersion<TestSpec>(a.id, 1, T0 + 3);
        assert.equal(back.activeVersion, 1);
        assert.equal(back.latestVersion, 3);
        assert.equal(back.spec.instructions, 'v1');
        assert.equal(back.updatedAt, T0 + 3);
        assert.equal(back.expiresAt, T0 + 3 + 10_000);
        assert.deepEqual(await store.getById(a.id), back);
      });

      it('rejects a version that does not exist with VERSION_NOT_FOUND', async () => {
        const a = await make('a');
        await store.addVersion(a.id, 1, spec(), T0 + 1);
        await rejectsWith(store.activateVersion(a.id, 3, T0 + 2), 'VERSION_NOT_FOUND');
        await rejectsWith(store.activateVersion(a.id, 0, T0 + 2), 'VERSION_NOT_FOUND');
        assert.equal((await store.getById(a.id))?.activeVersion, 2);
      });

      it('rejects an unknown agent with AGENT_NOT_FOUND', async () => {
        await rejectsWith(store.activateVersion('agt_missing', 1, T0), 'AGENT_NOT_FOUND');
      });
    });

    describe('rollouts', () => {
      const tenth = { strategy: 'percentage', percent: 10 } as const;
      const half = { strategy: 'percentage', percent: 50 } as const;

      /** v1 active (labels env=prod, warm), v2 a candidate at 10 % (env=dev, hot, ttl 30 s). */
      const rollingOut = async () => {
        const a = await make('a', spec({ instructions: 'v1', labels: { env: 'prod' } }));
        const v2 = spec({ instructions: 'v2', labels: { env: 'dev' }, tier: 'hot', ttlSeconds: 30 });
        const r = await store.addVersion(a.id, 1, v2, T0 + 5, { rollout: tenth });
        return { a, r };
      };

      it('addVersion with a rollout stores the version as the candidate without activating it', async () => {
        const { a, r } = await rollingOut();
        assert.deepEqual(r, {
          ...a,
          latestVersion: 2,
          updatedAt: T0 + 5,
          rollout: { candidateVersion: 2, flag: tenth, startedAt: T0 + 5, flagStartedAt: T0 + 5 },
        });
        assert.deepEqual(await store.getById(a.id), r);
        assert.equal((await store.getVersion<TestSpec>(a.id, 2))?.spec.instructions, 'v2');
        assert.deepEqual(
          (await store.listVersions(a.id, { limit: 10 })).data.map((v) => v.version),
          [2, 1],
        );
        // Indexes follow the active version, not the candidate.
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: { env: 'prod' } })).data), ['a']);
        assert.deepEqual((await store.listByTier('hot', { limit: 10 })).data, []);
        assert.deepEqual((await store.list('p1', { limit: 10 })).data[0]?.rollout, r.rollout);
      });

      it('refuses every write that would change the active version while a rollout runs', async () => {
        const a = await make('a', spec({ instructions: 'v1' }));
        await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 1);
        const r = await store.addVersion(a.id, 2, spec({ instructions: 'v3' }), T0 + 2, { rollout: tenth });
        await rejectsWith(
          store.addVersion(a.id, 3, spec({ instructions: 'v4' }), T0 + 3),
          'ROLLOUT_IN_PROGRESS',
        );
        await rejectsWith(
          store.addVersion(a.id, 3, spec({ instructions: 'v4' }), T0 + 3, { rollout: half }),
          'ROLLOUT_IN_PROGRESS',
        );
        await rejectsWith(store.addVersion(a.id, 2, spec(), T0 + 3), 'VERSION_CONFLICT');
        await rejectsWith(store.activateVersion(a.id, 1, T0 + 3), 'ROLLOUT_IN_PROGRESS');
        await rejectsWith(store.activateVersion(a.id, 3, T0 + 3), 'ROLLOUT_IN_PROGRESS');
        assert.deepEqual(await store.getById(a.id), r);
        assert.equal(await store.getVersion(a.id, 4), undefined);
        const same = await store.activateVersion(a.id, 2, T0 + 4);
        assert.equal(same.activeVersion, 2);
        assert.deepEqual(same.rollout, r.rollout);
      });

      it('setRollout changes the flag of the running rollout, provided its candidate is the expected one', async () => {
        const { a, r } = await rollingOut();
        const changed = {
          ...(r.rollout as NonNullable<typeof r.rollout>),
          flag: half,
          flagStartedAt: T0 + 9,
        };
        const after = await store.setRollout(a.id, 2, changed, T0 + 9);
        assert.deepEqual(after, { ...r, rollout: changed, updatedAt: T0 + 9 });
        assert.deepEqual(await store.getById(a.id), after);
        await rejectsWith(store.setRollout(a.id, null, changed, T0 + 10), 'VERSION_CONFLICT');
        await rejectsWith(store.setRollout(a.id, 1, null, T0 + 10), 'VERSION_CONFLICT');
        assert.deepEqual(await store.getById(a.id), after);
      });

      it('promotes: the candidate becomes active and the rollout ends, in one write', async () => {
        const { a } = await rollingOut();
        const promoted = await store.setRollout<TestSpec>(a.id, 2, null, T0 + 10, { activate: 2 });
        assert.equal(promoted.activeVersion, 2);
        assert.equal(promoted.latestVersion, 2);
        assert.equal(promoted.spec.instructions, 'v2');
        assert.equal(promoted.rollout, null);
        assert.equal(promoted.updatedAt, T0 + 10);
        assert.equal(promoted.expiresAt, T0 + 10 + 30_000);
        assert.deepEqual(await store.getById(a.id), promoted);
        assert.deepEqual(names((await store.list('p1', { limit: 10, labels: { env: 'dev' } })).data), ['a']);
        assert.deepEqual(names((await store.listByTier('hot', { limit: 10 })).data), ['a']);
        await rejectsWith(store.setRollout(a.id, 2, null, T0 + 11, { activate: 2 }), 'VERSION_CONFLICT');
      });

      it('aborts: the rollout ends, the active version stays and the candidate stays in history', async () => {
        const { a } = await rollingOut();
        const aborted = await store.setRollout<TestSpec>(a.id, 2, null, T0 + 10);
        assert.deepEqual(aborted, { ...a, latestVersion: 2, updatedAt: T0 + 10 });
        assert.equal((await store.getVersion<TestSpec>(a.id, 2))?.spec.instructions, 'v2');
        const v3 = await store.addVersion(a.id, 2, spec({ instructions: 'v3' }), T0 + 11);
        assert.equal(v3.activeVersion, 3);
        assert.equal(v3.rollout, null);
      });

      it('setRollout can start a rollout of an existing version, and checks the versions it names', async () => {
        const a = await make('a', spec({ instructions: 'v1' }));
        await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 1);
        const back = { candidateVersion: 1, flag: tenth, startedAt: T0 + 2, flagStartedAt: T0 + 2 };
        await rejectsWith(
          store.setRollout(a.id, null, { ...back, candidateVersion: 3 }, T0 + 2),
          'VERSION_NOT_FOUND',
        );
        await rejectsWith(
          store.setRollout(a.id, null, { ...back, candidateVersion: 2 }, T0 + 2),
          'VALIDATION_FAILED',
        );
        await rejectsWith(store.setRollout(a.id, null, back, T0 + 2, { activate: 1 }), 'VALIDATION_FAILED');
        await rejectsWith(store.setRollout(a.id, null, null, T0 + 2, { activate: 7 }), 'VERSION_NOT_FOUND');
        await rejectsWith(store.setRollout('agt_missing', null, back, T0 + 2), 'AGENT_NOT_FOUND');
        assert.equal((await store.getById(a.id))?.rollout, null);
        const started = await store.setRollout(a.id, null, back, T0 + 2);
        assert.deepEqual(started.rollout, back);
        assert.equal(started.activeVersion, 2);
      });

      it('round-trips a flag exactly and does not let callers mutate the stored rollout', async () => {
        const a = await make('a');
        const flag = { strategy: 'allowlist', projects: ['p1', 'é-𝄞'] };
        const r = await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 1, { rollout: flag });
        flag.projects.push('p3');
        (r.rollout?.flag.projects as string[]).push('p4');
        assert.deepEqual((await store.getById(a.id))?.rollout?.flag, {
          strategy: 'allowlist',
          projects: ['p1', 'é-𝄞'],
        });
      });

      it('of 10 concurrent promotions of one rollout, exactly one wins', async () => {
        const { a } = await rollingOut();
        const results = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) => store.setRollout(a.id, 2, null, T0 + 10 + i, { activate: 2 })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1);
        assert.ok(
          results.every((r) => r.status === 'fulfilled' || isAgentPoolError(r.reason, 'VERSION_CONFLICT')),
        );
        assert.equal((await store.getById(a.id))?.activeVersion, 2);
      });

      it('deletes an agent with a rollout running', async () => {
        const { a } = await rollingOut();
        assert.equal(await store.delete(a.id), true);
        await rejectsWith(store.setRollout(a.id, 2, null, T0 + 10), 'AGENT_NOT_FOUND');
      });
    });

    describe('versions', () => {
      it('getVersion returns each immutable version, and undefined for a missing one', async () => {
        const a = await make('a', spec({ instructions: 'v1' }));
        await store.addVersion(a.id, 1, spec({ instructions: 'v2' }), T0 + 7);
        assert.deepEqual(await store.getVersion(a.id, 2), {
          agentId: a.id,
          version: 2,
          spec: spec({ instructions: 'v2' }),
          createdAt: T0 + 7,
        });
        assert.equal((await store.getVersion(a.id, 1))?.createdAt, T0);
        assert.equal(await store.getVersion(a.id, 3), undefined);
        assert.equal(await store.getVersion('agt_missing', 1), undefined);
      });

      it('listVersions lists newest first, paging without gaps', async () => {
        const a = await make('a');
        for (let v = 1; v < 7; v++)
          await store.addVersion(a.id, v, spec({ instructions: `v${v + 1}` }), T0 + v);
        const pages: number[][] = [];
        let cursor: string | undefined;
        do {
          const page = await store.listVersions(a.id, { limit: 3, cursor });
          pages.push(page.data.map((v) => v.version));
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined && pages.length < 10);
        assert.deepEqual(pages, [[7, 6, 5], [4, 3, 2], [1]]);
      });

      it('listVersions of an unknown agent is an empty last page', async () => {
        assert.deepEqual(await store.listVersions('agt_missing', { limit: 5 }), {
          data: [],
          nextCursor: null,
        });
      });
    });

    describe('delete', () => {
      it('removes the agent and all its versions, and returns false the second time', async () => {
        const a = await make('a');
        await store.addVersion(a.id, 1, spec(), T0 + 1);
        assert.equal(await store.delete(a.id), true);
        assert.equal(await store.getById(a.id), undefined);
        assert.equal(await store.getByName('p1', 'a'), undefined);
        assert.equal(await store.getVersion(a.id, 1), undefined);
        assert.deepEqual((await store.listVersions(a.id, { limit: 10 })).data, []);
        assert.deepEqual((await store.list('p1', { limit: 10 })).data, []);
        assert.equal(await store.delete(a.id), false);
      });

      it('frees the name, and later writes to the deleted id fail with AGENT_NOT_FOUND', async () => {
        const a = await make('a', spec({ labels: { env: 'prod' }, tier: 'hot' }));
        await store.delete(a.id);
        await rejectsWith(store.addVersion(a.id, 1, spec(), T0), 'AGENT_NOT_FOUND');
        await rejectsWith(store.touch(a.id, T0), 'AGENT_NOT_FOUND');
        assert.deepEqual((await store.list('p1', { limit: 10, labels: { env: 'prod' } })).data, []);
        assert.deepEqual((await store.listByTier('hot', { limit: 10 })).data, []);
        const again = await make('a');
        assert.equal(again.latestVersion, 1);
      });
    });

    describe('touch and expiry', () => {
      it('touch records lastUsedAt and pushes expiresAt to at + ttl', async () => {
        const a = await make('a', spec({ ttlSeconds: 60 }));
        await store.touch(a.id, T0 + 5000);
        const after = await store.getById(a.id);
        assert.equal(after?.lastUsedAt, T0 + 5000);
        assert.equal(after?.expiresAt, T0 + 65_000);
        assert.equal(after?.updatedAt, T0);
      });

      it('touch leaves expiresAt null for an agent without a ttl', async () => {
        const a = await make('a');
        await store.touch(a.id, T0 + 5000);
        const after = await store.getById(a.id);
        assert.equal(after?.lastUsedAt, T0 + 5000);
        assert.equal(after?.expiresAt, null);
      });

      it('touch of an unknown agent fails with AGENT_NOT_FOUND', async () => {
        await rejectsWith(store.touch('agt_missing', T0), 'AGENT_NOT_FOUND');
      });

      it('listExpired returns only ttl agents with expiresAt ≤ now, oldest first, up to limit', async () => {
        await make('t30', spec({ ttlSeconds: 30 }));
        await make('t10', spec({ ttlSeconds: 10 }));
        await make('never');
        await make('t20', spec({ ttlSeconds: 20 }));
        assert.deepEqual(names(await store.listExpired(T0 + 9_999, 10)), []);
        assert.deepEqual(names(await store.listExpired(T0 + 20_000, 10)), ['t10', 't20']);
        assert.deepEqual(names(await store.listExpired(T0 + 3_600_000, 10)), ['t10', 't20', 't30']);
        assert.deepEqual(names(await store.listExpired(T0 + 3_600_000, 2)), ['t10', 't20']);
      });

      it('a touched agent leaves the expired list until its new expiry', async () => {
        const a = await make('a', spec({ ttlSeconds: 10 }));
        await store.touch(a.id, T0 + 8_000);
        assert.deepEqual(names(await store.listExpired(T0 + 12_000, 10)), []);
        assert.deepEqual(names(await store.listExpired(T0 + 18_000, 10)), ['a']);
      });
    });

    describe('recordUse', () => {
      it("moves each agent's lastUsedAt in one call, and a ttl agent's expiry with it", async () => {
        const a = await make('a');
        const t = await make('t', spec({ ttlSeconds: 60 }));
        await store.recordUse([
          { id: a.id, at: T0 + 5000 },
          { id: t.id, at: T0 + 7000 },
        ]);
        const [ra, rt] = [await store.getById(a.id), await store.getById(t.id)];
        assert.equal(ra?.lastUsedAt, T0 + 5000);
        assert.equal(ra?.expiresAt, null);
        assert.equal(rt?.lastUsedAt, T0 + 7000);
        assert.equal(rt?.expiresAt, T0 + 67_000);
      });

      it('never moves lastUsedAt back: uses arrive late and out of order', async () => {
        const a = await make('a', spec({ ttlSeconds: 60 }));
        await store.recordUse([{ id: a.id, at: T0 + 9000 }]);
        await store.recordUse([{ id: a.id, at: T0 + 4000 }]);
        const after = await store.getById(a.id);
        assert.equal(after?.lastUsedAt, T0 + 9000);
        assert.equal(after?.expiresAt, T0 + 69_000);
      });

      it('skips unknown ids (deleted meanwhile) and records the others', async () => {
        const a = await make('a');
        await store.recordUse([
          { id: 'agt_gone', at: T0 + 1 },
          { id: a.id, at: T0 + 2 },
        ]);
        assert.equal((await store.getById(a.id))?.lastUsedAt, T0 + 2);
        assert.equal(await store.getById('agt_gone'), undefined);
      });

      it('is not a definition change: no version, no updatedAt, and an empty call is harmless', async () => {
        const a = await make('a');
        await store.recordUse([]);
        await store.recordUse([{ id: a.id, at: T0 + 3000 }]);
        const after = await store.getById(a.id);
        assert.deepEqual({ ...after, lastUsedAt: a.lastUsedAt }, a);
      });

      it('records more uses than one write takes', async () => {
        const agents = await Promise.all(Array.from({ length: 1200 }, (_, i) => make(`n${i}`)));
        await store.recordUse(agents.map((a, i) => ({ id: a.id, at: T0 + 1 + i })));
        assert.equal((await store.getById(agents[0]?.id ?? ''))?.lastUsedAt, T0 + 1);
        assert.equal((await store.getById(agents[1199]?.id ?? ''))?.lastUsedAt, T0 + 1200);
      });
    });

    describe('usage (getUsage, listUsage)', () => {
      const runs = (uses: number, successes: number, failures: number, costUsd: number) => ({
        uses,
        successes,
        failures,
        latencyMsTotal: 100 * uses,
        latencyCount: uses,
        costUsd,
      });

      it('adds run figures up across writes, keeps the latest use, and has none for an unused agent', async () => {
        const a = await make('a');
        const unused = await make('unused');
        await store.recordUse([{ id: a.id, at: T0 + 10, runs: runs(2, 1, 1, 0.5) }]);
        await store.recordUse([
          { id: a.id, at: T0 + 5, runs: runs(3, 3, 0, 0.25) },
          { id: a.id, at: T0 + 7 }, // a use without runs (an acquire) moves lastUsedAt only
        ]);
        assert.deepEqual(await store.getUsage(a.id), {
          agentId: a.id,
          project: 'p1',
          name: 'a',
          uses: 5,
          successes: 4,
          failures: 1,
          latencyMsTotal: 500,
          latencyCount: 5,
          costUsd: 0.75,
          lastUsedAt: T0 + 10,
        });
        assert.equal(await store.getUsage(unused.id), undefined);
        assert.equal(await store.getUsage('agt_gone'), undefined);
      });

      it('lists a project by each sort, descending with ties by id, across pages', async () => {
        const a = await make('a');
        const b = await make('b');
        const c = await make('c');
        const other = await make('x', spec(), 'p2');
        await store.recordUse([
          { id: a.id, at: T0 + 3, runs: runs(5, 5, 0, 0.1) },
          { id: b.id, at: T0 + 9, runs: runs(5, 2, 3, 0.3) },
          { id: c.id, at: T0 + 1, runs: runs(1, 0, 1, 0.2) },
          { id: other.id, at: T0 + 50, runs: runs(50, 50, 0, 9) },
        ]);
        const all = async (sort: 'uses' | 'recent' | 'failures' | 'cost', project?: string) => {
          const out: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await store.listUsage({ project, sort, limit: 1, cursor });
            out.push(...page.data.map((r) => r.name));
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined && out.length < 20);
          return out;
        };
        assert.deepEqual(await all('uses', 'p1'), ['a', 'b', 'c']);
        assert.deepEqual(await all('recent', 'p1'), ['b', 'a', 'c']);
        assert.deepEqual(await all('failures', 'p1'), ['b', 'c', 'a']);
        assert.deepEqual(await all('cost', 'p1'), ['b', 'c', 'a']);
        assert.deepEqual(await all('uses'), ['x', 'a', 'b', 'c']);
        assert.deepEqual(await all('uses', 'p3'), []);
      });

      it("refuses another sort's cursor, and deleting an agent deletes its usage", async () => {
        const a = await make('a');
        const b = await make('b');
        await store.recordUse([
          { id: a.id, at: T0 + 1, runs: runs(1, 1, 0, 0) },
          { id: b.id, at: T0 + 2, runs: runs(1, 1, 0, 0) },
        ]);
        const page = await store.listUsage({ project: 'p1', sort: 'uses', limit: 1 });
        assert.ok(page.nextCursor !== null);
        await rejectsWith(
          store.listUsage({ project: 'p1', sort: 'cost', limit: 1, cursor: page.nextCursor }),
          'VALIDATION_FAILED',
        );
        await store.delete(a.id);
        assert.equal(await store.getUsage(a.id), undefined);
        const left = await store.listUsage({ project: 'p1', sort: 'uses', limit: 10 });
        assert.deepEqual(names(left.data as never), ['b']);
        await store.deleteProjectAgents('p1', 100);
        assert.deepEqual((await store.listUsage({ sort: 'uses', limit: 10 })).data, []);
      });
    });

    describe('concurrency and lifecycle', () => {
      it('of 100 concurrent creates of one name, exactly one fulfils and the rest are AGENT_EXISTS', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 100 }, (_, i) => make('contended', spec({ instructions: `c${i}` }))),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.equal(lost.length, 99);
        assert.ok(lost.every((r) => isAgentPoolError(r.reason, 'AGENT_EXISTS')));
        assert.equal((await store.getByName('p1', 'contended'))?.id, won[0]?.value.id);
        assert.equal(await store.count('p1'), 1);
      });

      it('fails every call after close with STORE_FAILED, and closing twice is harmless', async () => {
        const a = await make('a');
        await store.close();
        await store.close();
        await rejectsWith(store.getById(a.id), 'STORE_FAILED');
        await rejectsWith(make('b'), 'STORE_FAILED');
      });
    });
  });
}
