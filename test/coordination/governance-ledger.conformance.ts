/**
 * The governance ledger's contract, run against every adapter (local, Redis): places, per-minute
 * windows, budget windows read once from the store, all-or-nothing reservations, the refusals
 * and their Retry-After, and that what a ledger gives back or settles is seen by its next read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  AdmissionQuotas,
  GovernanceLedger,
  SpendSource,
} from '../../src/coordination/governance-ledger.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { type AgentPoolError, isAgentPoolError } from '../../src/core/errors.ts';

/** A ledger under test and what closes it. */
export interface LedgerHarness {
  readonly ledger: GovernanceLedger;
  close(): Promise<void>;
}

/** Opens a fresh, empty ledger on `clock`. */
export type LedgerFactory = (clock: ManualClock) => Promise<LedgerHarness>;

/** Noon UTC on a whole second, mid-month: far from every window edge unless a test moves it. */
export const T0 = Date.UTC(2026, 0, 15, 12);
const P = 'acme';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A run store's spend: costs by project and creation time, and how often it was read. */
export class SpendLog implements SpendSource {
  readonly #costs: { project: string; at: number; usd: number }[] = [];
  reads = 0;

  add(project: string, at: number, usd: number): void {
    this.#costs.push({ project, at, usd });
  }

  async costSince(project: string, since: number): Promise<number> {
    this.reads++;
    let sum = 0;
    for (const c of this.#costs) if (c.project === project && c.at >= since) sum += c.usd;
    return sum;
  }
}

/** The refusal `fn` throws (synchronously or not), checked for `code` and `details`. */
export async function refusal(
  fn: () => unknown,
  code: string,
  details: Record<string, unknown> = {},
): Promise<AgentPoolError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(isAgentPoolError(caught), `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const [key, value] of Object.entries(details)) {
    assert.deepEqual(caught.details[key], value, `details.${key} of ${JSON.stringify(caught.details)}`);
  }
  return caught;
}

const quotas = (project: AdmissionQuotas['project'] = {}, agent: AdmissionQuotas['agent'] = {}) => ({
  project,
  agent,
});

/** The conformance suite: `open` gives each test a fresh ledger. */
export function governanceLedgerConformance(name: string, open: LedgerFactory): void {
  describe(`governance ledger: ${name}`, () => {
    async function fixture(start = T0) {
      const clock = new ManualClock(start);
      const h = await open(clock);
      return { ...h, clock, spend: new SpendLog() };
    }

    it('takes places up to the project’s maxConcurrentRuns, refuses the next with QUOTA_EXCEEDED, and a release frees one', async () => {
      const f = await fixture();
      try {
        const q = quotas({ maxConcurrentRuns: 2 });
        const a = await f.ledger.take(P, 'agt_a', q, T0);
        await f.ledger.take(P, 'agt_b', q, T0);
        await refusal(() => f.ledger.take(P, 'agt_c', q, T0), 'QUOTA_EXCEEDED', {
          scope: 'project',
          quota: 'maxConcurrentRuns',
          limit: 2,
          retryAfterSeconds: 1,
        });
        f.ledger.release(a);
        await f.ledger.take(P, 'agt_c', q, T0);
        assert.equal((await f.ledger.usage(P, T0)).running, 2);
        assert.equal((await f.ledger.usage('other', T0)).running, 0, 'projects are counted apart');
      } finally {
        await f.close();
      }
    });

    it('refuses an agent beyond its own places while its project has room', async () => {
      const f = await fixture();
      try {
        const q = quotas({ maxConcurrentRuns: 10 }, { maxConcurrentRuns: 1 });
        const a = await f.ledger.take(P, 'agt_a', q, T0);
        await refusal(() => f.ledger.take(P, 'agt_a', q, T0), 'QUOTA_EXCEEDED', { scope: 'agent', limit: 1 });
        await f.ledger.take(P, 'agt_b', q, T0);
        f.ledger.release(a);
        await f.ledger.take(P, 'agt_a', q, T0);
      } finally {
        await f.close();
      }
    });

    it('refuses beyond runsPerMinute with RATE_LIMITED and a Retry-After that is exactly when the window frees', async () => {
      const f = await fixture();
      try {
        const q = quotas({ runsPerMinute: 2 });
        f.ledger.release(await f.ledger.take(P, 'agt_a', q, T0));
        f.ledger.release(await f.ledger.take(P, 'agt_b', q, T0 + 10_000));
        await refusal(() => f.ledger.take(P, 'agt_a', q, T0 + 20_000), 'RATE_LIMITED', {
          scope: 'project',
          quota: 'runsPerMinute',
          limit: 2,
          retryAfterSeconds: 40,
        });
        await refusal(() => f.ledger.take(P, 'agt_a', q, T0 + 59_999), 'RATE_LIMITED', {
          retryAfterSeconds: 1,
        });
        f.ledger.release(await f.ledger.take(P, 'agt_a', q, T0 + 60_000));
        assert.equal((await f.ledger.usage(P, T0 + 60_000)).runsLastMinute, 2);
      } finally {
        await f.close();
      }
    });

    it("refuses an agent beyond its own runsPerMinute while the project's other agents go on", async () => {
      const f = await fixture();
      try {
        const q = quotas({ runsPerMinute: 10 }, { runsPerMinute: 1 });
        f.ledger.release(await f.ledger.take(P, 'agt_a', q, T0));
        await refusal(() => f.ledger.take(P, 'agt_a', q, T0 + 1000), 'RATE_LIMITED', {
          scope: 'agent',
          quota: 'runsPerMinute',
          limit: 1,
          retryAfterSeconds: 59,
        });
        f.ledger.release(await f.ledger.take(P, 'agt_b', q, T0 + 1000));
      } finally {
        await f.close();
      }
    });

    it('a refused take counts nothing, and an uncounted take leaves its minute', async () => {
      const f = await fixture();
      try {
        const holding = await f.ledger.take(P, 'agt_a', quotas({ maxConcurrentRuns: 1 }), T0);
        await refusal(
          () => f.ledger.take(P, 'agt_a', quotas({ maxConcurrentRuns: 1 }), T0),
          'QUOTA_EXCEEDED',
        );
        assert.equal((await f.ledger.usage(P, T0)).runsLastMinute, 1);
        f.ledger.release(holding);
        f.ledger.uncount(holding, T0);
        assert.deepEqual(await f.ledger.usage(P, T0 + 1000), {
          running: 0,
          runsLastMinute: 0,
          tokensLastMinute: 0,
        });
        const q = quotas({ runsPerMinute: 1 }, { runsPerMinute: 1 });
        f.ledger.release(await f.ledger.take(P, 'agt_a', q, T0 + 1000));
      } finally {
        await f.close();
      }
    });

    it('counts tokens and refuses a run once the project reached tokensPerMinute, until they leave the window', async () => {
      const f = await fixture();
      try {
        f.ledger.addTokens(P, 60, T0);
        f.ledger.addTokens(P, 40, T0 + 5000);
        f.ledger.addTokens(P, 0, T0 + 5000);
        assert.equal((await f.ledger.usage(P, T0 + 5000)).tokensLastMinute, 100);
        await refusal(
          () => f.ledger.take(P, 'agt_a', quotas({ tokensPerMinute: 100 }), T0 + 5000),
          'RATE_LIMITED',
          {
            scope: 'project',
            quota: 'tokensPerMinute',
            limit: 100,
            retryAfterSeconds: 55,
          },
        );
        f.ledger.release(await f.ledger.take(P, 'agt_a', quotas({ tokensPerMinute: 101 }), T0 + 5000));
        f.ledger.release(await f.ledger.take(P, 'agt_a', quotas({ tokensPerMinute: 100 }), T0 + 60_000));
        assert.equal((await f.ledger.usage(P, T0 + 60_000)).tokensLastMinute, 40);
      } finally {
        await f.close();
      }
    });

    it('reads each budget window once from the store, when first prepared', async () => {
      const f = await fixture();
      try {
        f.spend.add(P, T0 - 10 * DAY, 3); // this month, another day
        f.spend.add(P, T0 - HOUR, 2); // today
        f.spend.add('other', T0 - HOUR, 100);
        await f.ledger.prepare(P, T0, f.spend);
        assert.equal(f.spend.reads, 2, 'one read per window');
        assert.equal(f.ledger.prepare(P, T0 + HOUR, f.spend), undefined, 'current windows need no wait');
        const w = await f.ledger.windows(P, T0, f.spend);
        assert.deepEqual(w.daily, {
          kind: 'daily',
          start: Date.UTC(2026, 0, 15),
          end: Date.UTC(2026, 0, 16),
          spent: 2,
          reserved: 0,
        });
        assert.deepEqual(w.monthly, {
          kind: 'monthly',
          start: Date.UTC(2026, 0, 1),
          end: Date.UTC(2026, 1, 1),
          spent: 5,
          reserved: 0,
        });
        assert.equal(f.spend.reads, 2);
      } finally {
        await f.close();
      }
    });

    it('reserves against every window with a limit, all or nothing, and says which window refused', async () => {
      const f = await fixture();
      try {
        f.spend.add(P, T0 - 10 * DAY, 3);
        f.spend.add(P, T0 - HOUR, 2);
        await f.ledger.prepare(P, T0, f.spend);
        const hold = await f.ledger.take(P, 'agt_a', quotas(), T0);
        const limits = { dailyUsd: 10, monthlyUsd: 6 };
        await refusal(() => f.ledger.reserve(hold, limits, 2, T0, f.spend), 'BUDGET_EXHAUSTED', {
          project: P,
          window: 'monthly',
          limitUsd: 6,
          spentUsd: 5,
          reservedUsd: 0,
          neededUsd: 2,
          resetsAt: '2026-02-01T00:00:00.000Z',
          retryAfterSeconds: (Date.UTC(2026, 1, 1) - T0) / 1000, // spent alone blocks: until the reset
        });
        let w = await f.ledger.windows(P, T0, f.spend);
        assert.equal(w.daily?.reserved, 0, 'the daily window took nothing either');
        await f.ledger.reserve(hold, limits, 1, T0, f.spend);
        w = await f.ledger.windows(P, T0, f.spend);
        assert.equal(w.daily?.reserved, 1);
        assert.equal(w.monthly?.reserved, 1);
        // Now only the reservation blocks: it frees as runs finish, so Retry-After is 1 s.
        await refusal(() => f.ledger.reserve(hold, limits, 0.5, T0, f.spend), 'BUDGET_EXHAUSTED', {
          window: 'monthly',
          spentUsd: 5,
          reservedUsd: 1,
          retryAfterSeconds: 1,
        });
        await refusal(() => f.ledger.reserve(hold, { dailyUsd: 3 }, 0.5, T0, f.spend), 'BUDGET_EXHAUSTED', {
          window: 'daily',
          spentUsd: 2,
          reservedUsd: 1,
          retryAfterSeconds: 1,
        });
      } finally {
        await f.close();
      }
    });

    it('is exhausted when spent equals the limit, even for a reservation of $0, and a reservation may fill a window exactly', async () => {
      const f = await fixture();
      try {
        f.spend.add(P, T0 - HOUR, 4);
        await f.ledger.prepare(P, T0, f.spend);
        const hold = await f.ledger.take(P, 'agt_a', quotas(), T0);
        await f.ledger.reserve(hold, { dailyUsd: 5 }, 1, T0, f.spend);
        await refusal(() => f.ledger.reserve(hold, { dailyUsd: 5 }, 0, T0, f.spend), 'BUDGET_EXHAUSTED');
        await refusal(() => f.ledger.reserve(hold, { dailyUsd: 4 }, 0, T0, f.spend), 'BUDGET_EXHAUSTED', {
          retryAfterSeconds: 12 * 3600,
        });
        await f.ledger.reserve(hold, {}, 0, T0, f.spend); // no limit: nothing to refuse
      } finally {
        await f.close();
      }
    });

    it('gives back what a run unreserves, and counts what it is charged in the windows of its creation', async () => {
      const f = await fixture();
      try {
        await f.ledger.prepare(P, T0, f.spend);
        const hold = await f.ledger.take(P, 'agt_a', quotas(), T0);
        const held = await f.ledger.reserve(hold, { dailyUsd: 10 }, 4, T0, f.spend);
        f.ledger.charge(P, 3, T0);
        f.ledger.unreserve(hold, held, 3);
        let w = await f.ledger.windows(P, T0, f.spend);
        assert.equal(w.daily?.spent, 3);
        assert.equal(w.daily?.reserved, 1);
        // A run created yesterday settles into the month, not into today.
        f.ledger.charge(P, 2, T0 - DAY);
        f.ledger.unreserve(hold, held, 1);
        f.ledger.release(hold);
        w = await f.ledger.windows(P, T0, f.spend);
        assert.deepEqual(
          [w.daily?.spent, w.daily?.reserved, w.monthly?.spent, w.monthly?.reserved],
          [3, 0, 5, 0],
        );
      } finally {
        await f.close();
      }
    });

    it('a charge before the windows were ever used is left to the store, which they are read from', async () => {
      const f = await fixture();
      try {
        f.ledger.charge(P, 7, T0); // nothing loaded yet: the store holds the cost
        f.spend.add(P, T0, 7);
        await f.ledger.prepare(P, T0, f.spend);
        assert.equal((await f.ledger.windows(P, T0, f.spend)).daily?.spent, 7, 'counted once, not twice');
      } finally {
        await f.close();
      }
    });

    it('keeps exact sums of amounts on the binary grid (1/512 USD), with no rounding slack', async () => {
      const f = await fixture();
      try {
        await f.ledger.prepare(P, T0, f.spend);
        const usd = 1 / 512;
        const limit = 300 * usd;
        const holds = [];
        for (let i = 0; i < 300; i++) {
          const hold = await f.ledger.take(P, `agt_${i}`, quotas(), T0);
          holds.push({ hold, held: await f.ledger.reserve(hold, { dailyUsd: limit }, usd, T0, f.spend) });
        }
        await refusal(async () => {
          const hold = await f.ledger.take(P, 'agt_x', quotas(), T0);
          await f.ledger.reserve(hold, { dailyUsd: limit }, 0, T0, f.spend);
        }, 'BUDGET_EXHAUSTED');
        for (const [i, { hold, held }] of holds.entries()) {
          f.ledger.charge(P, i % 2 === 0 ? usd : usd / 2, T0);
          f.ledger.unreserve(hold, held, usd);
          f.ledger.release(hold);
        }
        const w = await f.ledger.windows(P, T0, f.spend);
        assert.equal(w.daily?.spent, 150 * usd + 75 * usd);
        assert.equal(w.daily?.reserved, 0);
        assert.equal((await f.ledger.usage(P, T0)).running, 1, 'only the refused reservation’s place');
      } finally {
        await f.close();
      }
    });

    it('rolls the daily window over at UTC midnight: the new day is read from the store, yesterday’s reservation is given back harmlessly', async () => {
      const late = Date.UTC(2026, 0, 15, 23, 59, 59);
      const f = await fixture(late);
      try {
        f.spend.add(P, late - HOUR, 5);
        await f.ledger.prepare(P, late, f.spend);
        const hold = await f.ledger.take(P, 'agt_a', quotas(), late);
        const held = await f.ledger.reserve(hold, { dailyUsd: 10 }, 5, late, f.spend);
        await refusal(() => f.ledger.reserve(hold, { dailyUsd: 10 }, 1, late, f.spend), 'BUDGET_EXHAUSTED', {
          window: 'daily',
          retryAfterSeconds: 1,
        });
        const next = late + 1000;
        const preparing = f.ledger.prepare(P, next, f.spend);
        assert.ok(preparing !== undefined, 'a new day needs reading');
        await preparing;
        const w = await f.ledger.windows(P, next, f.spend);
        assert.deepEqual([w.daily?.start, w.daily?.spent, w.daily?.reserved], [Date.UTC(2026, 0, 16), 0, 0]);
        assert.equal(w.monthly?.reserved, 5, 'the month still holds it');
        await f.ledger.reserve(hold, { dailyUsd: 10 }, 10, next, f.spend);
        f.ledger.unreserve(hold, held, 5);
        const after = await f.ledger.windows(P, next, f.spend);
        assert.deepEqual([after.daily?.reserved, after.monthly?.reserved], [10, 10]);
      } finally {
        await f.close();
      }
    });

    it('forgets a project: counters and windows start again from nothing', async () => {
      const f = await fixture();
      try {
        f.spend.add(P, T0 - HOUR, 2);
        await f.ledger.prepare(P, T0, f.spend);
        const hold = await f.ledger.take(P, 'agt_a', quotas({ runsPerMinute: 1 }), T0);
        await f.ledger.reserve(hold, { dailyUsd: 10 }, 1, T0, f.spend);
        f.ledger.addTokens(P, 50, T0);
        f.ledger.forget(P);
        const empty = new SpendLog();
        assert.deepEqual(await f.ledger.usage(P, T0), { running: 0, runsLastMinute: 0, tokensLastMinute: 0 });
        await f.ledger.prepare(P, T0, empty);
        assert.equal(empty.reads, 2, 'the windows are read again');
        const w = await f.ledger.windows(P, T0, empty);
        assert.deepEqual([w.daily?.spent, w.daily?.reserved], [0, 0]);
        f.ledger.release(await f.ledger.take(P, 'agt_a', quotas({ runsPerMinute: 1 }), T0));
      } finally {
        await f.close();
      }
    });

    it('samples the projects it counts for metrics: runs in flight and current windows', async () => {
      const f = await fixture();
      try {
        f.spend.add(P, T0 - HOUR, 2);
        await f.ledger.prepare(P, T0, f.spend);
        const hold = await f.ledger.take(P, 'agt_a', quotas(), T0);
        await f.ledger.reserve(hold, { dailyUsd: 10 }, 1, T0, f.spend);
        const sample = f.ledger.samples(T0).find((s) => s.project === P);
        assert.equal(sample?.running, 1);
        assert.deepEqual([sample?.daily?.spent, sample?.daily?.reserved], [2, 1]);
        assert.equal(sample?.monthly?.kind, 'monthly');
        await f.ledger.flush();
      } finally {
        await f.close();
      }
    });
  });
}

/** A ManualClock for a test that builds its own ledgers. */
export function clockAt(start = T0): ManualClock {
  return new ManualClock(start);
}
