/**
 * One watcher of a signal's abort without an EventTarget listener. Node allocates a listener map
 * on a signal's first listener and a new table when its last one leaves: ~0.5 KiB for a model
 * attempt watching its run's fresh signal. A {@link WatchedAbortController} (a run's) keeps one
 * watcher in a slot and calls it when it aborts; {@link watchAbort} uses the slot when the signal
 * is such a controller's and it is free, and a listener otherwise.
 */

const CONTROLLER = Symbol('WatchedAbortController');

type Watched = AbortSignal & { [CONTROLLER]?: WatchedAbortController };

/** An AbortController whose signal's first watcher is told by `abort()` itself. */
export class WatchedAbortController extends AbortController {
  #watcher: (() => void) | undefined;

  constructor() {
    super();
    (this.signal as Watched)[CONTROLLER] = this;
  }

  /** Aborts the signal (its listeners hear it first), then tells its watcher. */
  override abort(reason?: unknown): void {
    const aborted = this.signal.aborted;
    super.abort(reason);
    const watcher = this.#watcher;
    if (aborted || watcher === undefined) return;
    this.#watcher = undefined;
    watcher();
  }

  /** Takes the slot for `watcher`; false when it is taken. */
  watch(watcher: () => void): boolean {
    if (this.#watcher !== undefined) return false;
    this.#watcher = watcher;
    return true;
  }

  /** Frees the slot if `watcher` holds it; false when it does not. */
  unwatch(watcher: () => void): boolean {
    if (this.#watcher !== watcher) return false;
    this.#watcher = undefined;
    return true;
  }
}

/**
 * Calls `watcher` once when `signal` aborts (it must not have yet), until {@link unwatchAbort}. A
 * watcher must not throw: in the slot, its throw would reach whoever aborted.
 */
export function watchAbort(signal: AbortSignal, watcher: () => void): void {
  if ((signal as Watched)[CONTROLLER]?.watch(watcher) !== true) signal.addEventListener('abort', watcher);
}

/** Stops `watcher` hearing `signal`'s abort. */
export function unwatchAbort(signal: AbortSignal, watcher: () => void): void {
  if ((signal as Watched)[CONTROLLER]?.unwatch(watcher) !== true)
    signal.removeEventListener('abort', watcher);
}
