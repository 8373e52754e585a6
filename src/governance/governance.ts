/**
 * Governance: every run is admitted by its project's quotas and budgets before anything is
 * recorded, and settles what it really cost as it goes. Refusals are `QUOTA_EXCEEDED`,
 * `RATE_LIMITED` or `BUDGET_EXHAUSTED` (429 with Retry-After), never a 500, and
 * `RUN_EXCEEDS_BUDGET` (422, no Retry-After) for a run no wait could make fit.
 *
 * Budgets hold with concurrency because money is reserved before it can be spent: admission
 * reserves the worst case of the run's first model call as it will really be sent (the thread's
 * history, the input and the tool definitions; the run manager measures it), and before every
 * model call the run tops its reservation up to that call's worst case — prompt bytes as input
 * tokens (a byte-level tokenizer never makes more tokens than bytes) plus the output cap, priced
 * at the dearest model the call may fall back to. For an agent with tools admission reserves two
 * such calls when they fit in the whole limit, since a call that asks for a tool needs a
 * follow-up. After a call the reservation is settled to its cost, at most its worst case; the rest
 * stays with the run for its next call. Each check-and-take is atomic in the governance ledger
 * (synchronous in one process, one script in Redis for a cluster), so 200 runs racing for the last
 * cents cannot overspend. The per-call side lives in run-admission.ts; the state in the ledger
 * (coordination/governance-ledger.ts: local-ledger.ts here, or the Redis adapter).
 */
import {
  type GovernanceLedger,
  type RunHold,
  type SpendSource,
  windowBounds,
  type WindowState,
} from '../coordination/governance-ledger.ts';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError } from '../core/errors.ts';
import { roundUsd } from '../core/money.ts';
import type { PriceTable } from '../models/pricing.ts';
import type { ProjectLimits, ProjectStore } from '../store/project-ports.ts';
import {
  type GovernanceOptions,
  mergeLimits,
  resolveGovernanceOptions,
  type ResolvedGovernanceOptions,
} from './limits.ts';
import { LocalGovernanceLedger } from './local-ledger.ts';
import { type AdmissionContext, RunAdmission } from './run-admission.ts';

export { RunAdmission } from './run-admission.ts';

/** Per-agent overrides of the project's run quotas (from the agent's definition). */
export interface AgentQuotas {
  readonly maxConcurrentRuns?: number | undefined;
  readonly runsPerMinute?: number | undefined;
}

/** What admission needs to know about a run. */
export interface AdmitRequest {
  readonly project: string;
  readonly agentId: string;
  readonly agentQuotas?: AgentQuotas | undefined;
  /** The models a model call may be answered by: the agent's model, then its fallbacks. */
  readonly models: readonly string[];
  /** The agent's output cap per model call, if it sets one. */
  readonly maxTokens?: number | undefined;
  /**
   * UTF-8 bytes the first model call will send (messages and tool definitions as JSON): for a
   * thread run, its history too. Called only when a budget applies, after the quotas admitted the
   * run. The runner tops up before the call if it sends more (the thread grew meanwhile).
   */
  readonly promptBytes: () => number | Promise<number>;
  /**
   * True when the agent has tools: a call that asks for a tool always needs a follow-up call, so
   * admission reserves two calls' worst case (when two fit in the whole limit) and an admitted run
   * can finish its tool round.
   */
  readonly hasTools?: boolean | undefined;
}

/** Told of refusals, for metrics. */
export interface GovernanceObserver {
  refused(project: string, code: string): void;
}

/** What the pool hands governance. */
export interface GovernanceDeps {
  projects: Pick<ProjectStore, 'getProject'>;
  runs: SpendSource;
  prices: PriceTable;
  clock: Clock;
  /** Agents the project holds, for `maxAgents`. */
  countAgents(project: string): Promise<number>;
  observer?: GovernanceObserver;
  /**
   * Where runs in flight, per-minute counts and budget windows are kept: a shared ledger (Redis)
   * counts them once for every pool of a cluster. @default this process only (LocalGovernanceLedger)
   */
  ledger?: GovernanceLedger;
}

/** One limit and its use; `limit` null means unlimited. */
export interface QuotaUsage {
  readonly limit: number | null;
  readonly used: number;
}

/** One budget window and its use. */
export interface BudgetUsage {
  readonly limitUsd: number | null;
  readonly spentUsd: number;
  /** Held by runs in flight. */
  readonly reservedUsd: number;
  /** limit − spent − reserved, never below 0; null when unlimited. */
  readonly remainingUsd: number | null;
  readonly resetsAt: string;
}

/** A project's limits and what it uses of them now. */
export interface ProjectUsage {
  readonly project: string;
  readonly quotas: {
    readonly maxAgents: QuotaUsage;
    readonly maxConcurrentRuns: QuotaUsage;
    readonly runsPerMinute: QuotaUsage;
    readonly tokensPerMinute: QuotaUsage;
  };
  readonly budgets: {
    readonly daily: BudgetUsage;
    readonly monthly: BudgetUsage;
    readonly perRunUsd: number | null;
  };
}

/** The per-project numbers `/metrics` exports. */
export interface ProjectGovernanceSample {
  readonly project: string;
  readonly running: number;
  readonly daily?: { spent: number; remaining: number | null };
  readonly monthly?: { spent: number; remaining: number | null };
}

const MAX_CACHED_LIMITS = 100_000;

/** Admits runs and agents by quotas and budgets; one per pool. */
export class Governance {
  readonly options: ResolvedGovernanceOptions;
  readonly #deps: GovernanceDeps;
  readonly #ledger: GovernanceLedger;
  /** The ledger is this process's own: it takes and gives back at once. */
  readonly #local: boolean;
  readonly #limits = new Map<string, { limits: ProjectLimits; expires: number }>();
  readonly #ctx: AdmissionContext;

  constructor(deps: GovernanceDeps, options?: GovernanceOptions) {
    this.options = resolveGovernanceOptions(options);
    this.#deps = deps;
    this.#ledger = deps.ledger ?? new LocalGovernanceLedger();
    this.#local = this.#ledger instanceof LocalGovernanceLedger;
    this.#ctx = {
      ledger: this.#ledger,
      spend: deps.runs,
      prices: deps.prices,
      clock: deps.clock,
      defaultMaxTokens: this.options.defaultMaxTokens,
      refused: (project, err) => this.#refused(project, err),
    };
  }

  /** The project's limits in force: its own over the defaults (cached for `limitsCacheMs`). */
  async limits(project: string): Promise<ProjectLimits> {
    const now = this.#deps.clock.now();
    const cached = this.#cachedLimits(project, now);
    if (cached !== undefined) return cached;
    const record = await this.#deps.projects.getProject(project);
    const limits = mergeLimits(this.options.defaults, record?.limits ?? {});
    if (this.#limits.size >= MAX_CACHED_LIMITS) this.#limits.clear();
    this.#limits.set(project, { limits, expires: now + this.options.limitsCacheMs });
    return limits;
  }

  /** The project's limits when cached and fresh, without waiting; undefined otherwise (then {@link limits}). */
  cachedLimits(project: string): ProjectLimits | undefined {
    return this.#cachedLimits(project, this.#deps.clock.now());
  }

  #cachedLimits(project: string, now: number): ProjectLimits | undefined {
    const cached = this.#limits.get(project);
    return cached !== undefined && cached.expires > now ? cached.limits : undefined;
  }

  /** Forgets cached limits of a project, after they were changed. */
  invalidate(project: string): void {
    this.#limits.delete(project);
  }

  /** Forgets everything kept of a deleted project (limits, counters, budget windows). */
  forget(project: string): void {
    this.invalidate(project);
    this.#ledger.forget(project);
  }

  /**
   * Resolves once what runs gave back or settled so far reached the ledger (a shared one applies
   * it later); undefined when there is nothing to wait for (this process's own ledger applies
   * everything at once).
   */
  flush(): Promise<void> | undefined {
    return this.#local ? undefined : this.#ledger.flush();
  }

  /**
   * Admits a run or throws `QUOTA_EXCEEDED`, `RATE_LIMITED`, `BUDGET_EXHAUSTED` or
   * `RUN_EXCEEDS_BUDGET`. The returned admission holds a run place and the first call's
   * reservation until {@link RunAdmission.release}.
   */
  async admit(request: AdmitRequest): Promise<RunAdmission> {
    const { project } = request;
    const limits = await this.limits(project);
    const budgeted = isBudgeted(limits);
    if (budgeted) {
      const preparing = this.#ledger.prepare(project, this.#deps.clock.now(), this.#deps.runs);
      if (preparing !== undefined) await preparing;
    }
    const now = this.#deps.clock.now();
    const taking = this.#take(request, limits, now);
    const hold = taking instanceof Promise ? await taking : taking;
    const admission = new RunAdmission(this.#ctx, request, hold, limits, budgeted, now);
    if (!budgeted) return admission;
    try {
      await admission.reserveStep(await request.promptBytes(), request.hasTools === true ? 2 : 1);
    } catch (err) {
      admission.withdraw();
      throw err;
    }
    return admission;
  }

  /**
   * {@link admit} without waiting, where it needs no wait: the project's limits are cached, no
   * budget applies (so nothing is reserved and `promptBytes` is never asked), and the ledger is
   * this process's own. Throws admit's quota refusals; undefined when admit must decide.
   */
  admitNow(request: Omit<AdmitRequest, 'promptBytes'>): RunAdmission | undefined {
    if (!this.#local) return undefined;
    const now = this.#deps.clock.now();
    const limits = this.#cachedLimits(request.project, now);
    if (limits === undefined || isBudgeted(limits)) return undefined;
    const hold = this.#take(request, limits, now) as RunHold; // a local ledger takes at once
    return new RunAdmission(this.#ctx, request, hold, limits, false, now);
  }

  /** Takes the run's place in the ledger; a refusal is counted. */
  #take(
    request: Omit<AdmitRequest, 'promptBytes'>,
    limits: ProjectLimits,
    now: number,
  ): RunHold | Promise<RunHold> {
    const { project } = request;
    const refused = (err: unknown): never => {
      this.#refused(project, err);
      throw err;
    };
    try {
      const quotas = { project: limits.quotas ?? NO_QUOTAS, agent: definedQuotas(request.agentQuotas) };
      const taking = this.#ledger.take(project, request.agentId, quotas, now);
      return taking instanceof Promise ? taking.catch(refused) : taking;
    } catch (err) {
      return refused(err);
    }
  }

  /**
   * Runs `create` when the project holds fewer than its `maxAgents` (counted and created as one
   * exclusive section of the ledger, so nodes sharing it cannot both take the last place); throws
   * `QUOTA_EXCEEDED` otherwise.
   */
  async admitAgent<T>(project: string, create: () => Promise<T>): Promise<T> {
    const max = (await this.limits(project)).quotas?.maxAgents;
    if (max === undefined) return create();
    return this.#ledger.exclusive(project, async () => {
      await this.#checkAgents(project, max);
      return create();
    });
  }

  async #checkAgents(project: string, max: number): Promise<void> {
    const count = await this.#deps.countAgents(project);
    if (count < max) return;
    const err = new AgentPoolError(
      'QUOTA_EXCEEDED',
      `project ${project} already holds ${count} agents (maxAgents ${max}); delete one or raise the quota`,
      { scope: 'project', quota: 'maxAgents', limit: max, used: count },
    );
    this.#refused(project, err);
    throw err;
  }

  /** The project's limits and its use of them now. */
  async usage(project: string): Promise<ProjectUsage> {
    const limits = await this.limits(project);
    await this.#ledger.prepare(project, this.#deps.clock.now(), this.#deps.runs);
    const now = this.#deps.clock.now();
    const quotas = limits.quotas ?? {};
    const budgets = limits.budgets ?? {};
    const [used, windows] = await Promise.all([
      this.#ledger.usage(project, now),
      this.#ledger.windows(project, now, this.#deps.runs),
    ]);
    const quota = (limit: number | undefined, n: number): QuotaUsage => ({ limit: limit ?? null, used: n });
    return {
      project,
      quotas: {
        maxAgents: quota(quotas.maxAgents, await this.#deps.countAgents(project)),
        maxConcurrentRuns: quota(quotas.maxConcurrentRuns, used.running),
        runsPerMinute: quota(quotas.runsPerMinute, used.runsLastMinute),
        tokensPerMinute: quota(quotas.tokensPerMinute, used.tokensLastMinute),
      },
      budgets: {
        daily: budgetUsage(windows.daily, budgets.dailyUsd, 'daily', now),
        monthly: budgetUsage(windows.monthly, budgets.monthlyUsd, 'monthly', now),
        perRunUsd: budgets.perRunUsd ?? null,
      },
    };
  }

  /** Runs in flight and loaded budget windows per project, read by `/metrics` at scrape time. */
  samples(): ProjectGovernanceSample[] {
    const now = this.#deps.clock.now();
    return this.#ledger.samples(now).map((seen) => {
      const { project } = seen;
      const limits = this.#limits.get(project)?.limits.budgets ?? {};
      const sample = (w: WindowState | undefined, limit: number | undefined) =>
        w === undefined || now >= w.end
          ? undefined
          : {
              spent: w.spent,
              remaining: limit === undefined ? null : Math.max(0, limit - w.spent - w.reserved),
            };
      const daily = sample(seen.daily, limits.dailyUsd);
      const monthly = sample(seen.monthly, limits.monthlyUsd);
      return {
        project,
        running: seen.running,
        ...(daily && { daily }),
        ...(monthly && { monthly }),
      };
    });
  }

  #refused(project: string, err: unknown): void {
    if (err instanceof AgentPoolError) this.#deps.observer?.refused(project, err.code);
  }
}

const NO_QUOTAS: { readonly maxConcurrentRuns?: number; readonly runsPerMinute?: number } = Object.freeze({});

/** Whether a budget or per-run cap applies, so model calls must reserve their worst case. */
function isBudgeted(limits: ProjectLimits): boolean {
  const budgets = limits.budgets;
  return (
    budgets !== undefined &&
    (budgets.dailyUsd !== undefined || budgets.monthlyUsd !== undefined || budgets.perRunUsd !== undefined)
  );
}

function definedQuotas(q: AgentQuotas | undefined): { maxConcurrentRuns?: number; runsPerMinute?: number } {
  if (q === undefined || (q.maxConcurrentRuns === undefined && q.runsPerMinute === undefined))
    return NO_QUOTAS;
  return {
    ...(q.maxConcurrentRuns !== undefined && { maxConcurrentRuns: q.maxConcurrentRuns }),
    ...(q.runsPerMinute !== undefined && { runsPerMinute: q.runsPerMinute }),
  };
}

function budgetUsage(
  w: WindowState | undefined,
  limit: number | undefined,
  kind: 'daily' | 'monthly',
  now: number,
): BudgetUsage {
  const spent = w?.spent ?? 0;
  const reserved = w?.reserved ?? 0;
  // The windows sum many amounts; the report rounds them to a nano-dollar like every USD amount.
  return {
    limitUsd: limit ?? null,
    spentUsd: roundUsd(spent),
    reservedUsd: roundUsd(reserved),
    remainingUsd: limit === undefined ? null : roundUsd(Math.max(0, limit - spent - reserved)),
    resetsAt: new Date(w?.end ?? windowBounds(kind, now).end).toISOString(),
  };
}
