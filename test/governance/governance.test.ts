import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { GovernanceLedger } from '../../src/coordination/governance-ledger.ts';
import { connectRedis, resolveRedisConnection } from '../../src/coordination/redis/connection.ts';
import { RedisGovernanceLedger } from '../../src/coordination/redis/governance-ledger.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { type AgentPoolError, isAgentPoolError } from '../../src/core/errors.ts';
import { Governance, type AdmitRequest } from '../../src/governance/governance.ts';
import {
  type GovernanceOptions,
  mergeLimits,
  parseProjectLimits,
  type ProjectLimits,
  resolveGovernanceOptions,
} from '../../src/governance/limits.ts';
import { PriceTable } from '../../src/models/pricing.ts';
import { MemoryProjectStore } from '../../src/store/memory-projects.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { redisPrefix } from '../support/redis.ts';
import { runRecord } from '../support/run-record.ts';

/** Noon UTC on a whole second, mid-month: far from every window edge unless a test moves it. */
const T0 = Date.UTC(2026, 0, 15, 12);
const P = 'acme';
/** $1 per token in and out, so a worst case is just bytes + output tokens, in dollars. */
const DEAR = 'test/dear';
/** $0.50 per token. */
const CHEAP = 'test/cheap';
/** No price at all: costs 0. */
const FREE = 'test/free';

/** The ledger a fixture's governance keeps its counts in: its default (local), or a shared one. */
type LedgerFor = (clock: ManualClock) => GovernanceLedger | undefined;

function base(options: GovernanceOptions = {}, start = T0, ledgerFor: LedgerFor = () => undefined) {
  const clock = new ManualClock(start);
  const ledger = ledgerFor(clock);
  const runs = new MemoryRunStore();
  const projects = new MemoryProjectStore();
  const prices = new PriceTable({
    includeDefaults: false,
    prices: {
      [DEAR]: { inputPerMillion: 1_000_000, outputPerMillion: 1_000_000 },
      [CHEAP]: { inputPerMillion: 500_000, outputPerMillion: 500_000 },
    },
  });
  const refusals: string[] = [];
  const agents = { count: 0, asked: 0 };
  const governance = new Governance(
    {
      projects,
      runs,
      prices,
      clock,
      countAgents: async () => {
        agents.asked++;
        return agents.count;
      },
      observer: { refused: (project, code) => refusals.push(`${project}:${code}`) },
      ...(ledger !== undefined && { ledger }),
    },
    options,
  );
  let seq = 0;
  return {
    clock,
    runs,
    projects,
    governance,
    refusals,
    agents,
    /** Creates the project with these limits (validated as an admin's would be). */
    project: (limits: unknown, id = P) =>
      projects.createProject({ id, name: id, metadata: {}, limits: parseProjectLimits(limits), now: start }),
    /** Stores a finished run that cost `cost`, created at `createdAt`. */
    spent: (cost: number, createdAt: number, project = P) =>
      runs.createRun(run({ id: `run_seed_${++seq}`, project, cost, createdAt }), []),
  };
}

function run(overrides: Partial<RunRecord>): RunRecord {
  return runRecord({
    id: 'run_x',
    project: P,
    agentId: 'agt_a',
    status: 'succeeded',
    input: 'abcd',
    output: 'ok',
    model: DEAR,
    steps: 1,
    createdAt: T0,
    startedAt: T0,
    finishedAt: T0,
    ...overrides,
  });
}

/** 4 bytes of input and 6 output tokens at $1 a token: a worst case of exactly $10. */
function request(overrides: Partial<AdmitRequest> = {}): AdmitRequest {
  return {
    project: P,
    agentId: 'agt_a',
    models: [DEAR],
    maxTokens: 6,
    promptBytes: () => 4,
    ...overrides,
  };
}

/** Asserts that `promise` rejects with `code` and details that include `details`. */
async function refused(
  promise: Promise<unknown>,
  code: string,
  details: Record<string, unknown> = {},
): Promise<AgentPoolError> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(isAgentPoolError(caught), `expected an AgentPoolError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.status, code === 'RUN_EXCEEDS_BUDGET' ? 422 : 429);
  for (const [key, value] of Object.entries(details)) {
    assert.deepEqual(caught.details[key], value, `details.${key} of ${JSON.stringify(caught.details)}`);
  }
  return caught;
}

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isAgentPoolError(err, 'VALIDATION_FAILED'), String(err));
    const field = String(err.details['field']);
    assert.ok(err.message.startsWith(field), `"${err.message}" names ${field}`);
    return field;
  }
  assert.fail('expected a validation error');
}

const fixture = (options?: GovernanceOptions) => base(options);

describe('governance limits', () => {
  it('pins the defaults: unlimited, 4096 output tokens per call under a budget, limits cached 5 s', () => {
    assert.deepEqual(resolveGovernanceOptions(), {
      defaults: {},
      defaultMaxTokens: 4096,
      limitsCacheMs: 5000,
    });
    assert.deepEqual(resolveGovernanceOptions({}), resolveGovernanceOptions());
    assert.deepEqual(fixture().governance.options, resolveGovernanceOptions());
  });

  it('rejects bad limits naming the field', () => {
    const cases: [unknown, string][] = [
      ['ten', 'limits'],
      [{ spending: {} }, 'limits.spending'],
      [{ quotas: [] }, 'limits.quotas'],
      [{ quotas: { perHour: 1 } }, 'limits.quotas.perHour'],
      [{ quotas: { runsPerMinute: -1 } }, 'limits.quotas.runsPerMinute'],
      [{ quotas: { maxAgents: 1.5 } }, 'limits.quotas.maxAgents'],
      [{ quotas: { maxConcurrentRuns: '2' } }, 'limits.quotas.maxConcurrentRuns'],
      [{ quotas: { tokensPerMinute: 2e9 } }, 'limits.quotas.tokensPerMinute'],
      [{ budgets: 5 }, 'limits.budgets'],
      [{ budgets: { weeklyUsd: 1 } }, 'limits.budgets.weeklyUsd'],
      [{ budgets: { dailyUsd: -0.01 } }, 'limits.budgets.dailyUsd'],
      [{ budgets: { monthlyUsd: 'ten' } }, 'limits.budgets.monthlyUsd'],
      [{ budgets: { perRunUsd: Infinity } }, 'limits.budgets.perRunUsd'],
      [{ budgets: { dailyUsd: 2e9 } }, 'limits.budgets.dailyUsd'],
    ];
    for (const [input, field] of cases) {
      assert.equal(
        fieldOf(() => parseProjectLimits(input)),
        field,
        JSON.stringify(input),
      );
    }
  });

  it('rejects bad governance options naming the field', () => {
    const cases: [unknown, string][] = [
      [{ defaults: { quotas: { tokensPerMinute: -5 } } }, 'governance.defaults.quotas.tokensPerMinute'],
      [{ defaults: { budgets: { perRunUsd: NaN } } }, 'governance.defaults.budgets.perRunUsd'],
      [{ defaults: 'none' }, 'governance.defaults'],
      [{ defaultMaxTokens: 0 }, 'governance.defaultMaxTokens'],
      [{ defaultMaxTokens: 1.5 }, 'governance.defaultMaxTokens'],
      [{ limitsCacheMs: -1 }, 'governance.limitsCacheMs'],
      [{ budgets: {} }, 'governance.budgets'],
    ];
    for (const [input, field] of cases) {
      assert.equal(
        fieldOf(() => resolveGovernanceOptions(input as GovernanceOptions)),
        field,
        JSON.stringify(input),
      );
    }
    assert.equal(
      fieldOf(() => fixture({ defaultMaxTokens: -1 })),
      'governance.defaultMaxTokens',
      'the Governance constructor validates too',
    );
  });

  it('drops null fields (unlimited) and keeps zero (nothing allowed)', () => {
    assert.deepEqual(parseProjectLimits({ quotas: { maxAgents: null, runsPerMinute: 0 }, budgets: null }), {
      quotas: { runsPerMinute: 0 },
    });
    assert.deepEqual(parseProjectLimits({ budgets: { dailyUsd: 0, monthlyUsd: null } }), {
      budgets: { dailyUsd: 0 },
    });
    assert.deepEqual(parseProjectLimits({}), {});
  });

  it("merges a project's own limits over the defaults field by field", () => {
    const defaults: ProjectLimits = {
      quotas: { maxConcurrentRuns: 1, runsPerMinute: 100 },
      budgets: { dailyUsd: 1000, perRunUsd: 50 },
    };
    assert.deepEqual(mergeLimits(defaults, { quotas: { maxConcurrentRuns: 3 }, budgets: { dailyUsd: 25 } }), {
      quotas: { maxConcurrentRuns: 3, runsPerMinute: 100 },
      budgets: { dailyUsd: 25, perRunUsd: 50 },
    });
    assert.deepEqual(mergeLimits(defaults, {}), defaults);
    assert.deepEqual(mergeLimits({}, { quotas: { maxAgents: 0 } }), {
      quotas: { maxAgents: 0 },
      budgets: {},
    });
  });
});

/**
 * Every behaviour below holds whichever ledger keeps the counts: the local one, and the Redis one
 * a cluster shares (one connection for the file, a fresh key prefix per fixture).
 */
const redis = await redisPrefix('governance');
const shared = await connectRedis(
  resolveRedisConnection({ url: redis.url, prefix: redis.prefix }),
  'governance-test',
);
after(async () => {
  shared.disconnect();
  await redis.cleanup();
});
const LEDGERS: Record<string, LedgerFor> = {
  local: () => undefined,
  redis: (clock) =>
    new RedisGovernanceLedger({
      redis: shared,
      prefix: `${redis.prefix}${randomBytes(4).toString('hex')}:`,
      clock,
    }),
};

for (const [kind, ledgerFor] of Object.entries(LEDGERS)) {
  describe(`governance with the ${kind} ledger`, () => {
    const fixture = (options: GovernanceOptions = {}, start = T0) => base(options, start, ledgerFor);

    describe('governance: runs in flight (maxConcurrentRuns)', () => {
      it('refuses the project’s run beyond its places with QUOTA_EXCEEDED, and frees a place on release', async () => {
        const f = fixture();
        await f.project({ quotas: { maxConcurrentRuns: 2 } });
        const a = await f.governance.admit(request());
        const b = await f.governance.admit(request({ agentId: 'agt_b' }));
        await refused(f.governance.admit(request({ agentId: 'agt_c' })), 'QUOTA_EXCEEDED', {
          scope: 'project',
          quota: 'maxConcurrentRuns',
          limit: 2,
          retryAfterSeconds: 1,
        });
        a.release();
        const c = await f.governance.admit(request({ agentId: 'agt_c' }));
        await refused(f.governance.admit(request()), 'QUOTA_EXCEEDED');
        b.release();
        c.release();
        assert.equal((await f.governance.usage(P)).quotas.maxConcurrentRuns.used, 0);
        assert.deepEqual(f.refusals, [`${P}:QUOTA_EXCEEDED`, `${P}:QUOTA_EXCEEDED`]);
      });

      it('releasing twice gives back one place, not two', async () => {
        const f = fixture();
        await f.project({ quotas: { maxConcurrentRuns: 2 } });
        const a = await f.governance.admit(request());
        await f.governance.admit(request()); // b holds its place throughout
        a.release();
        a.release();
        assert.equal((await f.governance.usage(P)).quotas.maxConcurrentRuns.used, 1);
        await f.governance.admit(request());
        await refused(f.governance.admit(request()), 'QUOTA_EXCEEDED');
      });

      it("refuses an agent's run beyond the agent's own places while other agents of the project run", async () => {
        const f = fixture();
        const limited = { maxConcurrentRuns: 1 };
        const first = await f.governance.admit(request({ agentQuotas: limited }));
        await refused(f.governance.admit(request({ agentQuotas: limited })), 'QUOTA_EXCEEDED', {
          scope: 'agent',
          quota: 'maxConcurrentRuns',
          limit: 1,
        });
        await f.governance.admit(request({ agentId: 'agt_b' }));
        await f.governance.admit(request({ agentId: 'agt_b' }));
        first.release();
        await f.governance.admit(request({ agentQuotas: limited }));
      });

      it('the project’s places bind even when its agent allows more', async () => {
        const f = fixture({ defaults: { quotas: { maxConcurrentRuns: 1 } } });
        await f.governance.admit(request({ agentQuotas: { maxConcurrentRuns: 5 } }));
        await refused(
          f.governance.admit(request({ agentQuotas: { maxConcurrentRuns: 5 } })),
          'QUOTA_EXCEEDED',
          {
            scope: 'project',
          },
        );
      });
    });

    describe('governance: runs per minute', () => {
      it('refuses the project’s run beyond its rate with RATE_LIMITED and a Retry-After that is exactly when it frees', async () => {
        const f = fixture();
        await f.project({ quotas: { runsPerMinute: 2 } });
        (await f.governance.admit(request())).release();
        f.clock.advance(10_500);
        (await f.governance.admit(request({ agentId: 'agt_b' }))).release();
        f.clock.advance(9_500); // T0 + 20 s: the first run leaves the window at T0 + 60 s
        await refused(f.governance.admit(request()), 'RATE_LIMITED', {
          scope: 'project',
          quota: 'runsPerMinute',
          limit: 2,
          retryAfterSeconds: 40,
        });
        f.clock.advance(39_999);
        await refused(f.governance.admit(request()), 'RATE_LIMITED', { retryAfterSeconds: 1 });
        f.clock.advance(1);
        (await f.governance.admit(request())).release();
        // Full again; the second run (in the T0 + 10 s bucket) leaves at T0 + 70 s.
        await refused(f.governance.admit(request()), 'RATE_LIMITED', { retryAfterSeconds: 10 });
        assert.equal((await f.governance.usage(P)).quotas.runsPerMinute.used, 2);
      });

      it("refuses an agent's run beyond its own rate while the project's other agents go on", async () => {
        const f = fixture();
        const limited = { runsPerMinute: 1 };
        (await f.governance.admit(request({ agentQuotas: limited }))).release();
        f.clock.advance(500);
        await refused(f.governance.admit(request({ agentQuotas: limited })), 'RATE_LIMITED', {
          scope: 'agent',
          quota: 'runsPerMinute',
          limit: 1,
          retryAfterSeconds: 60, // 59.5 s, rounded up
        });
        (await f.governance.admit(request({ agentId: 'agt_b' }))).release();
        f.clock.advance(59_499);
        await refused(f.governance.admit(request({ agentQuotas: limited })), 'RATE_LIMITED');
        f.clock.advance(1);
        (await f.governance.admit(request({ agentQuotas: limited }))).release();
      });

      it('a refused run takes no place in the window', async () => {
        const f = fixture();
        await f.project({ quotas: { runsPerMinute: 1, maxConcurrentRuns: 1 } });
        const holding = await f.governance.admit(request());
        f.clock.advance(60_000);
        await refused(f.governance.admit(request()), 'QUOTA_EXCEEDED'); // refused for concurrency
        holding.release();
        (await f.governance.admit(request())).release();
      });

      it('a run refused by its budget takes no place in the runs-per-minute window', async () => {
        const f = fixture();
        await f.project({ quotas: { runsPerMinute: 1 }, budgets: { dailyUsd: 5 } });
        await f.spent(1, T0 - 1);
        // A $10 worst case never fits $5; a $5 one does not fit the $4 left today. Refused, nothing
        // recorded, so no run happened.
        await refused(f.governance.admit(request()), 'RUN_EXCEEDS_BUDGET');
        await refused(f.governance.admit(request({ maxTokens: 1 })), 'BUDGET_EXHAUSTED');
        assert.equal(
          (await f.governance.usage(P)).quotas.runsPerMinute.used,
          0,
          'a run the budget refused is not a run of the last minute',
        );
        // A $4 run fits and is the first run of this minute.
        (await f.governance.admit(request({ maxTokens: 1, promptBytes: () => 3 }))).release();
      });
    });

    describe('governance: tokens per minute', () => {
      it('counts the tokens settled by model calls and refuses new runs once the project reached its rate', async () => {
        const f = fixture();
        await f.project({ quotas: { tokensPerMinute: 100 } });
        const a = await f.governance.admit(request());
        const b = await f.governance.admit(request());
        f.clock.advance(2_000);
        a.settleStep(0, 60);
        (await f.governance.admit(request())).release(); // 60 of 100
        b.settleStep(0, 40);
        a.release();
        b.release();
        assert.equal((await f.governance.usage(P)).quotas.tokensPerMinute.used, 100);
        await refused(f.governance.admit(request()), 'RATE_LIMITED', {
          scope: 'project',
          quota: 'tokensPerMinute',
          limit: 100,
          retryAfterSeconds: 60,
        });
        f.clock.advance(59_999);
        await refused(f.governance.admit(request()), 'RATE_LIMITED', { retryAfterSeconds: 1 });
        f.clock.advance(1);
        (await f.governance.admit(request())).release();
        assert.equal((await f.governance.usage(P)).quotas.tokensPerMinute.used, 0);
      });
    });

    describe('governance: budgets', () => {
      it("reserves each admitted run's worst case and refuses the run whose worst case does not fit", async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 25 } });
        const a = await f.governance.admit(request());
        assert.equal(a.budgeted, true);
        assert.equal(a.maxOutputTokens, 6);
        assert.equal(a.worstCase(4), 10);
        await f.governance.admit(request());
        // $20 reserved by runs in flight: another $10 would make $30 > $25.
        const err = await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED', {
          project: P,
          window: 'daily',
          limitUsd: 25,
          spentUsd: 0,
          reservedUsd: 20,
          neededUsd: 10,
          resetsAt: '2026-01-16T00:00:00.000Z',
          retryAfterSeconds: 1, // reservations free up as runs finish
        });
        assert.match(err.message, /daily budget/);
        // A $5 worst case still fits, to the cent; after it nothing does, not even $2.
        await f.governance.admit(request({ maxTokens: 1 }));
        await refused(
          f.governance.admit(request({ promptBytes: () => 1, maxTokens: 1 })),
          'BUDGET_EXHAUSTED',
          {
            reservedUsd: 25,
            neededUsd: 2,
          },
        );
        const usage = await f.governance.usage(P);
        assert.deepEqual(usage.budgets.daily, {
          limitUsd: 25,
          spentUsd: 0,
          reservedUsd: 25,
          remainingUsd: 0,
          resetsAt: '2026-01-16T00:00:00.000Z',
        });
      });

      it('prices the worst case at the dearest model the call may fall back to', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 9 } });
        (await f.governance.admit(request({ models: [CHEAP] }))).release(); // $5
        await refused(f.governance.admit(request({ models: [CHEAP, DEAR] })), 'RUN_EXCEEDS_BUDGET', {
          neededUsd: 10,
          model: DEAR,
        });
      });

      it('caps output at defaultMaxTokens when the agent sets no maxTokens', async () => {
        const f = fixture({ defaultMaxTokens: 16 });
        await f.project({ budgets: { dailyUsd: 100 } });
        const a = await f.governance.admit(request({ maxTokens: undefined }));
        assert.equal(a.maxOutputTokens, 16);
        assert.equal((await f.governance.usage(P)).budgets.daily.reservedUsd, 20);
        await refused(
          f.governance.admit(request({ maxTokens: undefined, promptBytes: () => 65 })),
          'BUDGET_EXHAUSTED',
          { neededUsd: 81 },
        );
      });

      it('is exhausted when spent equals the limit exactly, until the window ends', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 30 } });
        await f.spent(30, T0 - 3_600_000);
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED', {
          spentUsd: 30,
          reservedUsd: 0,
          retryAfterSeconds: 12 * 3600, // noon to midnight
          resetsAt: '2026-01-16T00:00:00.000Z',
        });
      });

      it('an exhausted budget refuses even a run whose worst case is $0 (a model without a price)', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 30 } });
        await f.spent(30, T0 - 3_600_000);
        // Budgets.reserve applies "spent ≥ limit means exhausted" to a $0 reservation too, but
        // RunAdmission.reserveStep returns before asking it when the worst case adds nothing.
        await refused(f.governance.admit(request({ models: [FREE] })), 'BUDGET_EXHAUSTED', {
          spentUsd: 30,
          neededUsd: 0,
        });
      });

      it('admits a run whose worst case fills the budget exactly, then refuses the next', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 30 } });
        await f.spent(20, T0 - 1);
        const last = await f.governance.admit(request()); // 20 + 10 = 30: fits
        const small = () => request({ promptBytes: () => 1, maxTokens: 1 }); // $2
        await refused(f.governance.admit(small()), 'BUDGET_EXHAUSTED', {
          retryAfterSeconds: 1, // the reservation may yet be settled lower
        });
        last.settleStep(10, 10);
        last.release();
        await refused(f.governance.admit(small()), 'BUDGET_EXHAUSTED', {
          spentUsd: 30,
          retryAfterSeconds: 12 * 3600,
        });
      });

      it('settling moves the actual cost from reserved to spent; the rest stays with the run until it ends', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 25 } });
        const budget = async () =>
          (({ spentUsd, reservedUsd, remainingUsd }) => ({ spentUsd, reservedUsd, remainingUsd }))(
            (await f.governance.usage(P)).budgets.daily,
          );
        const a = await f.governance.admit(request());
        const b = await f.governance.admit(request());
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED');
        a.settleStep(2, 2);
        assert.deepEqual(await budget(), { spentUsd: 2, reservedUsd: 18, remainingUsd: 5 });
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED'); // a keeps $8 for its next call
        a.release();
        const c = await f.governance.admit(request()); // $2 spent + $20 reserved ≤ $25
        assert.deepEqual(await budget(), { spentUsd: 2, reservedUsd: 20, remainingUsd: 3 });
        b.release(); // never called its model: its reservation returns whole
        c.release();
        const daily = (await f.governance.usage(P)).budgets.daily;
        assert.equal(daily.spentUsd, 2);
        assert.equal(daily.reservedUsd, 0);
        assert.equal(daily.remainingUsd, 23);
      });

      it("tops a run's reservation up to each later call's worst case, never reserving twice", async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 25 } });
        const a = await f.governance.admit(request());
        await a.reserveStep(4); // the same call as admission reserved
        await a.reserveStep(2); // a smaller one
        assert.equal((await f.governance.usage(P)).budgets.daily.reservedUsd, 10);
        await a.reserveStep(14); // 14 + 6 = $20
        assert.equal((await f.governance.usage(P)).budgets.daily.reservedUsd, 20);
        a.settleStep(3, 3);
        await a.reserveStep(14);
        assert.equal((await f.governance.usage(P)).budgets.daily.reservedUsd, 20);
        await refused(a.reserveStep(17), 'BUDGET_EXHAUSTED', { spentUsd: 3, reservedUsd: 20, neededUsd: 3 });
        assert.equal(
          (await f.governance.usage(P)).budgets.daily.reservedUsd,
          20,
          'a refusal reserves nothing',
        );
        a.release();
        assert.equal((await f.governance.usage(P)).budgets.daily.reservedUsd, 0);
        await a.reserveStep(14); // after release: a no-op
        assert.equal((await f.governance.usage(P)).budgets.daily.reservedUsd, 0);
      });

      it('refuses a model call that could take the run past its per-run cap', async () => {
        const f = fixture();
        await f.project({ budgets: { perRunUsd: 15 } });
        const a = await f.governance.admit(request());
        assert.equal(a.budgeted, true, 'a per-run cap alone makes the run budgeted');
        a.settleStep(8, 8);
        // The next call's worst case is $10: $8 + $10 > $15.
        await refused(a.reserveStep(4), 'BUDGET_EXHAUSTED', {
          project: P,
          window: 'run',
          limitUsd: 15,
          spentUsd: 8,
          neededUsd: 10,
        });
        // Another run has its own cap.
        await f.governance.admit(request());
        assert.deepEqual(f.refusals, [`${P}:BUDGET_EXHAUSTED`]);
      });

      it('refuses at admission a run whose first call alone exceeds the per-run cap with RUN_EXCEEDS_BUDGET, and gives its place back', async () => {
        const f = fixture();
        await f.project({ quotas: { maxConcurrentRuns: 1 }, budgets: { perRunUsd: 9.99 } });
        const err = await refused(f.governance.admit(request()), 'RUN_EXCEEDS_BUDGET', {
          window: 'run',
          limitUsd: 9.99,
          neededUsd: 10,
        });
        assert.match(err.message, /more than the whole per-run cap \(perRunUsd\) of \$9\.99/);
        assert.equal(err.details['retryAfterSeconds'], undefined);
        assert.equal((await f.governance.usage(P)).quotas.maxConcurrentRuns.used, 0);
        (await f.governance.admit(request({ maxTokens: 5 }))).release(); // $9 fits
        assert.deepEqual(f.refusals, [`${P}:RUN_EXCEEDS_BUDGET`], 'one refusal is reported once');
      });

      it('refuses a run whose one call could cost more than the whole daily or monthly budget with RUN_EXCEEDS_BUDGET: 422, no Retry-After, naming maxTokens, the worst case and the budget', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 9, monthlyUsd: 100 } });
        await f.spent(5, T0 - 1);
        const err = await refused(f.governance.admit(request()), 'RUN_EXCEEDS_BUDGET', {
          project: P,
          window: 'daily',
          limitUsd: 9,
          neededUsd: 10,
          maxTokens: 6,
          maxTokensFrom: 'agent',
          promptBytes: 4,
          model: DEAR,
        });
        assert.equal(err.details['retryAfterSeconds'], undefined, 'waiting cannot help: no Retry-After');
        assert.equal(
          err.message,
          'a model call of this agent could cost up to $10.000000 (its maxTokens of 6 output tokens plus 4 bytes ' +
            'of prompt, priced at test/dear), more than the whole daily budget of $9 of project acme: waiting ' +
            "cannot help; lower the agent's maxTokens (or the prompt) or raise the limit",
        );
        await f.project({ budgets: { monthlyUsd: 9 } }, 'monthly');
        await refused(f.governance.admit(request({ project: 'monthly' })), 'RUN_EXCEEDS_BUDGET', {
          window: 'monthly',
          limitUsd: 9,
        });
        // A call that fits the whole budget but not the $4 left of it today is merely exhausted.
        await refused(f.governance.admit(request({ maxTokens: 1 })), 'BUDGET_EXHAUSTED', {
          window: 'daily',
          retryAfterSeconds: 12 * 3600,
        });
        assert.deepEqual(f.refusals, [
          `${P}:RUN_EXCEEDS_BUDGET`,
          'monthly:RUN_EXCEEDS_BUDGET',
          `${P}:BUDGET_EXHAUSTED`,
        ]);
      });

      it('says when the cap that does not fit is the governance default, since the agent sets no maxTokens', async () => {
        const f = fixture({ defaultMaxTokens: 100 });
        await f.project({ budgets: { dailyUsd: 50 } });
        const err = await refused(
          f.governance.admit(request({ maxTokens: undefined })),
          'RUN_EXCEEDS_BUDGET',
          {
            maxTokens: 100,
            maxTokensFrom: 'default',
            neededUsd: 104,
          },
        );
        assert.match(
          err.message,
          /the default cap of 100 output tokens \(governance\.defaultMaxTokens; the agent sets no maxTokens\)/,
        );
      });

      it('admits an agent with tools on one call when two calls could never fit the whole budget, and two when they can', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 15 } });
        const reserved = async () => (await f.governance.usage(P)).budgets.daily.reservedUsd;
        const one = await f.governance.admit(request({ hasTools: true })); // $10 each: $20 never fits $15
        assert.equal(await reserved(), 15, 'as much of the second call as the budget can ever hold');
        one.release();
        const two = await f.governance.admit(request({ hasTools: true, maxTokens: 2 })); // $6 each
        assert.equal(await reserved(), 12);
        assert.equal(await two.reserveStep(4), 6, "reserveStep answers the call's worst case");
        assert.equal(await reserved(), 12, 'already covered');
        two.release();
      });

      it('rolls the daily window over at UTC midnight; Retry-After points to it', async () => {
        const f = fixture({}, Date.UTC(2026, 0, 15, 23, 59, 30));
        await f.project({ budgets: { dailyUsd: 30 } });
        await f.spent(30, Date.UTC(2026, 0, 15, 8));
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED', {
          window: 'daily',
          retryAfterSeconds: 30,
          resetsAt: '2026-01-16T00:00:00.000Z',
        });
        f.clock.advance(29_999);
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED', { retryAfterSeconds: 1 });
        f.clock.advance(1);
        const a = await f.governance.admit(request());
        assert.deepEqual((await f.governance.usage(P)).budgets.daily, {
          limitUsd: 30,
          spentUsd: 0,
          reservedUsd: 10,
          remainingUsd: 20,
          resetsAt: '2026-01-17T00:00:00.000Z',
        });
        a.release();
      });

      it("counts a run's cost in the day it was created, as the store does, even when it settles after midnight", async () => {
        const f = fixture({}, Date.UTC(2026, 0, 15, 23, 59, 50));
        await f.project({ budgets: { dailyUsd: 10 } });
        const before = await f.governance.admit(request());
        f.clock.advance(20_000); // 00:00:10 on the 16th
        const after = await f.governance.admit(request()); // a new day: $10 is free again
        before.settleStep(10, 10);
        before.release();
        const usage = await f.governance.usage(P);
        assert.equal(usage.budgets.daily.spentUsd, 0, 'yesterday’s run does not spend today’s budget');
        assert.equal(usage.budgets.daily.reservedUsd, 10);
        assert.equal(usage.budgets.monthly.spentUsd, 10, 'but it spends this month’s');
        after.release();
      });

      it('loads spending from the run store: runs already stored count in their windows', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 100, monthlyUsd: 50 } });
        await f.spent(5, Date.UTC(2026, 0, 15, 0)); // today, from midnight on
        await f.spent(40, Date.UTC(2026, 0, 14, 23, 59, 59)); // yesterday, this month
        await f.spent(1_000, Date.UTC(2025, 11, 31, 23, 59, 59)); // last month
        await f.spent(7, T0, 'other'); // another project
        const usage = await f.governance.usage(P);
        assert.equal(usage.budgets.daily.spentUsd, 5);
        assert.equal(usage.budgets.monthly.spentUsd, 45);
        assert.equal(usage.budgets.monthly.remainingUsd, 5);
        // $45 + $10 > $50: the monthly budget refuses until February.
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED', {
          window: 'monthly',
          limitUsd: 50,
          spentUsd: 45,
          resetsAt: '2026-02-01T00:00:00.000Z',
          retryAfterSeconds: (Date.UTC(2026, 1, 1) - T0) / 1000,
        });
        (await f.governance.admit(request({ maxTokens: 1 }))).release(); // $5 fits exactly
      });

      it('a project without budgets reserves nothing and sends no cap of its own', async () => {
        const f = fixture();
        const a = await f.governance.admit(request({ maxTokens: undefined }));
        assert.equal(a.budgeted, false);
        await a.reserveStep(1_000_000);
        const usage = await f.governance.usage(P);
        assert.equal(usage.budgets.daily.reservedUsd, 0);
        assert.equal(usage.budgets.daily.limitUsd, null);
        assert.equal(usage.budgets.daily.remainingUsd, null);
        a.settleStep(3, 3);
        assert.equal((await f.governance.usage(P)).budgets.daily.spentUsd, 3, 'spending is still counted');
      });
    });

    describe('governance: project limits over defaults', () => {
      it("applies the project's own value field by field and the defaults for the rest", async () => {
        const f = fixture({
          defaults: {
            quotas: { maxConcurrentRuns: 1, runsPerMinute: 100 },
            budgets: { dailyUsd: 1000, perRunUsd: 50 },
          },
        });
        await f.project({ quotas: { maxConcurrentRuns: 3 }, budgets: { dailyUsd: 25 } });
        assert.deepEqual(await f.governance.limits(P), {
          quotas: { maxConcurrentRuns: 3, runsPerMinute: 100 },
          budgets: { dailyUsd: 25, perRunUsd: 50 },
        });
        assert.deepEqual(await f.governance.limits('other'), {
          quotas: { maxConcurrentRuns: 1, runsPerMinute: 100 },
          budgets: { dailyUsd: 1000, perRunUsd: 50 },
        });
        await f.governance.admit(request());
        await f.governance.admit(request()); // a second place: the project's own 3
        await refused(f.governance.admit(request()), 'BUDGET_EXHAUSTED', { limitUsd: 25 }); // its own $25
        await f.governance.admit(request({ project: 'other' }));
        await refused(f.governance.admit(request({ project: 'other' })), 'QUOTA_EXCEEDED', { limit: 1 });
      });

      it('caches limits for limitsCacheMs; invalidate makes a change visible at once', async () => {
        const f = fixture();
        await f.project({ quotas: { maxConcurrentRuns: 1 } });
        await f.governance.admit(request());
        await f.projects.setLimits(P, { quotas: { maxConcurrentRuns: 2 } });
        await refused(f.governance.admit(request()), 'QUOTA_EXCEEDED', { limit: 1 }); // still cached
        f.governance.invalidate(P);
        await f.governance.admit(request());
        await f.projects.setLimits(P, { quotas: { maxConcurrentRuns: 3 } });
        f.clock.advance(4_999);
        await refused(f.governance.admit(request()), 'QUOTA_EXCEEDED', { limit: 2 });
        f.clock.advance(1);
        await f.governance.admit(request());
      });

      it('a lowered budget applies to what the window already spent', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 100 } });
        const a = await f.governance.admit(request());
        a.settleStep(10, 10);
        a.release();
        await f.projects.setLimits(P, { budgets: { dailyUsd: 10 } });
        f.governance.invalidate(P);
        await refused(
          f.governance.admit(request({ promptBytes: () => 1, maxTokens: 1 })),
          'BUDGET_EXHAUSTED',
          {
            spentUsd: 10,
          },
        );
      });
    });

    describe('governance: usage and samples', () => {
      it('reports every limit with what is used of it now', async () => {
        const f = fixture({ defaults: { quotas: { maxAgents: 10 } } });
        await f.project({
          quotas: { maxConcurrentRuns: 5, runsPerMinute: 50, tokensPerMinute: 1000 },
          budgets: { dailyUsd: 100, perRunUsd: 20 },
        });
        f.agents.count = 3;
        await f.spent(7, T0 - 1000);
        const a = await f.governance.admit(request());
        const b = await f.governance.admit(request({ agentId: 'agt_b' }));
        (await f.governance.admit(request())).release();
        a.settleStep(4, 40);
        assert.deepEqual(await f.governance.usage(P), {
          project: P,
          quotas: {
            maxAgents: { limit: 10, used: 3 },
            maxConcurrentRuns: { limit: 5, used: 2 },
            runsPerMinute: { limit: 50, used: 3 },
            tokensPerMinute: { limit: 1000, used: 40 },
          },
          budgets: {
            daily: {
              limitUsd: 100,
              spentUsd: 11,
              reservedUsd: 16,
              remainingUsd: 73,
              resetsAt: '2026-01-16T00:00:00.000Z',
            },
            monthly: {
              limitUsd: null,
              spentUsd: 11,
              reservedUsd: 16,
              remainingUsd: null,
              resetsAt: '2026-02-01T00:00:00.000Z',
            },
            perRunUsd: 20,
          },
        });
        assert.deepEqual(
          f.governance.samples().find((s) => s.project === P),
          {
            project: P,
            running: 2,
            daily: { spent: 11, remaining: 73 },
            monthly: { spent: 11, remaining: null },
          },
        );
        a.release();
        b.release();
        assert.equal(f.governance.samples().find((s) => s.project === P)?.running, 0);
      });

      it('reports an unknown project as unlimited and unused', async () => {
        const f = fixture();
        const usage = await f.governance.usage('nobody');
        assert.deepEqual(usage.quotas.maxConcurrentRuns, { limit: null, used: 0 });
        assert.deepEqual(usage.budgets.daily, {
          limitUsd: null,
          spentUsd: 0,
          reservedUsd: 0,
          remainingUsd: null,
          resetsAt: '2026-01-16T00:00:00.000Z',
        });
        assert.equal(usage.budgets.perRunUsd, null);
      });
    });

    describe('governance: a deleted project', () => {
      it('forgets its counters and budget windows, so the id created again starts from nothing', async () => {
        const f = fixture();
        await f.project({ quotas: { runsPerMinute: 50 }, budgets: { dailyUsd: 100 } });
        await f.spent(7, T0 - 1000);
        const a = await f.governance.admit(request());
        a.settleStep(4, 40);
        a.release();
        const before = await f.governance.usage(P);
        assert.equal(before.budgets.daily.spentUsd, 11);
        assert.equal(before.quotas.runsPerMinute.used, 1);

        // The project's runs go with it from the store; the process forgets what it kept in memory.
        await f.runs.deleteProjectRuns(P, 1000);
        await f.projects.deleteProject(P);
        f.governance.forget(P);
        await f.project({ budgets: { dailyUsd: 100 } });

        const after = await f.governance.usage(P);
        assert.equal(after.budgets.daily.spentUsd, 0, 'the old spend is not inherited');
        assert.equal(after.quotas.runsPerMinute.used, 0);
        assert.equal(after.quotas.tokensPerMinute.used, 0);
      });
    });

    describe('governance: admission without waiting (admitNow)', () => {
      it(
        kind === 'local'
          ? 'admits at once once the limits are cached and no budget applies, holding a place as admit does; refuses at once'
          : 'always leaves the decision to admit: a shared ledger answers later',
        async () => {
          const f = fixture();
          await f.project({ quotas: { maxConcurrentRuns: 2 } });
          const { promptBytes: _measured, ...now } = request();
          assert.equal(f.governance.admitNow(now), undefined, 'limits not read yet');
          const first = await f.governance.admit(request());
          const second = f.governance.admitNow(now);
          if (kind !== 'local') {
            assert.equal(second, undefined);
            assert.notEqual(f.governance.flush(), undefined, 'a shared ledger is flushed');
            first.release();
            return;
          }
          assert.ok(second !== undefined);
          assert.equal(second.budgeted, false);
          assert.equal((await f.governance.usage(P)).quotas.maxConcurrentRuns.used, 2);
          assert.throws(
            () => f.governance.admitNow(now),
            (err: unknown) => isAgentPoolError(err, 'QUOTA_EXCEEDED'),
          );
          assert.deepEqual(f.refusals, [`${P}:QUOTA_EXCEEDED`]);
          first.release();
          second.release();
          assert.equal((await f.governance.usage(P)).quotas.maxConcurrentRuns.used, 0);
          assert.equal(f.governance.flush(), undefined, 'nothing to wait for');
        },
      );

      it('leaves a budgeted project to admit, which measures and reserves the first call', async () => {
        const f = fixture();
        await f.project({ budgets: { dailyUsd: 100 } });
        const { promptBytes: _measured, ...now } = request();
        (await f.governance.admit(request())).release(); // the limits are cached now
        assert.equal(f.governance.admitNow(now), undefined);
      });
    });

    describe('governance: agents (maxAgents)', () => {
      it('refuses a new agent once the project holds maxAgents, and asks nothing without a limit', async () => {
        const f = fixture();
        const create = () => Promise.resolve('created');
        assert.equal(await f.governance.admitAgent(P, create), 'created');
        assert.equal(f.agents.asked, 0, 'no limit, no count');
        await f.project({ quotas: { maxAgents: 2 } });
        f.governance.invalidate(P);
        f.agents.count = 1;
        assert.equal(await f.governance.admitAgent(P, create), 'created');
        f.agents.count = 2;
        let created = 0;
        const counted = () => Promise.resolve(++created);
        await refused(f.governance.admitAgent(P, counted), 'QUOTA_EXCEEDED', {
          scope: 'project',
          quota: 'maxAgents',
          limit: 2,
          used: 2,
        });
        assert.equal(created, 0, 'a refused create is not run');
        assert.deepEqual(f.refusals, [`${P}:QUOTA_EXCEEDED`]);
      });
    });
  });
}
