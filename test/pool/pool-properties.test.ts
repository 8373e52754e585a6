import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Lease } from '../../src/pool/lease.ts';
import { POLICY_NAMES } from '../../src/pool/policies/create-policy.ts';
import { createAgents, flush, P, poolFixture } from '../support/pool-fixture.ts';

type Cmd =
  { op: 'acquire'; agent: number } | { op: 'release'; pick: number } | { op: 'update'; agent: number };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('acquire' as const), agent: fc.nat(11) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('release' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('update' as const), agent: fc.nat(11) }) },
);

describe('instance pool under random concurrent use (property)', () => {
  for (const policy of POLICY_NAMES) {
    it(`${policy}: never exceeds maxActive, never takes a leased instance away, serves every waiter`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(cmd, { maxLength: 80 }),
          fc.integer({ min: 1, max: 5 }),
          async (cmds, maxActive) => {
            const { pool, registry } = poolFixture({ maxActive, policy, acquireTimeoutMs: 1_000_000 });
            await createAgents(registry, 12, 'a', { tier: 'warm' });
            const held: Lease[] = [];
            const pending = new Set<Promise<void>>();
            const check = () => {
              assert.ok(pool.stats().active <= maxActive, `active ${pool.stats().active} > ${maxActive}`);
              for (const lease of held) assert.equal(lease.instance.state, 'busy');
            };
            for (const c of cmds) {
              if (c.op === 'acquire') {
                const p = pool.acquire(P, `a${c.agent}`).then((lease) => {
                  held.push(lease);
                });
                pending.add(p);
                void p.finally(() => pending.delete(p));
              } else if (c.op === 'release' && held.length > 0) {
                const [lease] = held.splice(c.pick % held.length, 1);
                lease?.release();
              } else if (c.op === 'update') {
                await registry.update(P, `a${c.agent}`, { instructions: String(Math.random()) });
              }
              await flush();
              check();
            }
            // drain: release everything until every acquire has been served
            while (pending.size > 0 || held.length > 0) {
              for (const lease of held.splice(0)) lease.release();
              await flush();
              check();
            }
            assert.equal(pool.stats().waiting, 0);
            assert.equal(pool.stats().byState.busy, 0);
            pool.close();
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});
