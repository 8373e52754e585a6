/**
 * Per-agent run figures, bounded twice. The **book** keeps each agent's figures since the pool
 * started (runs by status, tokens, cost) for the stats API, for at most `maxTrackedAgents`
 * agents: beyond it one that has not run lately is forgotten (CLOCK, a second chance for each
 * agent that ran since the hand last passed, so counting a run never reorders anything). The **view** picks at most
 * `maxAgentSeries` of them to get their own Prometheus series; every other run counts in one
 * `(other)` series, so a scrape costs O(maxAgentSeries) however many agents ever ran.
 *
 * The view holds the most active agents lately: each agent's recent runs are counted and halved
 * every `epochRuns` runs (lazily, per entry), and an agent outside the view takes the place of the
 * least active member only when it has run more lately, and more than once (so agents that each
 * run now and then never churn series: a short-lived series costs Prometheus as much as a lasting
 * one).
 * A series counts from when its agent entered the view (going on from what the last scrape
 * exported under its label, if it had one then); when an agent leaves it, what it counted since
 * the last scrape moves to `(other)`. So between two scrapes, the increases of all agent
 * series add up to the increase of the exact totals, and `rate()` over them stays right: no run is
 * lost or counted twice, and no series jumps.
 */
import { OldestKey } from './core/oldest-key.ts';

/** The terminal statuses a run is counted under. */
export const COUNTED_STATUSES = ['succeeded', 'failed', 'cancelled', 'interrupted'] as const;
/** One of {@link COUNTED_STATUSES}. */
export type CountedStatus = (typeof COUNTED_STATUSES)[number];

/** Runs by status, tokens and cost: what a series, `(other)` and the totals count. */
export interface RunCounts {
  runs: Record<CountedStatus, number>;
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
}

/** One agent's figures since the pool started, as the stats API shows them. */
export interface AgentRunFigures extends RunCounts {
  project: string;
  name: string;
  /** Epoch ms of its last finished run. */
  lastRunAt: number;
}

/** A finished run, as far as the figures are concerned. */
export interface FinishedRun {
  project: string;
  agentName: string;
  status: string;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  finishedAt: number | null;
  createdAt: number;
}

/** An agent's own series while it is in the view. */
interface Series {
  readonly label: string;
  /** Since it entered the view. */
  readonly counts: RunCounts;
  /** `counts` at the last scrape: what moves to `(other)` when it leaves is the difference. */
  readonly scraped: RunCounts;
}

interface Entry {
  /** `project/name`: the label of its series. */
  readonly key: string;
  readonly figures: AgentRunFigures;
  /** Ran since the eviction hand last passed it. */
  referenced: boolean;
  /** Runs lately: halved once per epoch gone by since `epoch`. */
  recent: number;
  epoch: number;
  series: Series | undefined;
}

/** A series as a scrape exports it. */
export interface AgentSeriesSample {
  /** `project/name`, or `(other)`. */
  readonly agent: string;
  readonly counts: RunCounts;
}

/** The label of the series that sums every agent without a series of its own. */
export const OTHER_AGENTS = '(other)';

/** Zero counts. */
export function zeroCounts(): RunCounts {
  return {
    runs: { succeeded: 0, failed: 0, cancelled: 0, interrupted: 0 },
    inputTokens: 0,
    outputTokens: 0,
    costUsd: 0,
  };
}

function add(to: RunCounts, run: FinishedRun, status: CountedStatus): void {
  to.runs[status]++;
  to.inputTokens += run.inputTokens;
  to.outputTokens += run.outputTokens;
  to.costUsd += run.cost;
}

/** `to += a - b`, field by field. */
function addDifference(to: RunCounts, a: RunCounts, b: RunCounts): void {
  for (const s of COUNTED_STATUSES) to.runs[s] += a.runs[s] - b.runs[s];
  to.inputTokens += a.inputTokens - b.inputTokens;
  to.outputTokens += a.outputTokens - b.outputTokens;
  to.costUsd += a.costUsd - b.costUsd;
}

function copyInto(to: RunCounts, from: RunCounts): void {
  for (const s of COUNTED_STATUSES) to.runs[s] = from.runs[s];
  to.inputTokens = from.inputTokens;
  to.outputTokens = from.outputTokens;
  to.costUsd = from.costUsd;
}

function isCounted(status: string): status is CountedStatus {
  return (COUNTED_STATUSES as readonly string[]).includes(status);
}

/** Per-agent run figures: the bounded book and the bounded view (see the file header). */
export class AgentActivity {
  readonly #maxSeries: number;
  readonly #maxTracked: number;
  readonly #epochRuns: number;
  /** Every tracked agent by project and name: two lookups of strings the run already holds. */
  readonly #byProject = new Map<string, Map<string, Entry>>();
  /** The same entries in the order the eviction hand visits them. */
  readonly #order = new Set<Entry>();
  readonly #hand = new OldestKey(this.#order);
  /** Entries with a series; at most `maxSeries`. */
  readonly #view = new Set<Entry>();
  readonly #other: RunCounts = zeroCounts();
  /**
   * What the last scrape exported of each agent series, by label (at most `maxAgentSeries`): a
   * series that enters the view again (evicted and back, or its project deleted and made again)
   * goes on from there, so its label never moves backwards or forwards by runs counted elsewhere.
   */
  #exported = new Map<string, RunCounts>();
  readonly #totals: RunCounts = zeroCounts();
  #runs = 0;
  /** A lower bound of the view's least recent activity in this epoch; -1 when unknown. */
  #floor = -1;
  #floorEpoch = 0;

  constructor(options: { maxAgentSeries: number; maxTrackedAgents: number }) {
    this.#maxSeries = options.maxAgentSeries;
    this.#maxTracked = options.maxTrackedAgents;
    this.#epochRuns = Math.max(1000, 10 * options.maxAgentSeries);
  }

  /** Counts a finished run (runs that did not end in a counted status are ignored). */
  record(run: FinishedRun): void {
    const status = run.status;
    if (!isCounted(status)) return;
    const epoch = Math.floor(++this.#runs / this.#epochRuns);
    add(this.#totals, run, status);
    let entry = this.#byProject.get(run.project)?.get(run.agentName);
    if (entry === undefined) entry = this.#track(run.project, run.agentName, epoch);
    else entry.referenced = true;
    entry.recent = this.#recent(entry, epoch) + 1;
    entry.epoch = epoch;
    add(entry.figures, run, status);
    entry.figures.lastRunAt = run.finishedAt ?? run.createdAt;
    if (entry.series === undefined) this.#consider(entry, epoch);
    add(entry.series?.counts ?? this.#other, run, status);
  }

  /** The exact totals since start. */
  totals(): RunCounts {
    return this.#totals;
  }

  /**
   * The series of one scrape: one per agent in the view, then `(other)` (present once anything
   * counted in it). Marks them scraped.
   */
  scrape(): AgentSeriesSample[] {
    const out: AgentSeriesSample[] = [];
    const exported = new Map<string, RunCounts>();
    for (const entry of this.#view) {
      const series = entry.series as Series;
      copyInto(series.scraped, series.counts);
      out.push({ agent: series.label, counts: series.counts });
      exported.set(series.label, series.scraped);
    }
    this.#exported = exported;
    if (this.#runs > 0) out.push({ agent: OTHER_AGENTS, counts: this.#other });
    return out;
  }

  /** Agents with a series now. */
  get seriesCount(): number {
    return this.#view.size;
  }

  /** One agent's figures since start, if it is tracked. */
  agent(project: string, name: string): AgentRunFigures | undefined {
    const entry = this.#byProject.get(project)?.get(name);
    return entry && copyFigures(entry.figures);
  }

  /** How many of a project's agents have figures. */
  tracked(project: string): number {
    return this.#byProject.get(project)?.size ?? 0;
  }

  /** A project's tracked agents, most runs first, at most `limit`; and how many it has tracked. */
  project(project: string, limit: number): { agents: AgentRunFigures[]; tracked: number } {
    const entries = [...(this.#byProject.get(project)?.values() ?? [])];
    const runs = (e: Entry) => COUNTED_STATUSES.reduce((n, s) => n + e.figures.runs[s], 0);
    entries.sort((a, b) => runs(b) - runs(a) || (a.key < b.key ? -1 : 1));
    return { agents: entries.slice(0, limit).map((e) => copyFigures(e.figures)), tracked: entries.length };
  }

  /** Forgets a deleted project's agents: their figures and series (what their series counted since the last scrape goes to `(other)`). */
  forgetProject(project: string): void {
    const entries = this.#byProject.get(project);
    if (entries === undefined) return;
    for (const entry of entries.values()) {
      this.#leaveView(entry);
      this.#order.delete(entry);
    }
    this.#byProject.delete(project);
  }

  #track(project: string, name: string, epoch: number): Entry {
    if (this.#order.size >= this.#maxTracked) this.#forgetOne();
    const entry: Entry = {
      key: `${project}/${name}`,
      figures: { project, name, ...zeroCounts(), lastRunAt: 0 },
      referenced: false,
      recent: 0,
      epoch,
      series: undefined,
    };
    this.#order.add(entry);
    let entries = this.#byProject.get(project);
    if (entries === undefined) this.#byProject.set(project, (entries = new Map()));
    entries.set(name, entry);
    return entry;
  }

  /**
   * Drops one agent that has not run since the hand last passed (and its series): the hand clears
   * the mark of each agent that did and moves it to the back, so it stops within one round.
   */
  #forgetOne(): void {
    for (;;) {
      const first = this.#hand.evict();
      if (first === undefined) return;
      if (first.referenced) {
        first.referenced = false;
        this.#order.add(first);
        continue;
      }
      this.#leaveView(first);
      const entries = this.#byProject.get(first.figures.project);
      entries?.delete(first.figures.name);
      if (entries?.size === 0) this.#byProject.delete(first.figures.project);
      return;
    }
  }

  /** Gives `entry` a series when there is room, or when it ran more lately than the view's least active member. */
  #consider(entry: Entry, epoch: number): void {
    if (this.#maxSeries === 0) return;
    if (this.#view.size < this.#maxSeries) {
      this.#enterView(entry);
      return;
    }
    // One run lately never displaces anyone: with many agents that each run now and then, the view
    // would otherwise churn, and every new series costs Prometheus as much as a lasting one.
    if (entry.recent < 2) return;
    // Activity only grows within an epoch, so a floor found earlier in it still bounds the minimum.
    if (this.#floorEpoch === epoch && this.#floor >= entry.recent) return;
    let victim: Entry | undefined;
    let least = Number.POSITIVE_INFINITY;
    for (const member of this.#view) {
      const recent = this.#recent(member, epoch);
      if (recent < least) {
        least = recent;
        victim = member;
      }
    }
    this.#floor = least;
    this.#floorEpoch = epoch;
    if (victim === undefined || entry.recent <= least) return;
    this.#leaveView(victim);
    this.#enterView(entry);
  }

  #enterView(entry: Entry): void {
    const counts = zeroCounts();
    const scraped = zeroCounts();
    const last = this.#exported.get(entry.key);
    if (last !== undefined) {
      copyInto(counts, last);
      copyInto(scraped, last);
    }
    entry.series = { label: entry.key, counts, scraped };
    this.#view.add(entry);
    this.#floor = -1; // the newcomer may be the new minimum
  }

  #leaveView(entry: Entry): void {
    const series = entry.series;
    if (series === undefined) return;
    addDifference(this.#other, series.counts, series.scraped);
    entry.series = undefined;
    this.#view.delete(entry);
  }

  #recent(entry: Entry, epoch: number): number {
    const gone = epoch - entry.epoch;
    return gone === 0 ? entry.recent : gone > 30 ? 0 : entry.recent >>> gone;
  }
}

function copyFigures(f: AgentRunFigures): AgentRunFigures {
  return { ...f, runs: { ...f.runs } };
}
