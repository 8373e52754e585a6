/**
 * The circuit breaker of one model: cockatiel's `CircuitBreakerPolicy` state machine with its
 * counting strategies (`ConsecutiveBreaker`, `SamplingBreaker`), but synchronous. A call asks to
 * be admitted and reports how it went, so a call through a closed circuit costs no promise; the
 * policy's `execute()` wrapped every call in three. The rules are cockatiel's, with one trial call
 * when half-open (its default `halfOpenSampling`) and a constant `halfOpenAfter`:
 *   closed: every call is admitted; each outcome is counted, and the strategy decides when to open;
 *   open: calls are refused until `halfOpenAfterMs` passed, then the next one is the trial;
 *   half-open: only the trial is in flight; it closes the circuit, or opens it again if it failed.
 * A failure `counts` rejects (a 400, a cancelled call) is no failure: a closed circuit leaves its
 * counts alone, a half-open one takes it as the trial's success ("task failed successfully").
 * Time is the injected clock's: the cooldown is tested by moving a ManualClock.
 */
import { CircuitState, type IBreaker } from 'cockatiel';
import type { Clock } from '../core/clock.ts';

/** The state of a circuit; an admitted call holds the one it was admitted in. */
type State =
  | { readonly value: CircuitState.Closed }
  | { readonly value: CircuitState.Open; readonly openedAt: number }
  | { readonly value: CircuitState.HalfOpen };

/** What a call was admitted in; hand it back with its outcome. */
export type Admission = Extract<State, { value: CircuitState.Closed | CircuitState.HalfOpen }>;

/** How a circuit decides; validated by the caller (resilience-options.ts). */
export interface CircuitOptions {
  /** Counts outcomes and says when to open (cockatiel's breaker classes). */
  readonly strategy: IBreaker;
  readonly halfOpenAfterMs: number;
  readonly clock: Clock;
  /** Whether a failure says the model is sick; others count as no failure (see the file comment). */
  readonly counts: (err: unknown) => boolean;
  /** Told of every change of state, after it happened. */
  readonly onChange: (state: CircuitState) => void;
}

const CLOSED: State = { value: CircuitState.Closed };

/** A circuit breaker whose calls report their outcome themselves. */
export class Circuit {
  readonly #options: CircuitOptions;
  #state: State = CLOSED;
  #lastFailure: unknown;

  constructor(options: CircuitOptions) {
    this.#options = options;
  }

  get state(): CircuitState {
    return this.#state.value;
  }

  /** The failure that last counted; undefined before any. */
  get lastFailure(): unknown {
    return this.#lastFailure;
  }

  /** Milliseconds until an open circuit lets its trial call through; 0 unless open. */
  get waitMs(): number {
    const state = this.#state;
    if (state.value !== CircuitState.Open) return 0;
    return Math.max(0, state.openedAt + this.#options.halfOpenAfterMs - this.#options.clock.now());
  }

  /**
   * Admits a call, or refuses it (undefined) while open or while the half-open trial is in flight.
   * An admitted call must report its outcome: {@link succeeded} or {@link failed}.
   */
  admit(): Admission | undefined {
    const state = this.#state;
    if (state.value === CircuitState.Closed) return state;
    if (state.value === CircuitState.HalfOpen) return undefined;
    if (this.#options.clock.now() - state.openedAt < this.#options.halfOpenAfterMs) return undefined;
    const trial: Admission = { value: CircuitState.HalfOpen };
    this.#set(trial);
    return trial;
  }

  succeeded(admission: Admission): void {
    if (admission.value === CircuitState.Closed) this.#options.strategy.success(CircuitState.Closed);
    else if (admission === this.#state) this.#close();
  }

  failed(admission: Admission, err: unknown): void {
    if (!this.#options.counts(err)) {
      if (admission.value === CircuitState.HalfOpen) this.succeeded(admission);
      return;
    }
    this.#lastFailure = err;
    // A call admitted when closed counts even if the circuit changed since (cockatiel does the same);
    // a trial that is no longer the current one does not.
    const trial = admission.value === CircuitState.HalfOpen;
    if (trial && admission !== this.#state) return;
    // A failed trial opens the circuit whatever the strategy answers.
    if (this.#options.strategy.failure(admission.value) || trial) this.#open();
  }

  #open(): void {
    if (this.#state.value !== CircuitState.Open) {
      this.#set({ value: CircuitState.Open, openedAt: this.#options.clock.now() });
    }
  }

  #close(): void {
    this.#options.strategy.success(CircuitState.HalfOpen);
    this.#set(CLOSED);
  }

  #set(state: State): void {
    this.#state = state;
    this.#options.onChange(state.value);
  }
}
