/**
 * The events of one run: each carries a per-run sequence number, is kept in a bounded replay
 * buffer, and is delivered to any number of consumers, who may join late and resume after a
 * sequence number they already saw (an SSE `Last-Event-ID`).
 *
 * The buffer is bounded by a number of events and by their approximate size as JSON, so a run
 * streaming huge tool results cannot hold megabytes per follower-less run; the oldest events go
 * first, and the newest (the terminal one, once published) always stays.
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
  | (EventBase & {
      type: 'tool.call';
      step: number;
      toolCallId: string;
      toolName: string;
      input: unknown;
      /** A call of one of the caller's functions: the run ends with it, and the caller runs it. */
      client?: true;
    })
  | (EventBase & {
      type: 'tool.result';
      step: number;
      toolCallId: string;
      toolName: string;
      ok: boolean;
      output?: unknown;
      error?: { code: string; message: string };
      /** How long the tool ran, ms (0 when it did not run: unknown tool, input not JSON). */
      durationMs?: number;
      /** Where the tool comes from: `builtin`, `custom`, `module`, `mcp:<server>`. */
      source?: string;
      /** Set when the call ended with `TOOL_TIMEOUT`. */
      timedOut?: true;
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
      /** The agent's tool calls of this step, when it made any: `errors` includes `timeouts`; time in ms. */
      tools?: { calls: number; errors: number; timeouts: number; durationMs: number };
    })
  | (EventBase & { type: 'run.finished'; run: RunRecord })
  | (EventBase & {
      type: 'run.failed';
      run: RunRecord;
      /** `details` (not kept on the record) says more, e.g. `field` for a refused option. */
      error: { code: string; message: string; details?: Record<string, unknown> };
    });

/** A run event before it is numbered. */
export type RunEventInput = RunEvent extends infer E
  ? E extends RunEvent
    ? Omit<E, 'seq' | 'runId' | 'at'>
    : never
  : never;

/** The default size of a run's replay buffer, in events. */
export const DEFAULT_REPLAY_EVENTS = 10_000;
/** The default size of a run's replay buffer, in approximate bytes of JSON (2 MiB). */
export const DEFAULT_REPLAY_BYTES = 2 * 1024 * 1024;

/** What an event's seq, runId, at, type and punctuation take as JSON, about. */
const EVENT_OVERHEAD_BYTES = 100;

/** The length of `value` as JSON; a value that cannot be serialised counts as its overhead only. */
function jsonLength(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return 0;
  }
}

function runLength(run: RunRecord): number {
  // A run record's size is its texts; the rest is a few hundred bytes of ids and counters.
  return 400 + run.input.length + (run.output?.length ?? 0) + metadataLength(run.metadata);
}

/** `jsonLength` of a run's metadata, without serialising the usual empty object. */
function metadataLength(metadata: RunRecord['metadata']): number {
  for (const _key in metadata) return jsonLength(metadata);
  return 2;
}

/**
 * About how many bytes an event takes as JSON: exact enough to bound memory, cheap enough for
 * every text delta (no serialisation of the common events).
 */
export function eventBytes(event: RunEvent): number {
  switch (event.type) {
    case 'text.delta':
      return EVENT_OVERHEAD_BYTES + event.delta.length;
    case 'step.finished':
      return EVENT_OVERHEAD_BYTES + 80 + event.model.length + event.finishReason.length;
    case 'tool.call':
      return EVENT_OVERHEAD_BYTES + event.toolCallId.length + event.toolName.length + jsonLength(event.input);
    case 'tool.result':
      return (
        EVENT_OVERHEAD_BYTES +
        event.toolCallId.length +
        event.toolName.length +
        jsonLength(event.ok ? event.output : event.error)
      );
    case 'run.failed':
      return EVENT_OVERHEAD_BYTES + runLength(event.run) + jsonLength(event.error);
    default:
      return EVENT_OVERHEAD_BYTES + runLength(event.run);
  }
}

/** Events of one run, with replay. */
export class RunEventStream {
  readonly runId: string;
  readonly #buffer: RunEvent[] = [];
  /**
   * The sum of {@link eventBytes} of the buffer's events. An event leaving the buffer is measured
   * again (events do not change once published): rarer than an array of sizes kept per run.
   */
  #bytes = 0;
  readonly #max: number;
  readonly #maxBytes: number;
  readonly #now: () => number;
  #seq: number;
  #ended = false;
  #wake: (() => void)[] = [];
  readonly #sink: ((event: RunEvent) => void) | undefined;

  /**
   * @param maxEvents events kept for replay at most
   * @param maxBytes approximate bytes (as JSON) of the events kept for replay at most; the newest
   *   event stays even when it alone is larger
   * @param more `sink`: told of every event as it is published (a cluster's event log, so a
   *   stream resumes on another node); `afterSeq`: the seq the first event follows (a run resumed
   *   on another node goes on numbering where its events stopped)
   */
  constructor(
    runId: string,
    now: () => number,
    maxEvents = DEFAULT_REPLAY_EVENTS,
    maxBytes = DEFAULT_REPLAY_BYTES,
    more?: { sink?: ((event: RunEvent) => void) | undefined; afterSeq?: number },
  ) {
    this.runId = runId;
    this.#now = now;
    this.#max = maxEvents;
    this.#maxBytes = maxBytes;
    this.#sink = more?.sink;
    this.#seq = more?.afterSeq ?? 0;
  }

  /** Approximate bytes (as JSON) of the events held for replay. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Numbers (in place: pass a fresh object) and publishes an event; ignored after the terminal one. */
  publish(input: RunEventInput): RunEvent | undefined {
    if (this.#ended) return undefined;
    // Numbered in place: every caller hands over a fresh object literal, so no copy is needed.
    const numbered = input as RunEventInput & { seq?: number; runId?: string; at?: number };
    numbered.seq = ++this.#seq;
    numbered.runId = this.runId;
    numbered.at = this.#now();
    const event = numbered as RunEvent;
    this.#buffer.push(event);
    this.#bytes += eventBytes(event);
    while (this.#buffer.length > 1 && (this.#buffer.length > this.#max || this.#bytes > this.#maxBytes)) {
      this.#bytes -= eventBytes(this.#buffer.shift() as RunEvent);
    }
    if (event.type === 'run.finished' || event.type === 'run.failed') this.#ended = true;
    this.#sink?.(event);
    if (this.#wake.length > 0) for (const wake of this.#wake.splice(0)) wake();
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
