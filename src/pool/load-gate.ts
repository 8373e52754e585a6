/**
 * What the run layer asks of the health monitor, declared here (the lower layer) so the run
 * manager depends on the pool's port and not the other way round: whether the node takes new runs,
 * and the shape of a run the monitor timed out.
 */
import type { AgentPoolError } from '../core/errors.ts';

/**
 * Whether the node takes new runs: read once per run (one property), so shedding costs the run
 * path nothing while the node is healthy.
 */
export interface LoadGate {
  /** True while new runs are refused. */
  readonly overloaded: boolean;
  /** The refusal (`OVERLOADED`, with when to retry); asked only while overloaded. */
  refusal(): AgentPoolError;
}

/** A run the health monitor ended for running past its agent's `runTimeoutMs`. */
export interface TimedOutRun {
  runId: string;
  project: string;
  agentId: string;
  agentName: string;
  timeoutMs: number;
  elapsedMs: number;
}
