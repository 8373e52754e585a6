/**
 * Quota counters: runs in flight and runs/tokens per minute, per project and per agent, on the
 * injected clock. Checks and takes are synchronous, so no two concurrent admissions can both take
 * the last place. Counters of idle agents are dropped once there are many, so memory follows the
 * agents that are running or ran in the last minute, not every agent ever seen.
 */
import type { AdmissionQuotas, QuotaUse } from '../coordination/governance-ledger.ts';
import {
  concurrencyRefusal as concurrency,
  rateRefusal as rateLimited,
} from '../coordination/governance-refusals.ts';
import { pruneIdle } from '../core/prune.ts';
import { SlidingWindow } from '../core/sliding-window.ts';

export type { AdmissionQuotas } from '../coordination/governance-ledger.ts';

interface Counter {
  running: number;
  readonly runs: SlidingWindow;
  readonly tokens: SlidingWindow;
}

/** Counters kept per map (projects, agents) before idle ones are dropped. */
const MAX_COUNTERS = 10_000;

function newCounter(): Counter {
  // The limits are passed per check, so a limit changed by an admin applies to the counts so far.
  return { running: 0, runs: new SlidingWindow(Infinity), tokens: new SlidingWindow(Infinity) };
}

/** Runs in flight and per-minute counts of projects and agents. */
export class QuotaCounters {
  readonly #projects = new Map<string, Counter>();
  readonly #agents = new Map<string, Counter>();

  /**
   * Takes a place for a run, or throws `QUOTA_EXCEEDED` (runs in flight) or `RATE_LIMITED`
   * (runs or tokens per minute) with `retryAfterSeconds`; takes nothing when it throws.
   */
  take(project: string, agentId: string, quotas: AdmissionQuotas, now: number): void {
    const p = this.#counter(this.#projects, project, now);
    const a = this.#counter(this.#agents, agentId, now);
    const pq = quotas.project;
    const aq = quotas.agent;
    if (pq.maxConcurrentRuns !== undefined && p.running >= pq.maxConcurrentRuns)
      throw concurrency('project', pq.maxConcurrentRuns);
    if (aq.maxConcurrentRuns !== undefined && a.running >= aq.maxConcurrentRuns)
      throw concurrency('agent', aq.maxConcurrentRuns);
    if (pq.runsPerMinute !== undefined && p.runs.exhausted(now, pq.runsPerMinute))
      throw rateLimited('project', 'runsPerMinute', pq.runsPerMinute, p.runs.waitMs(now, pq.runsPerMinute));
    if (aq.runsPerMinute !== undefined && a.runs.exhausted(now, aq.runsPerMinute))
      throw rateLimited('agent', 'runsPerMinute', aq.runsPerMinute, a.runs.waitMs(now, aq.runsPerMinute));
    if (pq.tokensPerMinute !== undefined && p.tokens.exhausted(now, pq.tokensPerMinute)) {
      const wait = p.tokens.waitMs(now, pq.tokensPerMinute);
      throw rateLimited('project', 'tokensPerMinute', pq.tokensPerMinute, wait);
    }
    p.running++;
    a.running++;
    p.runs.add(now);
    a.runs.add(now);
  }

  /**
   * Takes back the per-minute counts of a {@link take} made at `now`, for a run refused afterwards
   * (by its budget); its place is given back with {@link release}.
   */
  uncount(project: string, agentId: string, now: number): void {
    this.#projects.get(project)?.runs.add(now, -1);
    this.#agents.get(agentId)?.runs.add(now, -1);
  }

  /** Gives back the place of a finished run. */
  release(project: string, agentId: string): void {
    const p = this.#projects.get(project);
    if (p !== undefined) p.running = Math.max(0, p.running - 1);
    const a = this.#agents.get(agentId);
    if (a !== undefined) a.running = Math.max(0, a.running - 1);
  }

  /** Counts tokens a project's model call used, for its tokens-per-minute quota. */
  addTokens(project: string, tokens: number, now: number): void {
    if (tokens > 0) this.#counter(this.#projects, project, now).tokens.add(now, tokens);
  }

  /** What a project uses now: runs in flight, runs and tokens in the last minute. */
  usage(project: string, now: number): QuotaUse {
    const p = this.#projects.get(project);
    if (p === undefined) return { running: 0, runsLastMinute: 0, tokensLastMinute: 0 };
    return { running: p.running, runsLastMinute: p.runs.total(now), tokensLastMinute: p.tokens.total(now) };
  }

  /** Projects with counters, for metrics. */
  projects(): IterableIterator<string> {
    return this.#projects.keys();
  }

  /** Drops a deleted project's counters (its runs have ended), so a project created again with its id starts at zero. */
  forget(project: string): void {
    this.#projects.delete(project);
  }

  #counter(map: Map<string, Counter>, key: string, now: number): Counter {
    let counter = map.get(key);
    if (counter === undefined) {
      // An idle counter holds nothing a new one would not: nothing in flight, nothing this minute.
      pruneIdle(
        map,
        MAX_COUNTERS,
        (c) => c.running === 0 && c.runs.total(now) === 0 && c.tokens.total(now) === 0,
      );
      counter = newCounter();
      map.set(key, counter);
    }
    return counter;
  }
}
