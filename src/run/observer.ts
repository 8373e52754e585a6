/**
 * What the run layer reports to whoever measures it (the Prometheus metrics of the pool). An
 * injected observer rather than a process-wide channel, so two pools in one process keep their
 * figures apart.
 */
import type { RunRecord } from '../store/ports.ts';

/** Told of model calls, finished runs and refusals. */
export interface RunObserver {
  /** A model call (one step) ended, successfully or not. */
  modelCall(model: string, seconds: number, ok: boolean): void;
  /** A run reached its terminal status (committed). */
  runFinished(run: RunRecord): void;
  /** A run was refused with `THREAD_BUSY`. */
  threadBusy(): void;
}

/** An observer that ignores everything. */
export const IGNORE_RUNS: RunObserver = {
  modelCall: () => undefined,
  runFinished: () => undefined,
  threadBusy: () => undefined,
};
