/**
 * Per-tool figures: calls, errors, timeouts and a latency histogram per tool and source
 * (`builtin`, `custom`, `module`, `mcp:<server>`), the series `/metrics` exposes, plus a
 * per-project breakdown (counts and total time, no histogram) for the stats API and
 * `GET /v1/tools`. A run binds a tool's series once per tool list, so a call costs a few
 * additions, a histogram observation and one Map lookup for its project.
 *
 * Bounded: at most `maxSeries` series (tool, source); later tools share the series
 * `tool="(other)"` of their source, so a catalogue of many module tools cannot blow up the
 * label set. At most `maxProjects` projects keep a breakdown (the one seen
 * first goes first), each with at most `maxSeries` entries.
 */
import { Histogram } from '../core/metrics.ts';
import { OldestKey } from '../core/oldest-key.ts';

/** Latency buckets of tool calls, in ms: 1 ms to 2 minutes. */
export const TOOL_LATENCY_BUCKETS_MS: readonly number[] = [
  1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000,
];

/** The tool name of the series shared by tools past `maxSeries`. */
export const OTHER_TOOL = '(other)';

/** How one call ended, as the figures count it. */
export type ToolCallOutcome = 'ok' | 'error' | 'timeout';

/** Counts of one tool's calls; `errors` includes `timeouts`. */
export interface ToolCounts {
  calls: number;
  errors: number;
  timeouts: number;
  /** Total time in calls, ms. */
  durationMs: number;
}

/** The figures of one tool (and source). */
export interface ToolFigureRow extends ToolCounts {
  readonly tool: string;
  readonly source: string;
}

/** One series: a tool of a source, with its latency histogram. */
export class ToolSeries implements ToolFigureRow {
  readonly tool: string;
  readonly source: string;
  calls = 0;
  errors = 0;
  timeouts = 0;
  durationMs = 0;
  readonly latency = new Histogram(TOOL_LATENCY_BUCKETS_MS);

  constructor(tool: string, source: string) {
    this.tool = tool;
    this.source = source;
  }
}

/** Bounds of a {@link ToolFigures}. */
export interface ToolFiguresBounds {
  /** Series (tool, source) kept at most. @default 1000 */
  maxSeries?: number;
  /** Projects with a breakdown at most. @default 10000 */
  maxProjects?: number;
}

/** See the file header. */
export class ToolFigures {
  readonly #maxSeries: number;
  readonly #maxProjects: number;
  /** By source, then tool name. */
  readonly #series = new Map<string, Map<string, ToolSeries>>();
  #seriesCount = 0;
  /** Per project, per series; Map order is recency order. */
  readonly #projects = new Map<string, Map<ToolSeries, ToolCounts>>();
  readonly #oldestProject = new OldestKey(this.#projects);

  constructor(bounds: ToolFiguresBounds = {}) {
    this.#maxSeries = bounds.maxSeries ?? 1000;
    this.#maxProjects = bounds.maxProjects ?? 10_000;
  }

  /** The series a tool's calls are counted in (bind it once; a run reuses it). */
  seriesFor(tool: string, source: string): ToolSeries {
    let bySource = this.#series.get(source);
    let series = bySource?.get(tool);
    if (series !== undefined) return series;
    if (this.#seriesCount >= this.#maxSeries) {
      // Past the bound a tool shares its source's "(other)" series, and a source first seen then
      // (MCP server names are the tenants' to choose) shares the one "(other)" source: at most one
      // more series per source seen before the bound, plus one.
      if (bySource === undefined) source = OTHER_TOOL;
      bySource = this.#series.get(source);
      series = bySource?.get(OTHER_TOOL);
      if (series !== undefined) return series;
      tool = OTHER_TOOL;
    }
    if (bySource === undefined) this.#series.set(source, (bySource = new Map()));
    series = new ToolSeries(tool, source);
    bySource.set(tool, series);
    this.#seriesCount++;
    return series;
  }

  /** Counts one call of the tool of `series` in `project`. */
  record(project: string, series: ToolSeries, outcome: ToolCallOutcome, durationMs: number): void {
    series.calls++;
    series.durationMs += durationMs;
    series.latency.observe(durationMs);
    if (outcome !== 'ok') {
      series.errors++;
      if (outcome === 'timeout') series.timeouts++;
    }
    let tools = this.#projects.get(project);
    if (tools === undefined) {
      tools = new Map();
      this.#projects.set(project, tools);
      if (this.#projects.size > this.#maxProjects) {
        this.#oldestProject.evict();
      }
    }
    let counts = tools.get(series);
    if (counts === undefined) {
      if (tools.size >= this.#maxSeries) return;
      counts = { calls: 0, errors: 0, timeouts: 0, durationMs: 0 };
      tools.set(series, counts);
    }
    counts.calls++;
    counts.durationMs += durationMs;
    if (outcome !== 'ok') {
      counts.errors++;
      if (outcome === 'timeout') counts.timeouts++;
    }
  }

  /** Every series, in the order they were first bound. */
  series(): ToolSeries[] {
    const all: ToolSeries[] = [];
    for (const bySource of this.#series.values()) for (const s of bySource.values()) all.push(s);
    return all;
  }

  /** One series' figures with its latency (bucket upper bounds, ms; null before a call), for the stats API. */
  static row(series: ToolSeries): ToolFigureRow & { latencyMs: { p50: number | null; p99: number | null } } {
    const { tool, source, calls, errors, timeouts, durationMs } = series;
    const p50 = series.latency.quantile(0.5);
    const p99 = series.latency.quantile(0.99);
    return {
      tool,
      source,
      calls,
      errors,
      timeouts,
      durationMs: round(durationMs),
      latencyMs: { p50: Number.isNaN(p50) ? null : p50, p99: Number.isNaN(p99) ? null : p99 },
    };
  }

  /** The whole process's figures: per tool (most called first), and summed per source. */
  stats(): { tools: ReturnType<typeof ToolFigures.row>[]; sources: ToolFigureRow[] } {
    const series = this.series();
    return {
      tools: series
        .filter((s) => s.calls > 0)
        .map((s) => ToolFigures.row(s))
        .sort(byCalls),
      sources: sum(series.map((s) => [s, s] as const)),
    };
  }

  /** One project's figures: per tool (most called first), and summed per source. */
  projectStats(project: string): { tools: ToolFigureRow[]; sources: ToolFigureRow[] } {
    const entries = [...(this.#projects.get(project) ?? new Map<ToolSeries, ToolCounts>())];
    return {
      tools: entries
        .map(([s, c]) => ({ tool: s.tool, source: s.source, ...c, durationMs: round(c.durationMs) }))
        .sort(byCalls),
      sources: sum(entries),
    };
  }

  /** One project's counts of one tool, if it called it. */
  projectCounts(project: string, tool: string, source: string): ToolCounts | undefined {
    const series = this.#series.get(source)?.get(tool);
    return series === undefined ? undefined : this.#projects.get(project)?.get(series);
  }

  /** Forgets a deleted project's breakdown (the series keep what it called). */
  forgetProject(project: string): void {
    this.#projects.delete(project);
  }
}

function byCalls(a: ToolFigureRow, b: ToolFigureRow): number {
  return b.calls - a.calls || a.tool.localeCompare(b.tool);
}

function sum(entries: readonly (readonly [ToolSeries, ToolCounts])[]): ToolFigureRow[] {
  const bySource = new Map<string, ToolFigureRow>();
  for (const [s, c] of entries) {
    const row = bySource.get(s.source) ?? {
      tool: '*',
      source: s.source,
      calls: 0,
      errors: 0,
      timeouts: 0,
      durationMs: 0,
    };
    row.calls += c.calls;
    row.errors += c.errors;
    row.timeouts += c.timeouts;
    row.durationMs = round(row.durationMs + c.durationMs);
    bySource.set(s.source, row);
  }
  return [...bySource.values()].filter((r) => r.calls > 0);
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
