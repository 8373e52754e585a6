/**
 * A lease: the right to use one instance until released. Releasing twice is harmless, and a
 * lease is `Disposable`, so `using lease = await pool.acquire(...)` releases it at scope exit.
 */
import type { Agent } from '../registry/registry.ts';
import type { AgentInstance } from './instance.ts';

/** A granted use of an instance. */
export class Lease implements Disposable {
  readonly instance: AgentInstance;
  readonly #release: (lease: Lease) => void;
  #released = false;

  constructor(instance: AgentInstance, release: (lease: Lease) => void) {
    this.instance = instance;
    this.#release = release;
  }

  /** The agent version this lease runs on. */
  get agent(): Agent {
    return this.instance.agent;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Gives the instance back; returns false when it was already released. */
  release(): boolean {
    if (this.#released) return false;
    this.#released = true;
    this.#release(this);
    return true;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
