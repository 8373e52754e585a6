/**
 * The events of one run: each carries a per-run sequence number, is kept in a bounded replay
 * buffer, and is delivered to any number of consumers, who may join late and resume after a
 * sequence number they already saw (an SSE `Last-Event-ID`).
 */
import type { UsageExceededCap } from '../models/model-events.ts';
import type { RunRecord } from '../store/ports.ts';

/** Fields every run event has. */
interface EventBase {
  /** 1, 2, 3 … within the run. */
  readonly seq: number;
  readonly runId: string;
  readonly at: number;
}

/** What a run tells its consumers, in order. */
export type RunEvent =
  | (EventBase & { type: 'run.started'; run: RunRecord })
  | (EventBase & { type: 'text.delta'; step: number; delta: string })
  | (EventBase & { type: 'tool.call'; step: number; toolCallId: string; toolName: string; input: unknown })
  | (EventBase & {
      type: 'tool.result';
      step: number;
      toolCallId: string;
      toolName: string;
      ok: boolean;
      output?: unknown;
      error?: { code: string; message: string };
    })
  | (EventBase & {
      type: 'step.finished';
      step: number;
      /** The model that answered this step: the agent's, or a fallback. */
      model: string;
      finishReason: string;
      inputTokens: number;
      outputTokens: number;
      /** Set when the provider reported more than the call's cap; the step was charged the cap. */
      usageExceededCap?: UsageExceededCap;
    })
  | (EventBase & { type: 'run.finished'; run: RunRecord })
  | (EventBase & { type: 'run.failed'; run: RunRecord; error: { code: string; message: string } });

/** A run event before it is numbered. */
export type RunEventInput = RunEvent extends infer E
  ? E extends RunEvent
    ? Omit<E, 'seq' | 'runId' | 'at'>
    : never
  : never;

/** The default size of a run's replay buffer. */
export const DEFAULT_REPLAY_EVENTS = 10_000;

/** Events of one run, with replay. */
export class RunEventStream {
  readonly runId: string;
  readonly #buffer: RunEvent[] = [];
  readonly #max: number;
  readonly #now: () => number;
  #seq = 0;
  #ended = false;
  #wake: (() => void)[] = [];

  constructor(runId: string, now: () => number, maxEvents = DEFAULT_REPLAY_EVENTS) {
    this.runId = runId;
    this.#now = now;
    this.#max = maxEvents;
  }

  /** Numbers and publishes an event; ignored after the terminal one. */
  publish(input: RunEventInput): RunEvent | undefined {
    if (this.#ended) return undefined;
    const event = { ...input, seq: ++this.#seq, runId: this.runId, at: this.#now() } as RunEvent;
    this.#buffer.push(event);
    if (this.#buffer.length > this.#max) this.#buffer.shift();
    if (event.type === 'run.finished' || event.type === 'run.failed') this.#ended = true;
    for (const wake of this.#wake.splice(0)) wake();
    return event;
  }

  /**
   * Events after `afterSeq` (0: from the start), then live ones, until the terminal event.
   * When the buffer no longer holds the events right after `afterSeq`, replay starts at the
   * oldest one kept; its `seq` shows the gap.
   */
  async *events(afterSeq = 0, signal?: AbortSignal): AsyncGenerator<RunEvent> {
    let next = afterSeq + 1;
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort, { once: true }); // one listener per consumer, removed below
    try {
      for (;;) {
        if (signal?.aborted) return;
        const first = this.#buffer[0];
        if (first !== undefined && next <= this.#seq) {
          const start = Math.max(0, next - first.seq);
          const batch = this.#buffer.slice(start);
          for (const event of batch) {
            yield event; // events published while suspended here are picked up by the next round
            next = event.seq + 1;
          }
          continue;
        }
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.#wake.push(resolve);
        });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // A follower that leaves while waiting takes its waker along, so quiet runs do not collect them.
      const waiting = wake === undefined ? -1 : this.#wake.indexOf(wake);
      if (waiting >= 0) this.#wake.splice(waiting, 1);
    }
  }
}
