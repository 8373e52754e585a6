/**
 * The governance ledger of one process: the quota counters (quotas.ts) and budget accounts
 * (budgets.ts) behind the ledger port, every check and take synchronous. It is the default of a
 * pool, and right for any number of pools only when each has its own projects: pools that share
 * projects (a cluster) share a ledger in Redis instead (coordination/redis/governance-ledger.ts).
 */
import type {
  AdmissionQuotas,
  GovernanceLedger,
  HeldWindows,
  LedgerSample,
  ProjectWindows,
  QuotaUse,
  RunHold,
  SpendSource,
} from '../coordination/governance-ledger.ts';
import type { BudgetLimits } from '../store/project-ports.ts';
import { type BudgetWindow, Budgets } from './budgets.ts';
import { QuotaCounters } from './quotas.ts';

/** Quotas and budgets kept in this process. */
export class LocalGovernanceLedger implements GovernanceLedger {
  readonly #quotas = new QuotaCounters();
  readonly #budgets = new Budgets();

  take(project: string, agentId: string, quotas: AdmissionQuotas, now: number): RunHold {
    this.#quotas.take(project, agentId, quotas, now);
    return { project, agentId };
  }

  uncount(hold: RunHold, at: number): void {
    this.#quotas.uncount(hold.project, hold.agentId, at);
  }

  release(hold: RunHold): void {
    this.#quotas.release(hold.project, hold.agentId);
  }

  addTokens(project: string, tokens: number, now: number): void {
    this.#quotas.addTokens(project, tokens, now);
  }

  usage(project: string, now: number): QuotaUse {
    return this.#quotas.usage(project, now);
  }

  prepare(project: string, now: number, source: SpendSource): Promise<void> | undefined {
    return this.#budgets.prepare(project, now, source);
  }

  reserve(hold: RunHold, limits: BudgetLimits, usd: number, now: number): HeldWindows {
    return this.#budgets.reserve(hold.project, limits, usd, now) as unknown as HeldWindows;
  }

  unreserve(_hold: RunHold, windows: HeldWindows, usd: number): void {
    this.#budgets.unreserve(windows as unknown as BudgetWindow[], usd);
  }

  charge(project: string, usd: number, at: number): void {
    this.#budgets.charge(project, usd, at);
  }

  windows(project: string): ProjectWindows {
    return this.#budgets.windows(project);
  }

  samples(now: number): LedgerSample[] {
    const projects = new Set([...this.#quotas.projects(), ...this.#budgets.projects()]);
    return [...projects].map((project) => {
      const { daily, monthly } = this.#budgets.windows(project);
      return {
        project,
        running: this.#quotas.usage(project, now).running,
        ...(daily && { daily }),
        ...(monthly && { monthly }),
      };
    });
  }

  forget(project: string): void {
    this.#quotas.forget(project);
    this.#budgets.forget(project);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** One process: the registry already serialises a project's creates. */
  exclusive<T>(_project: string, fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
