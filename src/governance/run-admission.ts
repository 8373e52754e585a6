/**
 * One admitted run's hold on its project: a run place, and money reserved for its next model
 * call. The runner calls {@link RunAdmission.reserveStep} before each model call and
 * {@link RunAdmission.settleStep} after it; the run manager calls {@link RunAdmission.release}
 * when the run ends.
 *
 * A call's worst case is the bytes it sends counted as input tokens (a byte-level tokenizer never
 * makes more tokens than bytes) plus its output cap, priced at the dearest model of the route.
 * Two refusals differ by whether waiting can help: `BUDGET_EXHAUSTED` (429, Retry-After) when
 * what is left now cannot cover the call, `RUN_EXCEEDS_BUDGET` (422, no Retry-After) when the
 * call's worst case alone is more than a whole limit, so no reset or finished run makes it fit.
 */
import type {
  GovernanceLedger,
  HeldWindows,
  RunHold,
  SpendSource,
} from '../coordination/governance-ledger.ts';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError } from '../core/errors.ts';
import { roundUsd } from '../core/money.ts';
import type { PriceTable } from '../models/pricing.ts';
import type { BudgetLimits, ProjectLimits } from '../store/project-ports.ts';

/** What an admission works with: the pool's ledger (counters and accounts), spend source and prices. */
export interface AdmissionContext {
  readonly ledger: GovernanceLedger;
  readonly spend: SpendSource;
  readonly prices: PriceTable;
  readonly clock: Clock;
  readonly defaultMaxTokens: number;
  refused(project: string, err: unknown): void;
}

/** What an admission knows of its run (a subset of the admit request). */
export interface AdmittedRun {
  readonly project: string;
  readonly agentId: string;
  /** The models a model call may be answered by: the agent's model, then its fallbacks. */
  readonly models: readonly string[];
  /** The agent's output cap per model call, if it sets one. */
  readonly maxTokens?: number | undefined;
}

/** One admitted run's hold on its project's quotas and budgets. */
export class RunAdmission {
  /** True when a budget or per-run cap applies, so model calls must reserve their worst case. */
  readonly budgeted: boolean;
  /** The output cap per model call when a budget applies: the agent's, else the governance default. */
  readonly maxOutputTokens: number;
  readonly #ctx: AdmissionContext;
  readonly #run: AdmittedRun;
  /** The run's place in the ledger, which its reservations are made for. */
  readonly #hold: RunHold;
  readonly #limits: ProjectLimits;
  readonly #createdAt: number;
  /** Reservations not yet settled, with the windows each was taken in. */
  #holds: { windows: HeldWindows; usd: number }[] = [];
  #spent = 0;
  #released = false;

  constructor(
    ctx: AdmissionContext,
    run: AdmittedRun,
    hold: RunHold,
    limits: ProjectLimits,
    budgeted: boolean,
    now: number,
  ) {
    this.#ctx = ctx;
    this.#run = run;
    this.#hold = hold;
    this.#limits = limits;
    this.budgeted = budgeted;
    this.maxOutputTokens = run.maxTokens ?? ctx.defaultMaxTokens;
    this.#createdAt = now;
  }

  /** The most a model call sending `promptBytes` can cost, on the dearest model it may reach. */
  worstCase(promptBytes: number): number {
    return this.#dearest(promptBytes).usd;
  }

  /**
   * Tops the reservation up to the worst case of `calls` model calls sending `promptBytes` and
   * returns the worst case of one such call: the most the runner may charge for it. Throws
   * `RUN_EXCEEDS_BUDGET` when one call's worst case is more than a whole limit (daily, monthly or
   * per-run), `BUDGET_EXHAUSTED` when what is left cannot cover it now. Reserves nothing when no
   * budget applies or the run was released.
   */
  async reserveStep(promptBytes: number, calls = 1): Promise<number> {
    const dearest = this.#dearest(promptBytes);
    const one = dearest.usd;
    if (!this.budgeted || this.#released) return one;
    const { project } = this.#run;
    const limits: BudgetLimits = this.#limits.budgets ?? {};
    this.#fits(dearest, promptBytes, limits);
    const cap = limits.perRunUsd;
    if (cap !== undefined && this.#spent + one > cap) {
      const err = new AgentPoolError(
        'BUDGET_EXHAUSTED',
        `the run's next model call could cost $${one.toFixed(6)}, more than is left of its per-run cap of $${cap}`,
        { project, window: 'run', limitUsd: cap, spentUsd: roundUsd(this.#spent), neededUsd: one },
      );
      this.#ctx.refused(project, err);
      throw err;
    }
    // Calls reserved ahead never take the run past its cap, nor ask for more than a whole window
    // holds (one call fits, checked above): such a run is admitted for the calls that can fit.
    let target = one * calls;
    if (limits.dailyUsd !== undefined) target = Math.min(target, limits.dailyUsd);
    if (limits.monthlyUsd !== undefined) target = Math.min(target, limits.monthlyUsd);
    if (cap !== undefined) target = Math.min(target, cap - this.#spent);
    // Nothing more to reserve while a reservation covers the call; with nothing reserved (even for
    // a free model) the windows are still asked, so an exhausted budget refuses every call.
    const reserved = this.#reserved();
    const extra = Math.max(0, target - reserved);
    if (extra === 0 && reserved > 0) return one;
    const { ledger, spend, clock } = this.#ctx;
    const preparing = ledger.prepare(project, clock.now(), spend);
    if (preparing !== undefined) await preparing;
    try {
      const reserving = ledger.reserve(this.#hold, limits, extra, clock.now(), spend);
      const windows = reserving instanceof Promise ? await reserving : reserving;
      // Released while a shared ledger answered (the run ended): give it straight back.
      if (this.#released) ledger.unreserve(this.#hold, windows, extra);
      else this.#holds.push({ windows, usd: extra });
    } catch (err) {
      this.#ctx.refused(project, err);
      throw err;
    }
    return one;
  }

  /**
   * Settles the model call just made: its cost moves from reserved to spent, and its tokens are
   * counted. What the worst case left over stays reserved by the run for its next call, so a run
   * that was admitted is not starved by runs admitted after it. The runner passes at most the
   * call's worst case (see {@link reserveStep}), whatever the provider reported.
   */
  settleStep(usd: number, tokens: number): void {
    const { ledger } = this.#ctx;
    // Charged before the reservation is given back: a shared ledger applies them in this order,
    // so between the two a window shows the cost twice (never a moment with it nowhere).
    ledger.charge(this.#run.project, usd, this.#createdAt);
    if (this.#holds.length > 0) {
      // No budget, no holds: nothing to filter, and no new (empty) array per step.
      let left = usd;
      for (const hold of this.#holds) {
        const take = Math.min(hold.usd, left);
        ledger.unreserve(this.#hold, hold.windows, take);
        hold.usd -= take;
        left -= take;
      }
      this.#holds = this.#holds.filter((h) => h.usd > 0);
    }
    this.#spent += usd;
    ledger.addTokens(this.#run.project, tokens, this.#ctx.clock.now());
  }

  /**
   * For a run refused after admission (its thread is missing or busy): gives everything back as
   * {@link release} does, and takes it out of the per-minute counts, as if never admitted.
   */
  withdraw(): void {
    if (this.#released) return;
    this.release();
    this.#ctx.ledger.uncount(this.#hold, this.#createdAt);
  }

  /** Gives back the run place and whatever is still reserved; safe to call twice. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const { ledger } = this.#ctx;
    if (this.#holds.length > 0) {
      for (const hold of this.#holds) ledger.unreserve(this.#hold, hold.windows, hold.usd);
      this.#holds = [];
    }
    ledger.release(this.#hold);
  }

  /** What the run holds now: the sum of its unsettled reservations. */
  #reserved(): number {
    let usd = 0;
    for (const hold of this.#holds) usd += hold.usd;
    return usd;
  }

  #dearest(promptBytes: number): { usd: number; model: string } {
    const prices = this.#ctx.prices;
    let dearest = { usd: 0, model: this.#run.models[0] ?? '' };
    for (const model of this.#run.models) {
      const usd = prices.costOf(model, { inputTokens: promptBytes, outputTokens: this.maxOutputTokens }).usd;
      if (usd > dearest.usd) dearest = { usd, model };
    }
    return dearest;
  }

  /** Throws `RUN_EXCEEDS_BUDGET` when one call's worst case is more than a whole limit. */
  #fits(dearest: { usd: number; model: string }, promptBytes: number, limits: BudgetLimits): void {
    const whole = [
      ['run', limits.perRunUsd, 'per-run cap (perRunUsd)'],
      ['daily', limits.dailyUsd, 'daily budget'],
      ['monthly', limits.monthlyUsd, 'monthly budget'],
    ] as const;
    for (const [window, limit, name] of whole) {
      if (limit === undefined || dearest.usd <= limit) continue;
      const { project } = this.#run;
      const fromAgent = this.#run.maxTokens !== undefined;
      const cap = fromAgent
        ? `its maxTokens of ${this.maxOutputTokens} output tokens`
        : `the default cap of ${this.maxOutputTokens} output tokens (governance.defaultMaxTokens; the agent sets no maxTokens)`;
      const err = new AgentPoolError(
        'RUN_EXCEEDS_BUDGET',
        `a model call of this agent could cost up to $${dearest.usd.toFixed(6)} (${cap} plus ${promptBytes} ` +
          `bytes of prompt, priced at ${dearest.model}), more than the whole ${name} of $${limit} of ` +
          `project ${project}: waiting cannot help; lower the agent's maxTokens (or the prompt) or raise the limit`,
        {
          project,
          window,
          limitUsd: limit,
          neededUsd: dearest.usd,
          maxTokens: this.maxOutputTokens,
          maxTokensFrom: fromAgent ? 'agent' : 'default',
          promptBytes,
          model: dearest.model,
        },
      );
      this.#ctx.refused(project, err);
      throw err;
    }
  }
}
