/**
 * The options of a pool's metrics: how many agents get Prometheus series of their own, and how
 * many keep their figures for the stats API (agent-activity.ts explains both bounds).
 */
import { intOption } from './core/options.ts';

/** Options of a pool's metrics (`AgentPoolOptions.metrics`). */
export interface MetricsOptions {
  /**
   * Agents with Prometheus series of their own (`agentpool_agent_*{agent}`), chosen by how much
   * they ran lately; every other agent's runs are summed in `agent="(other)"`. 0 keeps only
   * `(other)`. 0..10000. @default 100
   */
  maxAgentSeries?: number;
  /**
   * Agents whose run figures since start are kept for the stats API (`GET /v1/pool/stats/agents`);
   * beyond it an agent that has not run lately is forgotten. At least `maxAgentSeries`. @default 100000
   */
  maxTrackedAgents?: number;
}

/** {@link MetricsOptions} with every default applied. */
export interface ResolvedMetricsOptions {
  readonly maxAgentSeries: number;
  readonly maxTrackedAgents: number;
}

/** Applies the defaults of {@link MetricsOptions}; `VALIDATION_FAILED` naming the field for a bad value. */
export function resolveMetricsOptions(options: MetricsOptions = {}): ResolvedMetricsOptions {
  const maxAgentSeries = intOption('metrics.maxAgentSeries', options.maxAgentSeries, 100, 0, 10_000);
  const maxTrackedAgents = intOption(
    'metrics.maxTrackedAgents',
    options.maxTrackedAgents,
    Math.max(100_000, maxAgentSeries),
    Math.max(1, maxAgentSeries),
    10_000_000,
  );
  return { maxAgentSeries, maxTrackedAgents };
}
