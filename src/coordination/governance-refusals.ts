/**
 * The refusals of the governance ledger, built in one place so every adapter (local, Redis)
 * answers a refused run with the same code, message and details: `QUOTA_EXCEEDED` for places,
 * `RATE_LIMITED` for per-minute windows, `BUDGET_EXHAUSTED` for budget windows, each with the
 * `retryAfterSeconds` the server turns into `Retry-After`.
 */
import { AgentPoolError } from '../core/errors.ts';
import { roundUsd } from '../core/money.ts';
import type { WindowState } from './governance-ledger.ts';

/** `QUOTA_EXCEEDED`: the project or agent already has `limit` runs in flight. */
export function concurrencyRefusal(scope: 'project' | 'agent', limit: number): AgentPoolError {
  return new AgentPoolError(
    'QUOTA_EXCEEDED',
    `the ${scope} already has ${limit} run${limit === 1 ? '' : 's'} in flight (maxConcurrentRuns)`,
    { scope, quota: 'maxConcurrentRuns', limit, retryAfterSeconds: 1 },
  );
}

/** `RATE_LIMITED`: a per-minute quota is reached; it frees in `waitMs`. */
export function rateRefusal(
  scope: 'project' | 'agent',
  quota: 'runsPerMinute' | 'tokensPerMinute',
  limit: number,
  waitMs: number,
): AgentPoolError {
  return new AgentPoolError('RATE_LIMITED', `the ${scope} reached its ${quota} quota of ${limit}`, {
    scope,
    quota,
    limit,
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
  });
}

/** `BUDGET_EXHAUSTED`: what is left of window `w` cannot cover `usd` now. */
export function budgetRefusal(
  project: string,
  w: WindowState,
  limit: number,
  usd: number,
  now: number,
): AgentPoolError {
  // Spent alone blocks until the window ends; in-flight reservations free up as runs finish.
  const untilReset = w.spent >= limit || w.spent + usd > limit;
  const retryAfterSeconds = untilReset ? Math.ceil((w.end - now) / 1000) : 1;
  return new AgentPoolError(
    'BUDGET_EXHAUSTED',
    `the ${w.kind} budget of project ${project} ($${limit}) is exhausted: $${usdText(w.spent)} spent, ` +
      `$${usdText(w.reserved)} reserved by runs in flight, $${usdText(usd)} needed`,
    {
      project,
      window: w.kind,
      limitUsd: limit,
      spentUsd: roundUsd(w.spent),
      reservedUsd: roundUsd(w.reserved),
      neededUsd: roundUsd(usd),
      resetsAt: new Date(w.end).toISOString(),
      retryAfterSeconds: Math.max(1, retryAfterSeconds),
    },
  );
}

/** True when a window with `limit` cannot take `usd` more: the one boundary rule (spent ≥ limit is exhausted). */
export function overBudget(w: { spent: number; reserved: number }, limit: number, usd: number): boolean {
  const committed = w.spent + w.reserved;
  return committed >= limit || committed + usd > limit;
}

function usdText(usd: number): string {
  return usd.toFixed(6).replace(/\.?0+$/, '');
}
