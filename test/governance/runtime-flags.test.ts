/**
 * Feature flags at runtime (`pool.flags`): set and delete persisted and audited, evaluation from
 * memory at once on the node that wrote, the configuration's flags as defaults a runtime change
 * overrides for good, and a change reaching another pool within a second: two pools on one SQLite
 * file (the poll), and two cluster nodes on one PostgreSQL and Redis (the relay).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { type AgentPool, createAgentPool } from '../../src/agent-pool.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { FlagChangedEvent } from '../../src/governance/runtime-flags.ts';
import { testSchema } from '../support/postgres.ts';
import { redisPrefix } from '../support/redis.ts';
import { tempDir } from '../support/temp-dir.ts';

const ctx = { project: 'acme', key: 'user-1' };

/** Polls `check` until it holds or `ms` pass; answers whether it held in time. */
async function within(ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('runtime feature flags', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const dataDir = () => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };

  it('sets, evaluates at once, lists, deletes and audits every change', async () => {
    const pool = await createAgentPool({ store: 'memory' });
    try {
      const events: FlagChangedEvent[] = [];
      pool.events.on('flag.changed', (e) => events.push(e as FlagChangedEvent));
      const set = await pool.flags.set(
        'beta',
        { strategy: 'allowlist', projects: ['acme'] },
        { actor: 'ops' },
      );
      assert.equal(set.flag.updatedBy, 'ops');
      assert.equal(set.change.before, null);
      assert.equal(pool.flags.isEnabled('beta', ctx), true);
      assert.equal(pool.flags.isEnabled('beta', { ...ctx, project: 'other' }), false);
      await pool.flags.set('beta', { strategy: 'none' });
      assert.equal(pool.flags.isEnabled('beta', ctx), false);
      assert.deepEqual(
        pool.flags.list().map((f) => [f.name, f.flag.strategy, f.updatedBy]),
        [['beta', 'none', 'library']],
      );
      const deleted = await pool.flags.delete('beta', { actor: 'ops' });
      assert.equal(deleted.action, 'delete');
      assert.throws(
        () => pool.flags.isEnabled('beta', ctx),
        (e) => isAgentPoolError(e, 'NOT_FOUND'),
      );
      const history = await pool.flags.history('beta');
      assert.deepEqual(
        history.data.map((c) => [
          c.action,
          c.before?.flag.strategy ?? null,
          c.after?.flag.strategy ?? null,
          c.actor,
        ]),
        [
          ['delete', 'none', null, 'ops'],
          ['put', 'allowlist', 'none', 'library'],
          ['put', null, 'allowlist', 'ops'],
        ],
      );
      assert.deepEqual(
        events.map((e) => [e.name, e.action, e.actor]),
        [
          ['beta', 'put', 'ops'],
          ['beta', 'put', 'library'],
          ['beta', 'delete', 'ops'],
        ],
      );
      await assert.rejects(pool.flags.delete('beta'), (e) => isAgentPoolError(e, 'NOT_FOUND'));
    } finally {
      await pool.close();
    }
  });

  it('refuses a bad name, a bad strategy (naming the field) and a stale revision', async () => {
    const pool = await createAgentPool({ store: 'memory' });
    try {
      const invalid = (field: string) => (e: unknown) =>
        isAgentPoolError(e, 'VALIDATION_FAILED') && e.details.field === field;
      await assert.rejects(pool.flags.set('Bad Name', { strategy: 'all' }), invalid('name'));
      await assert.rejects(
        pool.flags.set('beta', { strategy: 'percentage', percent: 120 }),
        invalid('flag.percent'),
      );
      await assert.rejects(pool.flags.set('beta', { strategy: 'sometimes' }), invalid('flag.strategy'));
      await assert.rejects(pool.flags.set('beta', { strategy: 'all', extra: 1 }), invalid('flag.extra'));
      await assert.rejects(
        pool.flags.set('beta', { strategy: 'all' }, { actor: 'config' }),
        invalid('actor'),
      );
      const first = await pool.flags.set('beta', { strategy: 'all' }, { expectedRevision: 0 });
      await pool.flags.set('beta', { strategy: 'none' }, { expectedRevision: first.flag.revision });
      await assert.rejects(
        pool.flags.set('beta', { strategy: 'all' }, { expectedRevision: first.flag.revision }),
        (e) => isAgentPoolError(e, 'VERSION_CONFLICT'),
      );
      assert.equal(pool.flags.get('beta')?.flag.strategy, 'none');
    } finally {
      await pool.close();
    }
  });

  it('takes the configuration as defaults: a runtime change survives a restart with the old file', async () => {
    const dir = dataDir();
    const config = {
      beta: { strategy: 'percentage' as const, percent: 10 },
      gone: { strategy: 'all' as const },
      plain: { strategy: 'none' as const },
    };
    const first = await createAgentPool({ dataDir: dir, flags: config });
    assert.equal(first.flags.get('beta')?.updatedBy, 'config');
    await first.flags.set('beta', { strategy: 'percentage', percent: 50 }, { actor: 'admin' });
    await first.flags.delete('gone', { actor: 'admin' });
    await first.close();

    const second = await createAgentPool({
      dataDir: dir,
      flags: { ...config, plain: { strategy: 'all' }, added: { strategy: 'all' } },
    });
    try {
      assert.deepEqual(
        second.flags.get('beta')?.flag,
        { strategy: 'percentage', percent: 50 },
        'the runtime change wins',
      );
      assert.equal(second.flags.has('gone'), false, 'deleted at runtime, left deleted');
      assert.equal(
        second.flags.get('plain')?.flag.strategy,
        'all',
        'a config flag nobody changed follows the file',
      );
      assert.equal(second.flags.get('added')?.updatedBy, 'config');
      assert.equal((await second.flags.history('beta')).data.length, 2, 'the restart wrote nothing over it');
    } finally {
      await second.close();
    }
  });

  it('reaches another pool on the same SQLite file within its poll of the store', async () => {
    const dir = dataDir();
    // Without Redis only the poll brings a change: at 250 ms, a second leaves room for a slow machine
    // (at the default 1 s the wait would race the poll itself).
    const open = () => createAgentPool({ dataDir: dir, cluster: { changePollMs: 250 } });
    const a = await open();
    const b = await open();
    try {
      await a.flags.set('beta', { strategy: 'all' });
      assert.ok(await within(1000, () => b.flags.has('beta') && b.flags.isEnabled('beta', ctx)));
      await a.flags.set('beta', { strategy: 'none' });
      assert.ok(await within(1000, () => !b.flags.isEnabled('beta', ctx)));
      await a.flags.delete('beta');
      assert.ok(await within(1000, () => !b.flags.has('beta')));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('reaches every node of a cluster (PostgreSQL and Redis) within a second, told over Redis', async () => {
    const db = await testSchema('flags');
    const redis = await redisPrefix('flags');
    cleanups.push(redis.cleanup, db.cleanup);
    const open = (nodeId: string): Promise<AgentPool> =>
      createAgentPool({
        store: 'postgres',
        databaseUrl: db.url,
        postgres: { schema: db.schema },
        redisUrl: redis.url,
        redisPrefix: redis.prefix,
        // No poll within the test: only the message over Redis can bring the change in time.
        cluster: { nodeId, changePollMs: 60_000 },
        ttlSweepIntervalMs: 0,
      });
    const nodes = [await open('node-a'), await open('node-b'), await open('node-c')];
    try {
      await nodes[0]!.flags.set('canary', { strategy: 'percentage', percent: 100 }, { actor: 'admin' });
      for (const node of nodes) {
        assert.ok(await within(1000, () => node.flags.has('canary') && node.flags.isEnabled('canary', ctx)));
      }
      await nodes[2]!.flags.set('canary', { strategy: 'denylist', projects: ['acme'] }, { actor: 'admin' });
      for (const node of nodes) assert.ok(await within(1000, () => !node.flags.isEnabled('canary', ctx)));
      await nodes[1]!.flags.delete('canary', { actor: 'admin' });
      for (const node of nodes) assert.ok(await within(1000, () => !node.flags.has('canary')));
      const history = await nodes[0]!.flags.history('canary');
      assert.deepEqual(
        history.data.map((c) => c.action),
        ['delete', 'put', 'put'],
      );
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
