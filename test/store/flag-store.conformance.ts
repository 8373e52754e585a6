/**
 * The conformance suite of the FlagStore port: flags read back as put, listed by name, replaced
 * and deleted with one audited change each (before and after, actor, time), change ids rising
 * across flags, the revision check of a write, history newest first in pages, outliving a delete.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { isAgentPoolError } from '../../src/core/errors.ts';
import type { NamedFlag } from '../../src/governance/flags.ts';
import type { FlagStore } from '../../src/store/flag-ports.ts';

const T0 = Date.UTC(2026, 0, 1);
const tenth: NamedFlag = { flag: { strategy: 'percentage', percent: 10 }, startedAt: T0 };
const half: NamedFlag = { flag: { strategy: 'percentage', percent: 50 }, startedAt: T0 };
const acme: NamedFlag = { flag: { strategy: 'allowlist', projects: ['acme', 'beta'] }, startedAt: T0 };
const ramp: NamedFlag = {
  flag: { strategy: 'gradual', startPercent: 0, endPercent: 100, durationMs: 3_600_000 },
  startedAt: T0 + 5,
};

/** Registers the specification against the adapter that `factory` builds. */
export function flagStoreConformance(
  name: string,
  factory: () => Promise<{ store: FlagStore; cleanup(): Promise<void> }>,
): void {
  describe(`${name}: flag store`, () => {
    let store: FlagStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });
    afterEach(async () => cleanup());

    it('starts empty', async () => {
      assert.deepEqual(await store.listFlags(), []);
      assert.equal(await store.getFlag('beta'), undefined);
      assert.equal(await store.lastFlagChange(), 0);
      assert.deepEqual(await store.flagHistory('beta', { limit: 10 }), { data: [], nextCursor: null });
    });

    it('reads a flag back as put, with its revision, time and actor; lists flags by name', async () => {
      const { flag, change } = await store.putFlag('zeta', ramp, { actor: 'admin', at: T0 + 1 });
      assert.deepEqual(flag, {
        name: 'zeta',
        ...ramp,
        revision: change.id,
        updatedAt: T0 + 1,
        updatedBy: 'admin',
      });
      assert.deepEqual(change, {
        id: change.id,
        name: 'zeta',
        action: 'put',
        before: null,
        after: ramp,
        actor: 'admin',
        at: T0 + 1,
      });
      await store.putFlag('alpha', acme, { actor: 'config', at: T0 + 2 });
      assert.deepEqual(await store.getFlag('zeta'), flag);
      assert.deepEqual(
        (await store.listFlags()).map((f) => [f.name, f.flag]),
        [
          ['alpha', acme.flag],
          ['zeta', ramp.flag],
        ],
      );
    });

    it('gives every change a larger id than the last, across flags', async () => {
      const a = await store.putFlag('a', tenth, { actor: 'admin', at: T0 });
      const b = await store.putFlag('b', tenth, { actor: 'admin', at: T0 });
      const c = await store.putFlag('a', half, { actor: 'admin', at: T0 });
      const d = await store.deleteFlag('b', { actor: 'admin', at: T0 });
      const ids = [a.change.id, b.change.id, c.change.id, d!.id];
      assert.deepEqual(
        [...ids].sort((x, y) => x - y),
        ids,
      );
      assert.equal(new Set(ids).size, 4);
      assert.equal(await store.lastFlagChange(), d!.id);
      assert.equal((await store.getFlag('a'))!.revision, c.change.id);
    });

    it('audits a replacement and a delete with the definition before and after', async () => {
      await store.putFlag('beta', tenth, { actor: 'config', at: T0 });
      await store.putFlag('beta', half, { actor: 'admin', at: T0 + 10 });
      const deleted = await store.deleteFlag('beta', { actor: 'ops', at: T0 + 20 });
      assert.equal(deleted?.action, 'delete');
      assert.equal(await store.getFlag('beta'), undefined);
      const history = await store.flagHistory('beta', { limit: 10 });
      assert.deepEqual(
        history.data.map((c) => [c.action, c.before, c.after, c.actor, c.at]),
        [
          ['delete', half, null, 'ops', T0 + 20],
          ['put', tenth, half, 'admin', T0 + 10],
          ['put', null, tenth, 'config', T0],
        ],
        'newest first, and the history outlives the flag',
      );
      assert.equal(history.nextCursor, null);
    });

    it('appends nothing for the delete of a flag that does not exist', async () => {
      assert.equal(await store.deleteFlag('ghost', { actor: 'admin', at: T0 }), undefined);
      assert.equal(await store.lastFlagChange(), 0);
      assert.deepEqual((await store.flagHistory('ghost', { limit: 10 })).data, []);
    });

    it('writes only at the expected revision (0: only when absent), else VERSION_CONFLICT', async () => {
      const first = await store.putFlag('beta', tenth, { actor: 'a', at: T0, expectedRevision: 0 });
      const conflict = (err: unknown) =>
        isAgentPoolError(err, 'VERSION_CONFLICT') && err.details.flag === 'beta';
      await assert.rejects(
        store.putFlag('beta', half, { actor: 'b', at: T0, expectedRevision: 0 }),
        conflict,
      );
      const second = await store.putFlag('beta', half, {
        actor: 'b',
        at: T0,
        expectedRevision: first.flag.revision,
      });
      await assert.rejects(
        store.putFlag('beta', tenth, { actor: 'c', at: T0, expectedRevision: first.flag.revision }),
        conflict,
      );
      await assert.rejects(
        store.deleteFlag('beta', { actor: 'c', at: T0, expectedRevision: first.flag.revision }),
        conflict,
      );
      assert.deepEqual((await store.getFlag('beta'))?.flag, half.flag);
      assert.equal(
        (await store.flagHistory('beta', { limit: 10 })).data.length,
        2,
        'refused writes are not audited',
      );
      assert.ok(
        await store.deleteFlag('beta', { actor: 'c', at: T0, expectedRevision: second.flag.revision }),
      );
    });

    it('pages a history newest first with a cursor; refuses a cursor of another listing', async () => {
      for (let i = 0; i < 5; i++) {
        await store.putFlag(
          'beta',
          { flag: { strategy: 'percentage', percent: i }, startedAt: T0 },
          {
            actor: 'admin',
            at: T0 + i,
          },
        );
        await store.putFlag('other', tenth, { actor: 'admin', at: T0 + i });
      }
      const seen: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.flagHistory('beta', { limit: 2, ...(cursor !== undefined && { cursor }) });
        assert.ok(page.data.length <= 2);
        seen.push(...page.data.map((c) => c.at - T0));
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      assert.deepEqual(seen, [4, 3, 2, 1, 0]);
      await assert.rejects(
        store.flagHistory('beta', { limit: 2, cursor: Buffer.from('run:1').toString('base64url') }),
        (err: unknown) => isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.field === 'cursor',
      );
    });
  });
}
