/**
 * Options of runs and threads (`AgentPoolOptions.runs`), their defaults, and their validation in
 * one step, so the pool and the server's configuration (`agentpool serve --print-config`, the
 * settings reference) read the same defaults.
 */
import { intOption, objectOption } from '../core/options.ts';
import { DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_EVENTS } from './stream.ts';

/** Bounds of runs, thread history and the replay buffers of run events. */
export interface RunOptions {
  /** Thread messages sent to the model at most. 1..10000. @default 200 */
  historyLimit?: number;
  /** Runs waiting on one thread at most (enqueue/interrupt). @default 100 */
  maxQueuePerThread?: number;
  /** Finished runs whose events stay replayable in memory. @default 1000 */
  recentStreams?: number;
  /** Approximate bytes (as JSON) of the events those finished runs hold in all; the oldest runs go first. @default 67108864 (64 MiB) */
  recentStreamsBytes?: number;
  /** Events of one run kept for replay (`Last-Event-ID`); the oldest go first. @default 10000 */
  replayEvents?: number;
  /** Approximate bytes (as JSON) of one run's events kept for replay; the oldest go first. @default 2097152 (2 MiB) */
  replayBytes?: number;
  /** Threads whose recent messages stay cached in memory (each up to historyLimit). @default 1000 */
  cachedThreads?: number;
}

/** {@link RunOptions} with every default applied. */
export type ResolvedRunOptions = Required<RunOptions>;

const FIELDS = [
  'historyLimit',
  'maxQueuePerThread',
  'recentStreams',
  'recentStreamsBytes',
  'replayEvents',
  'replayBytes',
  'cachedThreads',
] as const;

const MIB = 1024 * 1024;

/** Applies defaults and rejects unknown fields and bad values with a message naming the field (`runs.…`). */
export function resolveRunOptions(input: RunOptions = {}): ResolvedRunOptions {
  const o = objectOption('runs', input, FIELDS) as RunOptions;
  return {
    historyLimit: intOption('runs.historyLimit', o.historyLimit, 200, 1, 10_000),
    maxQueuePerThread: intOption('runs.maxQueuePerThread', o.maxQueuePerThread, 100, 0),
    recentStreams: intOption('runs.recentStreams', o.recentStreams, 1000, 0),
    recentStreamsBytes: intOption('runs.recentStreamsBytes', o.recentStreamsBytes, 64 * MIB, 0),
    replayEvents: intOption('runs.replayEvents', o.replayEvents, DEFAULT_REPLAY_EVENTS, 1),
    replayBytes: intOption('runs.replayBytes', o.replayBytes, DEFAULT_REPLAY_BYTES, 1),
    cachedThreads: intOption('runs.cachedThreads', o.cachedThreads, 1000, 0),
  };
}
