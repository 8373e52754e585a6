/**
 * The in-memory FlagStore: flags and their history in process memory, for tests and pools on the
 * memory store. Bounded: the history keeps the last {@link MEMORY_FLAG_HISTORY} changes of each
 * name and the names of the last {@link MEMORY_FLAG_NAMES} changed flags; the flags themselves are
 * bounded by the runtime flags' own limit. No method awaits between its checks and its writes, so
 * each call is atomic.
 */
import { AgentPoolError } from '../core/errors.ts';
import type { NamedFlag } from '../governance/flags.ts';
import {
  checkFlagRevision,
  decodeFlagHistoryCursor,
  encodeFlagHistoryCursor,
  type FlagChange,
  type FlagStore,
  type FlagWrite,
  type StoredFlag,
} from './flag-ports.ts';
import { keysetPage, pageLimit } from './paging.ts';
import type { Page } from './ports.ts';

/** Changes kept per flag name. */
export const MEMORY_FLAG_HISTORY = 1000;
/** Flag names whose history is kept (the least recently changed is forgotten first). */
export const MEMORY_FLAG_NAMES = 10_000;

/** Feature flags in process memory. */
export class MemoryFlagStore implements FlagStore {
  readonly #flags = new Map<string, StoredFlag>();
  /** Changes by name, oldest first; the Map in order of each name's last change. */
  readonly #history = new Map<string, FlagChange[]>();
  #lastChange = 0;
  #closed = false;

  async listFlags(): Promise<StoredFlag[]> {
    this.#assertOpen();
    return [...this.#flags.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async getFlag(name: string): Promise<StoredFlag | undefined> {
    this.#assertOpen();
    return this.#flags.get(name);
  }

  async putFlag(
    name: string,
    definition: NamedFlag,
    write: FlagWrite,
  ): Promise<{ flag: StoredFlag; change: FlagChange }> {
    this.#assertOpen();
    const before = this.#flags.get(name);
    checkFlagRevision(name, write, before?.revision ?? 0);
    const change = this.#append(name, 'put', before, definition, write);
    const flag: StoredFlag = {
      name,
      flag: definition.flag,
      startedAt: definition.startedAt,
      revision: change.id,
      updatedAt: write.at,
      updatedBy: write.actor,
    };
    this.#flags.set(name, flag);
    return { flag, change };
  }

  async deleteFlag(name: string, write: FlagWrite): Promise<FlagChange | undefined> {
    this.#assertOpen();
    const before = this.#flags.get(name);
    checkFlagRevision(name, write, before?.revision ?? 0);
    if (before === undefined) return undefined;
    this.#flags.delete(name);
    return this.#append(name, 'delete', before, null, write);
  }

  async flagHistory(
    name: string,
    options: { limit: number; cursor?: string | undefined },
  ): Promise<Page<FlagChange>> {
    this.#assertOpen();
    const limit = pageLimit(options.limit);
    const below = decodeFlagHistoryCursor(options.cursor);
    const rows: FlagChange[] = [];
    const changes = this.#history.get(name) ?? [];
    for (let i = changes.length - 1; i >= 0 && rows.length <= limit; i--) {
      const change = changes[i] as FlagChange;
      if (change.id < below) rows.push(change);
    }
    return keysetPage(rows, limit, (last) => encodeFlagHistoryCursor(last.id));
  }

  async lastFlagChange(): Promise<number> {
    this.#assertOpen();
    return this.#lastChange;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #append(
    name: string,
    action: FlagChange['action'],
    before: NamedFlag | undefined,
    after: NamedFlag | null,
    write: FlagWrite,
  ): FlagChange {
    const change: FlagChange = {
      id: ++this.#lastChange,
      name,
      action,
      before: before === undefined ? null : { flag: before.flag, startedAt: before.startedAt },
      after: after === null ? null : { flag: after.flag, startedAt: after.startedAt },
      actor: write.actor,
      at: write.at,
    };
    const changes = this.#history.get(name) ?? [];
    this.#history.delete(name); // re-inserted last: the most recently changed name
    changes.push(change);
    if (changes.length > MEMORY_FLAG_HISTORY) changes.shift();
    this.#history.set(name, changes);
    if (this.#history.size > MEMORY_FLAG_NAMES) this.#history.delete(this.#history.keys().next().value!);
    return change;
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'the memory flag store is closed');
  }
}
