/**
 * The run event log port: a run's numbered events (run/stream.ts) kept where every node of a
 * cluster can read them, so a client that reconnects to another node with `Last-Event-ID` resumes
 * its stream there. The node running the run appends each event without waiting; any node reads a
 * run's events after a sequence number and then follows the live ones until the terminal event.
 * The Redis adapter is coordination/redis/run-event-log.ts; a single node needs none (its
 * `RunEventStream` replay buffer is the log).
 *
 * The port is generic over the event type because coordination/ sits below run/ and does not
 * import it: the run layer uses it as `RunEventLog<RunEvent>`. It needs only the fields every run
 * event has (`seq`, `runId`, `at`, `type`); the rest travels as JSON.
 */

/** The fields of a run event the log relies on; `RunEvent` (run/stream.ts) has them all. */
export interface LoggedRunEvent {
  /** 1, 2, 3 … within the run. */
  readonly seq: number;
  readonly runId: string;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly type: string;
}

/** The event types that end a run's stream: a reader stops after one of them. */
export const TERMINAL_RUN_EVENT_TYPES: ReadonlySet<string> = new Set(['run.finished', 'run.failed']);

/** True when `event` is the last event of its run. */
export function isTerminalRunEvent(event: LoggedRunEvent): boolean {
  return TERMINAL_RUN_EVENT_TYPES.has(event.type);
}

/** A run's events, shared by every node. */
export interface RunEventLog<E extends LoggedRunEvent = LoggedRunEvent> {
  /**
   * Records an event of a run (already numbered). Never throws and never blocks the run: writes
   * are pipelined/batched in order per run; an unreachable Redis keeps them (bounded) and delivers
   * them when it returns, or drops the oldest with a logged warning.
   */
  append(event: E): void;
  /**
   * The run's events with seq > afterSeq, then live ones as they are appended, ending after the
   * terminal event (`run.finished` / `run.failed`) or when `signal` aborts. Undefined when the log
   * holds nothing of this run (unknown, or expired). Rejects with `COORDINATION_UNAVAILABLE` when
   * Redis cannot be reached. When the log no longer holds the events right after `afterSeq` (it is
   * bounded), replay starts at the oldest one kept; its `seq` shows the gap.
   */
  read(runId: string, afterSeq: number, signal?: AbortSignal): Promise<AsyncIterable<E> | undefined>;
  /**
   * The seq of the run's last event held (0 when none): a run resumed on another node numbers its
   * events on from there. Rejects with COORDINATION_UNAVAILABLE when Redis cannot be reached.
   */
  lastSeq(runId: string): Promise<number>;
  /**
   * Resolves once every event appended before the call reached Redis, or was given up for now:
   * dropped, or kept for a later retry because Redis cannot be reached (it never waits out an
   * outage, so a node stopping during one is not held up).
   */
  flush(): Promise<void>;
  close(): Promise<void>;
}
