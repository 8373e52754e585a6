/**
 * The Prometheus families of {@link AgentActivity}: exact totals of finished runs, tokens and cost
 * (`agentpool_runs_total{status}`, `agentpool_tokens_total{direction}`,
 * `agentpool_cost_usd_total`), and the same per agent for the agents in the bounded view
 * (`agentpool_agent_runs_total{agent,status}`, … with `agent="(other)"` for the rest). Each is
 * read at scrape time from one snapshot of the activity, in O(series).
 */
import { COUNTED_STATUSES, type AgentSeriesSample, type RunCounts } from './agent-activity.ts';

/** A metric value as prom-client formats it. */
interface Value {
  labels: Record<string, string>;
  value: number;
}

/** What prom-client's registry reads of a metric. */
export interface CollectedMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  aggregator: 'sum';
  get(): { name: string; help: string; type: 'counter' | 'gauge'; aggregator: 'sum'; values: Value[] };
}

function family(
  name: string,
  help: string,
  type: 'counter' | 'gauge',
  values: () => Value[],
): CollectedMetric {
  return {
    name,
    help,
    type,
    aggregator: 'sum',
    get: () => ({ name, help, type, aggregator: 'sum', values: values() }),
  };
}

/** What one scrape reads: the exact totals and the view's series. */
export interface AgentSnapshot {
  totals: RunCounts;
  series: AgentSeriesSample[];
}

/** The families, reading `snapshot()` (taken once per scrape by the caller). */
export function agentSeriesMetrics(snapshot: () => AgentSnapshot): CollectedMetric[] {
  const perAgent = (pick: (agent: string, counts: RunCounts) => Value[]) => () =>
    snapshot().series.flatMap((s) => pick(s.agent, s.counts));
  return [
    family('agentpool_runs_total', 'Finished runs by terminal status (exact).', 'counter', () => {
      const { runs } = snapshot().totals;
      return COUNTED_STATUSES.map((status) => ({ labels: { status }, value: runs[status] }));
    }),
    family('agentpool_tokens_total', 'Tokens of finished runs by direction (exact).', 'counter', () => {
      const t = snapshot().totals;
      return [
        { labels: { direction: 'input' }, value: t.inputTokens },
        { labels: { direction: 'output' }, value: t.outputTokens },
      ];
    }),
    family(
      'agentpool_cost_usd_total',
      'Cost of finished runs in USD, from the price table (exact).',
      'counter',
      () => [{ labels: {}, value: snapshot().totals.costUsd }],
    ),
    family(
      'agentpool_agent_runs_total',
      'Finished runs by agent (project/name) and status, for the most active agents (metrics.maxAgentSeries); the rest are summed in agent="(other)".',
      'counter',
      perAgent((agent, c) =>
        COUNTED_STATUSES.filter((status) => c.runs[status] > 0).map((status) => ({
          labels: { agent, status },
          value: c.runs[status],
        })),
      ),
    ),
    family(
      'agentpool_agent_tokens_total',
      'Tokens of finished runs by agent and direction, for the most active agents; the rest in agent="(other)".',
      'counter',
      perAgent((agent, c) => [
        ...(c.inputTokens > 0 ? [{ labels: { agent, direction: 'input' }, value: c.inputTokens }] : []),
        ...(c.outputTokens > 0 ? [{ labels: { agent, direction: 'output' }, value: c.outputTokens }] : []),
      ]),
    ),
    family(
      'agentpool_agent_cost_usd_total',
      'Cost of finished runs in USD by agent, for the most active agents; the rest in agent="(other)".',
      'counter',
      perAgent((agent, c) => (c.costUsd > 0 ? [{ labels: { agent }, value: c.costUsd }] : [])),
    ),
    family(
      'agentpool_agent_series',
      'Agents with series of their own now (at most metrics.maxAgentSeries).',
      'gauge',
      () => [{ labels: {}, value: snapshot().series.filter((s) => s.agent !== '(other)').length }],
    ),
  ];
}
