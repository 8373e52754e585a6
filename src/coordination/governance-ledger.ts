/**
 * The governance ledger port: the state behind quotas and budgets — runs in flight, runs and
 * tokens per minute, and the spent and reserved USD of each budget window — that `Governance`
 * (governance/governance.ts) reads and changes. The local adapter (governance/local-ledger.ts)
 * keeps it in this process, synchronously; the Redis adapter (coordination/redis/governance-ledger.ts)
 * keeps one copy for the whole cluster, each check-and-take an atomic script. Both throw the same
 * refusals (governance-refusals.ts) and pass one conformance suite.
 *
 * Checks that decide (take, reserve, usage, windows) may answer asynchronously; the operations that
 * give back or settle (uncount, release, addTokens, unreserve, charge, forget) return nothing: an
 * adapter that talks to a server sends them in the order they were made and delivers them itself
 * (retrying), so the run path never waits on them. `flush()` waits until they were applied.
 */
import type { BudgetLimits } from '../store/project-ports.ts';

/** A value now, or later: the local adapter answers synchronously, so its path costs no promise. */
export type MaybePromise<T> = T | Promise<T>;

/** The limits that apply to one admission, already merged (project, then agent overrides). */
export interface AdmissionQuotas {
  readonly project: { maxConcurrentRuns?: number; runsPerMinute?: number; tokensPerMinute?: number };
  readonly agent: { maxConcurrentRuns?: number; runsPerMinute?: number };
}

/** The two budget windows. */
export type BudgetWindowKind = 'daily' | 'monthly';

/** One budget window's account as the ledger holds it. */
export interface WindowState {
  readonly kind: BudgetWindowKind;
  /** Epoch ms of its first instant (UTC midnight, or the 1st of the month). */
  readonly start: number;
  /** Epoch ms of the next window's start. */
  readonly end: number;
  readonly spent: number;
  /** Held by runs in flight. */
  readonly reserved: number;
}

/** What a project uses of its quotas now. */
export interface QuotaUse {
  readonly running: number;
  readonly runsLastMinute: number;
  readonly tokensLastMinute: number;
}

/** A project's windows; a window not loaded (never used, or forgotten) is absent. */
export interface ProjectWindows {
  readonly daily?: WindowState;
  readonly monthly?: WindowState;
}

/** One admitted run's hold on the ledger: its place, and whatever it reserves. */
export interface RunHold {
  readonly project: string;
  readonly agentId: string;
}

declare const heldIn: unique symbol;
/**
 * The windows a reservation was taken in (those of its moment: a reservation made before midnight
 * stays in yesterday's window). Opaque: handed back to {@link GovernanceLedger.unreserve}.
 */
export interface HeldWindows {
  readonly [heldIn]: true;
}

/** Where a window's spending is read from the first time it is used: the run store. */
export interface SpendSource {
  /** The summed cost of the project's runs created at or after `since`. */
  costSince(project: string, since: number): Promise<number>;
}

/** The per-project figures `/metrics` exports, as this node last saw them. */
export interface LedgerSample {
  readonly project: string;
  readonly running: number;
  readonly daily?: WindowState;
  readonly monthly?: WindowState;
}

/** The state behind quotas and budgets. */
export interface GovernanceLedger {
  /**
   * Takes a place for a run and counts it in the runs-per-minute windows, or throws
   * `QUOTA_EXCEEDED` (runs in flight) or `RATE_LIMITED` (runs or tokens per minute), with
   * `retryAfterSeconds`, taking nothing. Checks in this order: the project's places, the agent's,
   * the project's runs per minute, the agent's, the project's tokens per minute.
   */
  take(project: string, agentId: string, quotas: AdmissionQuotas, now: number): MaybePromise<RunHold>;
  /** Takes the run back out of the per-minute counts of the minute it was taken at (`at`). */
  uncount(hold: RunHold, at: number): void;
  /** Gives back the run's place. The caller gives back its reservations first ({@link unreserve}). */
  release(hold: RunHold): void;
  /** Counts tokens a project's model call used, for its tokens-per-minute quota. */
  addTokens(project: string, tokens: number, now: number): void;
  /** Runs in flight, and runs and tokens in the last minute, of a project. */
  usage(project: string, now: number): MaybePromise<QuotaUse>;

  /**
   * Makes the project's daily and monthly windows at `now` current, reading a window never used
   * before from `source` (once for all who share the ledger); undefined (nothing to wait for) when
   * they already are.
   */
  prepare(project: string, now: number, source: SpendSource): Promise<void> | undefined;
  /**
   * Reserves `usd` for the run in every current window, after checking it against each window that
   * has a limit; throws `BUDGET_EXHAUSTED` (with `retryAfterSeconds`) and reserves nothing when
   * spent + reserved ≥ limit, or + `usd` > limit. The windows must be prepared; `source` reads a
   * window again when a shared ledger lost it.
   */
  reserve(
    hold: RunHold,
    limits: BudgetLimits,
    usd: number,
    now: number,
    source: SpendSource,
  ): MaybePromise<HeldWindows>;
  /** Gives back up to `usd` of what the run reserved in `windows`. */
  unreserve(hold: RunHold, windows: HeldWindows, usd: number): void;
  /** Counts spending in the project's windows that contain `at` (the run's creation), when loaded. */
  charge(project: string, usd: number, at: number): void;
  /**
   * The project's windows as they stand (after {@link prepare}, the current ones); `source` reads
   * a window again when the ledger lost it (a shared ledger whose project was forgotten elsewhere).
   */
  windows(project: string, now: number, source: SpendSource): MaybePromise<ProjectWindows>;

  /** Projects with counters or windows, for metrics (a cluster's as this node last saw them). */
  samples(now: number): LedgerSample[];
  /**
   * Runs `fn` while no other holder of this ledger (no other node, for a shared one) runs an
   * exclusive `fn` of the same project: the `maxAgents` check and the create it admits, so two
   * nodes cannot both create a project's last allowed agent. Rejects COORDINATION_UNAVAILABLE when
   * a shared ledger cannot be reached, or when the section stays taken longer than a create can.
   */
  exclusive<T>(project: string, fn: () => Promise<T>): Promise<T>;
  /** Drops a deleted project's counters and windows, so the id created again starts at zero. */
  forget(project: string): void;
  /** Resolves once every operation made so far was applied (or given up on). */
  flush(): Promise<void>;
  /** Stops timers and flushes; holds not released stay until they expire. */
  close(): Promise<void>;
}

/** The window of `kind` containing `now`. */
export function windowBounds(kind: BudgetWindowKind, now: number): { start: number; end: number } {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (kind === 'monthly') return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1) };
  const day = d.getUTCDate();
  return { start: Date.UTC(y, m, day), end: Date.UTC(y, m, day + 1) };
}
