/**
 * The event bus port and its in-process adapter. Each layer declares its own event types
 * (registry: `agent.*`, pool: `instance.*`); the composition root unions them. Dispatch is
 * synchronous and costs nothing when nobody listens, so emitters may call it on hot paths.
 */

/** The shape every event shares. */
export interface BusEvent {
  readonly type: string;
  /** Epoch milliseconds when it happened. */
  readonly at: number;
}

/** A listener; its errors are reported, never thrown back into the emitter. */
export type Listener<E> = (event: E) => void;

/** Publish/subscribe of typed events. */
export interface EventBus<E extends BusEvent> extends EventSink<E> {
  /** Subscribes to one event type, or to every type with `'*'`; returns the unsubscribe function. */
  on<T extends E['type'] | '*'>(type: T, listener: Listener<EventOf<E, T>>): () => void;
  /** True when emitting `type` would reach a listener; lets emitters skip building events. */
  hasListeners(type: E['type']): boolean;
}

/** The events a subscription to `T` receives: one type's, or every one for `'*'`. */
export type EventOf<E extends BusEvent, T> = T extends '*' ? E : Extract<E, { type: T }>;

/** The emitting half of a bus: what a layer that only publishes depends on. */
export interface EventSink<E extends BusEvent> {
  emit(event: E): void;
}

/** Options of {@link LocalEventBus}. */
export interface LocalEventBusOptions {
  /** Called when a listener throws. @default writes the error to stderr */
  onListenerError?: (error: unknown, event: BusEvent) => void;
}

/** An in-process bus. */
export class LocalEventBus<E extends BusEvent> implements EventBus<E> {
  readonly #byType = new Map<string, Set<Listener<E>>>();
  readonly #all = new Set<Listener<E>>();
  readonly #onError: (error: unknown, event: BusEvent) => void;

  constructor(options: LocalEventBusOptions = {}) {
    this.#onError =
      options.onListenerError ??
      ((error, event) => console.error(`agentpool: listener of ${event.type} threw`, error));
  }

  emit(event: E): void {
    const typed = this.#byType.get(event.type);
    if (typed !== undefined) for (const l of typed) this.#call(l, event);
    for (const l of this.#all) this.#call(l, event);
  }

  on<T extends E['type'] | '*'>(type: T, listener: Listener<EventOf<E, T>>): () => void {
    const l = listener as Listener<E>;
    if (type === '*') {
      this.#all.add(l);
      return () => this.#all.delete(l);
    }
    let set = this.#byType.get(type);
    if (set === undefined) {
      set = new Set();
      this.#byType.set(type, set);
    }
    set.add(l);
    return () => {
      set.delete(l);
      if (set.size === 0 && this.#byType.get(type) === set) this.#byType.delete(type);
    };
  }

  hasListeners(type: E['type']): boolean {
    return this.#all.size > 0 || this.#byType.has(type);
  }

  #call(listener: Listener<E>, event: E): void {
    try {
      listener(event);
    } catch (error) {
      this.#onError(error, event);
    }
  }
}
