/**
 * The in-memory WorkingSetStore: checkpoints live as long as the process (tests, and pools on the
 * memory store, whose definitions do not outlive the process either). Bounded by node ids.
 */
import { AgentPoolError } from '../core/errors.ts';
import {
  checkWorkingSetNode,
  decodeWorkingSet,
  encodeWorkingSet,
  type WorkingSetCheckpoint,
  type WorkingSetStore,
} from './working-set-ports.ts';

/** Nodes whose checkpoints are kept at most; a process hosts one or a few. */
const MAX_NODES = 1000;

/** Working-set checkpoints in process memory, stored as the other adapters store them (JSON). */
export class MemoryWorkingSetStore implements WorkingSetStore {
  readonly #rows = new Map<string, { savedAt: number; data: string }>();
  #closed = false;

  async saveWorkingSet(checkpoint: WorkingSetCheckpoint): Promise<void> {
    this.#assertOpen();
    const data = encodeWorkingSet(checkpoint);
    this.#rows.delete(checkpoint.node);
    this.#rows.set(checkpoint.node, { savedAt: checkpoint.savedAt, data });
    // the least recently saved node goes first
    if (this.#rows.size > MAX_NODES) this.#rows.delete(this.#rows.keys().next().value!);
  }

  async loadWorkingSet(node: string): Promise<WorkingSetCheckpoint | undefined> {
    this.#assertOpen();
    checkWorkingSetNode(node);
    const row = this.#rows.get(node);
    return row === undefined ? undefined : decodeWorkingSet(node, row.savedAt, row.data);
  }

  async deleteWorkingSet(node: string): Promise<boolean> {
    this.#assertOpen();
    checkWorkingSetNode(node);
    return this.#rows.delete(node);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'the memory working-set store is closed');
  }
}
