/**
 * The breaker of one MCP server session, with its jittered reconnect backoff: after
 * `threshold` consecutive failures (connect errors, timeouts, transport errors) it opens, and the
 * server's calls fail at once; after a wait that doubles with each failed retry (equal jitter, so
 * many sessions of one dead server do not retry in step) one trial call goes through; it closes on
 * the trial's success. A tool that answers with an error is a success here: the server is alive.
 */
import type { Clock } from '../../core/clock.ts';

/** The breaker's state, with what each state needs. */
export type McpBreakerState =
  | { readonly value: 'closed'; readonly failures: number }
  | { readonly value: 'open'; readonly openedAt: number; readonly retryAt: number; readonly attempt: number }
  | { readonly value: 'half-open'; readonly attempt: number };

/** What a breaker is built from. */
export interface McpBreakerOptions {
  readonly threshold: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly clock: Clock;
  /** A number in [0, 1) (the jitter). */
  readonly random: () => number;
  /** Told of each change of state. */
  readonly onChange: (state: McpBreakerState) => void;
}

/** One server session's breaker. */
export class McpBreaker {
  readonly #options: McpBreakerOptions;
  #state: McpBreakerState = { value: 'closed', failures: 0 };

  constructor(options: McpBreakerOptions) {
    this.#options = options;
  }

  get state(): McpBreakerState {
    return this.#state;
  }

  /**
   * Whether a call may go to the server now: always when closed; when open, once the wait is over
   * (the breaker becomes half-open and this call is its trial); never while a trial is out.
   */
  admit(): boolean {
    const state = this.#state;
    if (state.value === 'closed') return true;
    if (state.value === 'half-open') return false;
    if (this.#options.clock.now() < state.retryAt) return false;
    this.#set({ value: 'half-open', attempt: state.attempt });
    return true;
  }

  /** Ms until an open breaker lets a trial through (0 unless open). */
  retryInMs(): number {
    const state = this.#state;
    return state.value === 'open' ? Math.max(0, state.retryAt - this.#options.clock.now()) : 0;
  }

  /** The server answered. */
  success(): void {
    const state = this.#state;
    if (state.value === 'closed' && state.failures === 0) return;
    this.#set({ value: 'closed', failures: 0 });
  }

  /** The server could not be reached or did not answer in time. */
  failure(): void {
    const state = this.#state;
    if (state.value === 'closed') {
      if (state.failures + 1 < this.#options.threshold) {
        this.#state = { value: 'closed', failures: state.failures + 1 };
        return;
      }
      this.#open(0);
      return;
    }
    // A failed trial waits longer; a failure reported while already open changes nothing.
    if (state.value === 'half-open') this.#open(state.attempt + 1);
  }

  #open(attempt: number): void {
    const { backoffInitialMs, backoffMaxMs, clock, random } = this.#options;
    const ceiling = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(attempt, 30));
    // Equal jitter: at least half the wait, so retries spread without ever coming back at once.
    const wait = Math.round(ceiling / 2 + random() * (ceiling / 2));
    const now = clock.now();
    this.#set({ value: 'open', openedAt: now, retryAt: now + wait, attempt });
  }

  #set(state: McpBreakerState): void {
    this.#state = state;
    this.#options.onChange(state);
  }
}
