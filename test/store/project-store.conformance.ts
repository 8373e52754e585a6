/**
 * The ProjectStore conformance suite: one specification of the port that every adapter (memory,
 * sqlite, later redis and postgres) must pass. Each adapter's test file calls it with a factory.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type ErrorCode, isAgentPoolError } from '../../src/core/errors.ts';
import type { ApiKeyInfo, NewApiKey, ProjectStore } from '../../src/store/project-ports.ts';

const T0 = Date.UTC(2026, 0, 1);

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, field?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isAgentPoolError(err), `expected an AgentPoolError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (field !== undefined) assert.equal(err.details.field, field);
    return true;
  });
}

/** Registers the ProjectStore specification against the adapter that `factory` builds. */
export function projectStoreConformance(
  name: string,
  factory: () => Promise<{ store: ProjectStore; cleanup(): Promise<void> }>,
): void {
  describe(name, () => {
    let store: ProjectStore;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => {
      await cleanup();
    });

    const project = (id: string, now = T0) =>
      store.createProject({ id, name: `Project ${id}`, metadata: {}, now });

    /** A key whose secret is `secret_<id>`; the store sees only its hash and prefix. */
    const newKey = (id: string, projectId = 'p1', now = T0): NewApiKey => {
      const secret = `ap_${id}_secret`;
      return { id, project: projectId, prefix: secret.slice(0, 8), keyHash: sha256(secret), name: id, now };
    };
    const key = (id: string, projectId = 'p1', now = T0) => store.createKey(newKey(id, projectId, now));

    const allKeys = async (projectId: string, limit: number) => {
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listKeys(projectId, { limit, cursor });
        pages.push(page.data.map((k) => k.id));
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && pages.length < 100);
      return pages;
    };

    describe('projects', () => {
      it('creates a project and gets it back by id', async () => {
        const created = await store.createProject({
          id: 'acme',
          name: 'Acme',
          metadata: { plan: 'pro', limits: { agents: 10 } },
          now: T0,
        });
        assert.deepEqual(created, {
          id: 'acme',
          name: 'Acme',
          createdAt: T0,
          metadata: { plan: 'pro', limits: { agents: 10 } },
          limits: {},
        });
        assert.deepEqual(await store.getProject('acme'), created);
        assert.equal(await store.getProject('missing'), undefined);
      });

      it('rejects a taken id with PROJECT_EXISTS and keeps the first', async () => {
        const first = await project('acme');
        await rejectsWith(
          store.createProject({ id: 'acme', name: 'Other', metadata: { x: 1 }, now: T0 + 1 }),
          'PROJECT_EXISTS',
        );
        assert.deepEqual(await store.getProject('acme'), first);
      });

      it('stores limits given at creation and replaces them with setLimits', async () => {
        const limits = { quotas: { maxAgents: 5 }, budgets: { dailyUsd: 1.5 } };
        const created = await store.createProject({
          id: 'acme',
          name: 'Acme',
          metadata: {},
          limits,
          now: T0,
        });
        assert.deepEqual(created.limits, limits);
        const next = { quotas: { runsPerMinute: 60, maxConcurrentRuns: 2 } };
        const updated = await store.setLimits('acme', next);
        assert.deepEqual(updated, { ...created, limits: next });
        assert.deepEqual(await store.getProject('acme'), updated);
        assert.equal(await store.setLimits('missing', next), undefined);
      });

      it('copies metadata in and out, so callers cannot change stored state', async () => {
        const metadata: Record<string, unknown> = { tags: ['a'] };
        const created = await store.createProject({ id: 'acme', name: 'Acme', metadata, now: T0 });
        (metadata.tags as string[]).push('b');
        (created.metadata.tags as string[]).push('c');
        const got = await store.getProject('acme');
        (got?.metadata.tags as string[]).push('d');
        assert.deepEqual((await store.getProject('acme'))?.metadata, { tags: ['a'] });
      });

      it('lists projects by id in keyset pages', async () => {
        for (const id of ['delta', 'alpha', 'echo', 'charlie', 'bravo']) await project(id);
        const first = await store.listProjects({ limit: 2 });
        assert.deepEqual(
          first.data.map((p) => p.id),
          ['alpha', 'bravo'],
        );
        assert.notEqual(first.nextCursor, null);
        const second = await store.listProjects({ limit: 2, cursor: first.nextCursor ?? undefined });
        assert.deepEqual(
          second.data.map((p) => p.id),
          ['charlie', 'delta'],
        );
        const third = await store.listProjects({ limit: 2, cursor: second.nextCursor ?? undefined });
        assert.deepEqual(
          third.data.map((p) => p.id),
          ['echo'],
        );
        assert.equal(third.nextCursor, null);
        const exact = await store.listProjects({ limit: 5 });
        assert.equal(exact.data.length, 5);
        assert.equal(exact.nextCursor, null);
      });

      it('lists an empty store as one empty page', async () => {
        assert.deepEqual(await store.listProjects({ limit: 10 }), { data: [], nextCursor: null });
      });

      it('continues a listing after a project deleted since the cursor was made', async () => {
        for (const id of ['a', 'b', 'c']) await project(id);
        const first = await store.listProjects({ limit: 2 });
        assert.equal(await store.deleteProject('b'), true);
        const rest = await store.listProjects({ limit: 2, cursor: first.nextCursor ?? undefined });
        assert.deepEqual(
          rest.data.map((p) => p.id),
          ['c'],
        );
      });

      it('rejects a bad limit or a cursor of another listing with VALIDATION_FAILED', async () => {
        await project('p1');
        await key('key_1');
        await key('key_2');
        await rejectsWith(store.listProjects({ limit: 0 }), 'VALIDATION_FAILED', 'limit');
        await rejectsWith(store.listProjects({ limit: 1001 }), 'VALIDATION_FAILED', 'limit');
        await rejectsWith(store.listKeys('p1', { limit: 1.5 }), 'VALIDATION_FAILED', 'limit');
        const keyCursor = (await store.listKeys('p1', { limit: 1 })).nextCursor;
        assert.ok(keyCursor !== null);
        await rejectsWith(store.listProjects({ limit: 1, cursor: keyCursor }), 'VALIDATION_FAILED', 'cursor');
        await project('p2');
        const projectCursor = (await store.listProjects({ limit: 1 })).nextCursor;
        assert.ok(projectCursor !== null);
        await rejectsWith(
          store.listKeys('p1', { limit: 1, cursor: projectCursor }),
          'VALIDATION_FAILED',
          'cursor',
        );
        await rejectsWith(
          store.listKeys('p1', { limit: 1, cursor: 'garbage' }),
          'VALIDATION_FAILED',
          'cursor',
        );
      });

      it('deletes a project with its keys, and says false for an absent one', async () => {
        await project('p1');
        await project('p2');
        await key('key_1', 'p1');
        await key('key_2', 'p2');
        assert.equal(await store.deleteProject('p1'), true);
        assert.equal(await store.getProject('p1'), undefined);
        assert.equal(await store.findKeyByHash(newKey('key_1').keyHash), undefined);
        assert.deepEqual(await store.listKeys('p1', { limit: 10 }), { data: [], nextCursor: null });
        assert.equal(await store.countKeys(), 1);
        assert.equal(await store.deleteProject('p1'), false);
        assert.equal(await store.deleteProject('missing'), false);
        // The deleted key's id and hash are free again: a recreated project can reuse them.
        await project('p1');
        assert.equal((await key('key_1', 'p1')).id, 'key_1');
        assert.equal((await store.findKeyByHash(newKey('key_2', 'p2').keyHash))?.project, 'p2');
      });
    });

    describe('keys', () => {
      beforeEach(async () => {
        await project('p1');
        await project('p2');
      });

      it('creates a key and returns it without its hash', async () => {
        const created = await key('key_1');
        assert.deepEqual(created, {
          id: 'key_1',
          project: 'p1',
          prefix: 'ap_key_1',
          name: 'key_1',
          createdAt: T0,
          lastUsedAt: null,
          revokedAt: null,
        });
        assert.equal(Object.hasOwn(created, 'keyHash'), false);
      });

      it('finds a key by its hash, with the hash', async () => {
        await key('key_1');
        const found = await store.findKeyByHash(sha256('ap_key_1_secret'));
        assert.deepEqual(found, {
          id: 'key_1',
          project: 'p1',
          prefix: 'ap_key_1',
          keyHash: sha256('ap_key_1_secret'),
          name: 'key_1',
          createdAt: T0,
          lastUsedAt: null,
          revokedAt: null,
        });
        assert.equal(await store.findKeyByHash(sha256('not a key')), undefined);
      });

      it('rejects a key of an absent project with NOT_FOUND', async () => {
        await rejectsWith(key('key_1', 'missing'), 'PROJECT_NOT_FOUND');
        assert.equal(await store.countKeys(), 0);
      });

      it('rejects a taken key id on field id and a stored hash on field keyHash', async () => {
        await key('key_1');
        await rejectsWith(store.createKey({ ...newKey('key_2'), id: 'key_1' }), 'VALIDATION_FAILED', 'id');
        // Another project's key id is taken too: key ids are global.
        await rejectsWith(
          store.createKey({ ...newKey('key_2', 'p2'), id: 'key_1' }),
          'VALIDATION_FAILED',
          'id',
        );
        await rejectsWith(
          store.createKey({ ...newKey('key_2', 'p2'), keyHash: newKey('key_1').keyHash }),
          'VALIDATION_FAILED',
          'keyHash',
        );
        assert.equal(await store.countKeys(), 1);
        assert.equal((await store.findKeyByHash(newKey('key_1').keyHash))?.project, 'p1');
      });

      it('refuses to store something that is not a SHA-256 hex hash, or a prefix longer than 8', async () => {
        const raw = 'ap_key_1_secret';
        await rejectsWith(
          store.createKey({ ...newKey('key_1'), keyHash: raw }),
          'VALIDATION_FAILED',
          'keyHash',
        );
        await rejectsWith(
          store.createKey({ ...newKey('key_1'), keyHash: sha256(raw).toUpperCase() }),
          'VALIDATION_FAILED',
          'keyHash',
        );
        await rejectsWith(
          store.createKey({ ...newKey('key_1'), prefix: raw }),
          'VALIDATION_FAILED',
          'prefix',
        );
        assert.equal(await store.countKeys(), 0);
      });

      it('lists a project’s keys newest first, without hashes, in keyset pages', async () => {
        // Ties on createdAt are broken by id, descending.
        await key('key_a', 'p1', T0);
        await key('key_b', 'p1', T0 + 2);
        await key('key_c', 'p1', T0 + 1);
        await key('key_d', 'p1', T0 + 1);
        await key('key_e', 'p1', T0 + 3);
        assert.deepEqual(await allKeys('p1', 2), [['key_e', 'key_b'], ['key_d', 'key_c'], ['key_a']]);
        assert.deepEqual(await allKeys('p1', 5), [['key_e', 'key_b', 'key_d', 'key_c', 'key_a']]);
        const { data } = await store.listKeys('p1', { limit: 10 });
        for (const k of data) assert.equal(Object.hasOwn(k, 'keyHash'), false);
        assert.deepEqual(data[0], {
          id: 'key_e',
          project: 'p1',
          prefix: 'ap_key_e',
          name: 'key_e',
          createdAt: T0 + 3,
          lastUsedAt: null,
          revokedAt: null,
        } satisfies ApiKeyInfo);
      });

      it('keeps each project’s keys apart', async () => {
        await key('key_1', 'p1');
        await key('key_2', 'p2');
        await key('key_3', 'p2');
        assert.deepEqual(await allKeys('p1', 10), [['key_1']]);
        assert.deepEqual(await allKeys('p2', 10), [['key_3', 'key_2']]);
        assert.deepEqual(await allKeys('missing', 10), [[]]);
        // A project cannot revoke another's key.
        assert.equal(await store.revokeKey('p1', 'key_2', T0 + 1), false);
        assert.equal((await store.findKeyByHash(newKey('key_2', 'p2').keyHash))?.revokedAt, null);
        assert.equal(await store.countKeys(), 3);
      });

      it('revokes a key: hash lookups no longer find it, listings show when', async () => {
        await key('key_1');
        await key('key_2');
        assert.equal(await store.revokeKey('p1', 'key_1', T0 + 5), true);
        assert.equal(await store.findKeyByHash(newKey('key_1').keyHash), undefined);
        assert.equal((await store.findKeyByHash(newKey('key_2').keyHash))?.id, 'key_2');
        const listed = (await store.listKeys('p1', { limit: 10 })).data.find((k) => k.id === 'key_1');
        assert.equal(listed?.revokedAt, T0 + 5);
        assert.equal(await store.countKeys(), 1);
        // Revoking again succeeds and keeps the first time.
        assert.equal(await store.revokeKey('p1', 'key_1', T0 + 9), true);
        const again = (await store.listKeys('p1', { limit: 10 })).data.find((k) => k.id === 'key_1');
        assert.equal(again?.revokedAt, T0 + 5);
        // A revoked key's hash stays taken.
        await rejectsWith(
          store.createKey({ ...newKey('key_3'), keyHash: newKey('key_1').keyHash }),
          'VALIDATION_FAILED',
          'keyHash',
        );
      });

      it('says false when revoking an absent key', async () => {
        assert.equal(await store.revokeKey('p1', 'key_missing', T0), false);
        assert.equal(await store.revokeKey('missing', 'key_missing', T0), false);
      });

      it('records use with touchKey, never moving lastUsedAt back', async () => {
        await key('key_1');
        assert.equal(await store.touchKey('key_1', T0 + 10), true);
        assert.equal((await store.findKeyByHash(newKey('key_1').keyHash))?.lastUsedAt, T0 + 10);
        assert.equal(await store.touchKey('key_1', T0 + 5), true);
        assert.equal((await store.listKeys('p1', { limit: 1 })).data[0]?.lastUsedAt, T0 + 10);
        assert.equal(await store.touchKey('key_1', T0 + 20), true);
        assert.equal((await store.findKeyByHash(newKey('key_1').keyHash))?.lastUsedAt, T0 + 20);
        assert.equal(await store.touchKey('key_missing', T0), false);
      });

      it('counts keys that are not revoked over every project', async () => {
        assert.equal(await store.countKeys(), 0);
        await key('key_1', 'p1');
        await key('key_2', 'p2');
        await key('key_3', 'p2');
        assert.equal(await store.countKeys(), 3);
        await store.revokeKey('p2', 'key_3', T0);
        assert.equal(await store.countKeys(), 2);
        await store.deleteProject('p1');
        assert.equal(await store.countKeys(), 1);
      });

      it('returns copies: changing a returned key does not change the stored one', async () => {
        await key('key_1');
        const found = (await store.findKeyByHash(newKey('key_1').keyHash)) as { revokedAt: number | null };
        found.revokedAt = T0;
        const listed = (await store.listKeys('p1', { limit: 1 })).data[0] as { name: string };
        listed.name = 'changed';
        const again = await store.findKeyByHash(newKey('key_1').keyHash);
        assert.equal(again?.revokedAt, null);
        assert.equal(again?.name, 'key_1');
      });
    });

    describe('close', () => {
      it('fails every call after close with STORE_FAILED, and closing twice is harmless', async () => {
        await project('p1');
        await key('key_1');
        await store.close();
        await rejectsWith(store.getProject('p1'), 'STORE_FAILED');
        await rejectsWith(project('p2'), 'STORE_FAILED');
        await rejectsWith(store.findKeyByHash(newKey('key_1').keyHash), 'STORE_FAILED');
        await rejectsWith(store.countKeys(), 'STORE_FAILED');
        await store.close();
      });
    });
  });
}
