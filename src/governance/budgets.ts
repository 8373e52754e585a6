/**
 * Budgets: what each project spent and has reserved in its current UTC day and calendar month.
 * A window is loaded from the run store (the summed cost of runs created in it) the first time a
 * budget of that project is checked, then kept current in memory: reservations are taken and
 * settled synchronously, so concurrent runs against a nearly spent budget can never together
 * reserve more than is left. A run's cost counts in the window it was created in, as the store's
 * sum does. One boundary rule: spent ≥ limit means exhausted.
 */
import { type SpendSource, windowBounds, type WindowState } from '../coordination/governance-ledger.ts';
import { budgetRefusal, overBudget } from '../coordination/governance-refusals.ts';
import { AgentPoolError } from '../core/errors.ts';
import { pruneIdle } from '../core/prune.ts';
import type { BudgetLimits } from '../store/project-ports.ts';

export type { BudgetWindowKind, SpendSource } from '../coordination/governance-ledger.ts';
export { windowBounds } from '../coordination/governance-ledger.ts';

/** One window's account. Replaced, not reset, when the window rolls over. */
export interface BudgetWindow extends WindowState {
  spent: number;
  reserved: number;
}

interface ProjectAccount {
  daily?: BudgetWindow;
  monthly?: BudgetWindow;
  loading?: Promise<void>;
}

/** Most projects whose windows are kept; the least recently used beyond it are read again when needed. */
const MAX_PROJECTS = 100_000;

/** Spend accounts of every project that has a budget. */
export class Budgets {
  readonly #accounts = new Map<string, ProjectAccount>();

  /**
   * Makes the project's windows at `now` current, reading them from the store when they are not;
   * undefined (no await needed) when they already are.
   */
  prepare(project: string, now: number, source: SpendSource): Promise<void> | undefined {
    const account = this.#accounts.get(project);
    if (account !== undefined && current(account.daily, now) && current(account.monthly, now)) return;
    if (account?.loading !== undefined) return account.loading;
    const target = account ?? {};
    if (account === undefined) this.#remember(project, target);
    const loading = this.#load(project, target, now, source).finally(() => {
      delete target.loading;
    });
    target.loading = loading;
    return loading;
  }

  /**
   * Reserves `usd` against every window with a limit, or throws `BUDGET_EXHAUSTED` (with
   * `retryAfterSeconds`) and reserves nothing. The windows must be current ({@link prepare}).
   */
  reserve(project: string, limits: BudgetLimits, usd: number, now: number): BudgetWindow[] {
    const account = this.#accounts.get(project);
    const windows: BudgetWindow[] = [];
    for (const [kind, limit] of [
      ['daily', limits.dailyUsd],
      ['monthly', limits.monthlyUsd],
    ] as const) {
      const w = account?.[kind];
      if (w === undefined || !current(w, now)) {
        if (limit === undefined) continue;
        throw new AgentPoolError('INTERNAL_ERROR', `the ${kind} budget of ${project} was not loaded`);
      }
      windows.push(w);
      if (limit === undefined) continue;
      if (overBudget(w, limit, usd)) throw budgetRefusal(project, w, limit, usd, now);
    }
    for (const w of windows) w.reserved += usd;
    return windows;
  }

  /**
   * Gives back `usd` of a reservation to the windows it was taken in (spending is counted by
   * {@link charge}). A window that has rolled over since is no longer read, so this is harmless.
   */
  unreserve(windows: readonly BudgetWindow[], usd: number): void {
    for (const w of windows) w.reserved = Math.max(0, w.reserved - usd);
  }

  /** Counts spending that reserved nothing (no budget applied) in the project's loaded windows. */
  charge(project: string, usd: number, now: number): void {
    if (usd <= 0) return;
    const account = this.#accounts.get(project);
    if (account === undefined) return;
    for (const w of [account.daily, account.monthly]) if (current(w, now)) w.spent += usd;
  }

  /** The windows' state for usage reports; undefined for a window not loaded. */
  windows(project: string): { daily?: BudgetWindow; monthly?: BudgetWindow } {
    const account = this.#accounts.get(project);
    return {
      ...(account?.daily && { daily: account.daily }),
      ...(account?.monthly && { monthly: account.monthly }),
    };
  }

  /** Projects with loaded windows, for metrics. */
  projects(): IterableIterator<string> {
    return this.#accounts.keys();
  }

  /**
   * Drops a deleted project's windows: its runs are gone from the store, so a project created
   * again with its id reads its spend afresh (nothing) instead of inheriting the old one.
   */
  forget(project: string): void {
    this.#accounts.delete(project);
  }

  async #load(project: string, account: ProjectAccount, now: number, source: SpendSource): Promise<void> {
    for (const kind of ['daily', 'monthly'] as const) {
      if (current(account[kind], now)) continue;
      const { start, end } = windowBounds(kind, now);
      const spent = await source.costSince(project, start);
      // Another load may have replaced it while this one read; keep the newer.
      if (!current(account[kind], now)) account[kind] = { kind, start, end, spent, reserved: 0 };
    }
  }

  #remember(project: string, account: ProjectAccount): void {
    // An account with nothing reserved is read again from the store when next needed.
    pruneIdle(
      this.#accounts,
      MAX_PROJECTS,
      (a) => (a.daily?.reserved ?? 0) === 0 && (a.monthly?.reserved ?? 0) === 0 && a.loading === undefined,
    );
    this.#accounts.set(project, account);
  }
}

function current(w: BudgetWindow | undefined, now: number): w is BudgetWindow {
  return w !== undefined && now >= w.start && now < w.end;
}
