/**
 * One attempt of a model call and, once it read the first content part, the stream handed to
 * the caller: one object for both, with one AbortController and one timer per attempt. The
 * attempt sends the request and reads until the first content part within the attempt timeout;
 * the stream then replays what the attempt read ahead of the rest, tapping the usage of `finish`
 * for the provider's token limit, and holds the call's bulkhead slot until it ends.
 *
 * It is not a ReadableStream: a relay stream cost a controller, a queue and a pull promise per part
 * on every model call. It offers what a reader of a model call uses: `getReader()` with `read()`,
 * `releaseLock()` and `cancel()`.
 */
import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import type { ReadableStreamReadResult } from 'node:stream/web';
import type { ModelRateLimit } from '../coordination/rate-limiter.ts';
import type { Clock, TimerHandle } from '../core/clock.ts';
import { unwatchAbort, watchAbort } from '../core/abort-watch.ts';
import type { Admission, Circuit } from './circuit.ts';
import type { Release } from './fair-bulkhead.ts';

type Part = LanguageModelV3StreamPart;

/** Reads a {@link ModelStream}. */
export interface ModelStreamReader {
  /** The next part; done once the model's stream ended; rejects with what broke it. */
  read(): Promise<ReadableStreamReadResult<Part>>;
  /** The reader is done: a stream not read to its end is cancelled, which frees its bulkhead slot. */
  releaseLock(): void;
  cancel(reason?: unknown): Promise<void>;
}

/** What {@link ModelStream.drain} hands each part to. */
export interface PartSink {
  /** Takes the next part; a throw stops the stream (it is cancelled) and rejects the drain with it. */
  part(part: Part): void;
}

/** The parts of one model call, starting with the first part the answering model sent. */
export interface ModelStream {
  /** The stream's one reader (the stream itself: there is no second reader to lock out). */
  getReader(): ModelStreamReader;
  /**
   * Reads the stream to its end, handing each part to `sink` in order: what the attempt read
   * ahead at once, the rest as it arrives. Resolves once the stream ended; rejects with what broke
   * it or what `sink` threw. Cheaper than `read()` in a loop: no promise nor result object per part.
   */
  drain(sink: PartSink): Promise<void>;
  /** Stops the call: the request is cancelled and its bulkhead slot freed. */
  cancel(reason?: unknown): Promise<void>;
}

/** What an attempt uses of its guard (model-guard.ts); one per guard. */
export interface AttemptGuard {
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly circuit: Circuit;
  /** The provider's limits of the ref; undefined when it has none. */
  readonly limit: ModelRateLimit | undefined;
  /**
   * What an attempt fails with, for what its model threw or sent as an `error` part before any
   * content (`inBand`): an AgentPoolError, or the caller's abort reason once `signal` aborted.
   */
  failure(err: unknown, signal: AbortSignal | undefined, attempt: number, inBand?: boolean): unknown;
}

/** Parts a provider sends before any content: an attempt is not over until something else arrives. */
const PREAMBLE: ReadonlySet<Part['type']> = new Set(['stream-start', 'response-metadata', 'raw']);
const NO_PARTS: readonly Part[] = Object.freeze([]);
const DONE: ReadableStreamReadResult<Part> = Object.freeze({ done: true, value: undefined });
const ignore = (): void => undefined;

/** One attempt of a call, and the stream it hands to the caller once it read the first content part. */
export class GuardedStream implements ModelStream, ModelStreamReader {
  readonly #guard: AttemptGuard;
  readonly #signal: AbortSignal | undefined;
  readonly #attempt: number;
  /** Aborts the request: the caller's abort for as long as the call lives, the timeout until the first part. */
  readonly #request = new AbortController();
  /** What the breaker admitted the attempt in; it hears the outcome. */
  readonly #admission: Admission;
  #timer: TimerHandle | undefined;
  /** Settles the attempt; undefined once it has settled. */
  #settle: PromiseWithResolvers<this> | undefined;
  /** What the attempt read: the preamble and the first content part, handed out first. */
  /** Made at its size, part by part (concat): most attempts read ahead two parts, and a push would grow an empty array to 16 places. */
  #head: readonly Part[] = NO_PARTS;
  #headRead = 0;
  #reader: ReadableStreamDefaultReader<Part> | undefined;
  /** The call's bulkhead slot: the caller's until the hand-over (it retries in it), then the stream's. */
  readonly #slot: Release;
  /** The call's bulkhead slot, from the hand-over until the stream ends or the caller aborts. */
  #release: Release | undefined;
  #done = false;
  /** What broke the stream after the hand-over; every later read rejects with it. */
  #error: unknown;

  constructor(
    guard: AttemptGuard,
    signal: AbortSignal | undefined,
    attempt: number,
    admission: Admission,
    slot: Release,
  ) {
    this.#guard = guard;
    this.#signal = signal;
    this.#attempt = attempt;
    this.#admission = admission;
    this.#slot = slot;
  }

  /**
   * Sends the request (the caller's signal must not have aborted yet). Resolves once the first
   * content part arrived, the stream then holding the call's bulkhead slot until it ends; rejects
   * with the attempt's failure, on time even if the model ignores its abort signal, or with the
   * abort reason as soon as the caller aborts, leaving the slot to the caller. The breaker hears
   * the outcome before the caller does.
   */
  open(model: LanguageModelV3, call: LanguageModelV3CallOptions): Promise<this> {
    const settle = Promise.withResolvers<this>();
    this.#settle = settle;
    // Not `once`: every way the attempt or its stream ends removes it (#fail, #free). A run's signal
    // tells it without an EventTarget listener (watchAbort).
    if (this.#signal !== undefined) watchAbort(this.#signal, this.#onAbort);
    this.#timer = this.#guard.clock.setTimeout(this.#onTimeout, this.#guard.timeoutMs);
    void this.#readHead(model, call);
    return settle.promise;
  }

  getReader(): this {
    return this;
  }

  read(): Promise<ReadableStreamReadResult<Part>> {
    if (this.#done) return this.#error === undefined ? Promise.resolve(DONE) : Promise.reject(this.#error);
    const part = this.#head[this.#headRead];
    if (part !== undefined) {
      this.#headRead++;
      this.#tap(part);
      return Promise.resolve({ done: false, value: part });
    }
    // Closures made here, not per attempt: the run path reads with drain().
    return (this.#reader as ReadableStreamDefaultReader<Part>).read().then(
      (next) => this.#onRead(next),
      (err: unknown) => this.#onReadError(err),
    );
  }

  releaseLock(): void {
    if (!this.#done) this.cancel().catch(ignore);
  }

  async drain(sink: PartSink): Promise<void> {
    try {
      for (;;) {
        if (this.#done) {
          if (this.#error !== undefined) throw this.#error;
          return;
        }
        let part = this.#head[this.#headRead];
        if (part !== undefined) this.#headRead++;
        else {
          let next: ReadableStreamReadResult<Part>;
          try {
            next = await (this.#reader as ReadableStreamDefaultReader<Part>).read();
          } catch (err) {
            this.#end(err); // after the first content part errors pass through, unretried
            throw err;
          }
          if (next.done) {
            this.#end(undefined);
            return;
          }
          part = next.value;
        }
        this.#tap(part);
        sink.part(part);
      }
    } finally {
      this.releaseLock(); // a sink that threw leaves the stream unread: cancelled, its slot freed
    }
  }

  async cancel(reason?: unknown): Promise<void> {
    this.#end(undefined);
    await this.#reader?.cancel(reason);
  }

  async #readHead(model: LanguageModelV3, call: LanguageModelV3CallOptions): Promise<void> {
    try {
      const { stream } = await model.doStream({ ...call, abortSignal: this.#request.signal });
      const reader = stream.getReader();
      this.#reader = reader;
      // Stops at the first content part, at the end, or once the attempt has failed: nobody will
      // read what arrives after a timeout.
      while (this.#settle !== undefined) {
        const next = await reader.read();
        if (next.done) break;
        const part = next.value;
        if (part.type === 'error') throw this.#guard.failure(part.error, this.#signal, this.#attempt, true);
        this.#head = this.#head.concat(part);
        if (!PREAMBLE.has(part.type)) break;
      }
    } catch (err) {
      this.#fail(this.#guard.failure(err, this.#signal, this.#attempt));
      return;
    }
    const settle = this.#settle;
    if (settle === undefined) {
      this.#reader?.cancel().catch(ignore);
      return;
    }
    this.#settled();
    // The caller's abort would have failed the attempt: the signal has not aborted.
    this.#release = this.#slot;
    this.#guard.circuit.succeeded(this.#admission);
    settle.resolve(this);
  }

  /** Fails the attempt (once) and cancels what it read. */
  #fail(err: unknown): void {
    this.#reader?.cancel(err).catch(ignore);
    const settle = this.#settle;
    if (settle === undefined) return;
    this.#settled();
    if (this.#signal !== undefined) unwatchAbort(this.#signal, this.#onAbort);
    this.#guard.circuit.failed(this.#admission, err);
    settle.reject(err);
  }

  #settled(): void {
    this.#settle = undefined;
    this.#timer?.cancel();
  }

  readonly #onTimeout = (): void => {
    const { timeoutMs } = this.#guard;
    const err = new DOMException(`the model sent nothing within ${timeoutMs} ms`, 'TimeoutError');
    this.#request.abort(err);
    this.#fail(this.#guard.failure(err, this.#signal, this.#attempt));
  };

  readonly #onAbort = (): void => {
    const reason = this.#signal?.reason;
    this.#request.abort(reason);
    if (this.#settle !== undefined) this.#fail(reason);
    else this.#free();
  };

  #onRead(next: ReadableStreamReadResult<Part>): ReadableStreamReadResult<Part> {
    if (next.done) this.#end(undefined);
    else this.#tap(next.value);
    return next;
  }

  /** After the first content part the caller has shown output: errors pass through, unretried. */
  #onReadError(err: unknown): never {
    this.#end(err);
    throw err;
  }

  #tap(part: Part): void {
    if (part.type !== 'finish') return;
    const { usage } = part;
    const tokens = (usage.inputTokens.total ?? 0) + (usage.outputTokens.total ?? 0);
    this.#guard.limit?.addTokens(tokens, this.#guard.clock.now());
  }

  #end(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    this.#free();
  }

  /** Gives the bulkhead slot back and stops forwarding the caller's abort. */
  #free(): void {
    const release = this.#release;
    if (release === undefined) return;
    this.#release = undefined;
    if (this.#signal !== undefined) unwatchAbort(this.#signal, this.#onAbort);
    release();
  }
}
