/**
 * The FlagStore port: the feature flags a pool evaluates (governance/runtime-flags.ts), persisted
 * so that a change made through one node reaches every node sharing the store, and their audit
 * trail (who changed which flag, from what to what, when). Each write of a flag appends one
 * change in the same transaction; a change's id is the flag's `revision`, increasing across all
 * flags, so {@link FlagStore.lastFlagChange} is a cheap test of "did anything change".
 * Also holds what every adapter shares: the row encoding and the revision check.
 */
import { AgentPoolError, validationError } from '../core/errors.ts';
import type { FlagStrategy, NamedFlag } from '../governance/flags.ts';
import { decodeCursor, encodeCursor } from './paging.ts';
import type { Page } from './ports.ts';

/** A flag as stored. */
export interface StoredFlag extends NamedFlag {
  readonly name: string;
  /** The id of the change that set it (see {@link FlagChange.id}). */
  readonly revision: number;
  /** Epoch ms of that change. */
  readonly updatedAt: number;
  /** Who made that change. */
  readonly updatedBy: string;
}

/** One audited change of a flag. */
export interface FlagChange {
  /** Increasing across every flag of the store: a later change has a larger id. */
  readonly id: number;
  readonly name: string;
  readonly action: 'put' | 'delete';
  /** The definition before (null: the flag did not exist). */
  readonly before: NamedFlag | null;
  /** The definition after (null: deleted). */
  readonly after: NamedFlag | null;
  /** Who: `admin` for the admin key, `config` for a flag seeded from the configuration, or the library caller's. */
  readonly actor: string;
  /** Epoch ms. */
  readonly at: number;
}

/** Who writes and when, and optionally the revision the writer saw. */
export interface FlagWrite {
  readonly actor: string;
  readonly at: number;
  /**
   * Write only if the flag's revision is this one (0: only if the flag does not exist);
   * `VERSION_CONFLICT` otherwise. @default any
   */
  readonly expectedRevision?: number;
}

/**
 * Feature flags and their history. Errors: `VERSION_CONFLICT` for a stale `expectedRevision`;
 * `STORE_FAILED` / `STORE_UNAVAILABLE` as the other stores. Names and definitions arrive
 * validated (runtime-flags.ts validates them).
 */
export interface FlagStore {
  /** Every flag, ordered by name. */
  listFlags(): Promise<StoredFlag[]>;
  getFlag(name: string): Promise<StoredFlag | undefined>;
  /** Creates or replaces a flag and appends the change; answers both. */
  putFlag(
    name: string,
    definition: NamedFlag,
    write: FlagWrite,
  ): Promise<{ flag: StoredFlag; change: FlagChange }>;
  /** Deletes a flag and appends the change; undefined (nothing appended) when it did not exist. */
  deleteFlag(name: string, write: FlagWrite): Promise<FlagChange | undefined>;
  /** A flag's changes, newest first; its history outlives a delete. */
  flagHistory(
    name: string,
    options: { limit: number; cursor?: string | undefined },
  ): Promise<Page<FlagChange>>;
  /** The id of the last change of any flag; 0 before the first. */
  lastFlagChange(): Promise<number>;
  /** Closes the store's use of its database (the last store closes it). */
  close(): Promise<void>;
}

const FLAG_HISTORY_CURSOR = 'flaghist';

/** The cursor of a history page that ended at change `id`. */
export function encodeFlagHistoryCursor(id: number): string {
  return encodeCursor(FLAG_HISTORY_CURSOR, String(id));
}

/** The change id a history cursor continues below; Infinity without one. */
export function decodeFlagHistoryCursor(cursor: string | undefined): number {
  if (cursor === undefined) return Infinity;
  const id = Number(decodeCursor(FLAG_HISTORY_CURSOR, cursor));
  if (!Number.isSafeInteger(id) || id < 1) throw validationError('cursor', 'is not a cursor of this listing');
  return id;
}

/** A definition as adapters store it: the strategy's fields and `startedAt`, as JSON. */
export function encodeFlag(definition: NamedFlag): string {
  return JSON.stringify({ ...definition.flag, startedAt: definition.startedAt });
}

/** A stored definition back. */
export function decodeFlag(data: string): NamedFlag {
  const { startedAt, ...flag } = JSON.parse(data) as FlagStrategy & { startedAt: number };
  return { flag: flag as FlagStrategy, startedAt };
}

/** A nullable stored definition back. */
function decodeOptionalFlag(data: string | null): NamedFlag | null {
  return data === null ? null : decodeFlag(data);
}

/** A row of `flags` as SQLite (numbers) or PostgreSQL (BIGINT as strings) answers it. */
export interface FlagRow {
  name: string;
  data: string;
  revision: string | number;
  updated_at: string | number;
  updated_by: string;
}

/** A row of `flag_history`, as {@link FlagRow}. */
export interface FlagChangeRow {
  id: string | number;
  name: string;
  action: 'put' | 'delete';
  before: string | null;
  after: string | null;
  actor: string;
  at: string | number;
}

/** A `flags` row as the flag it stores. */
export function flagFromRow(row: FlagRow): StoredFlag {
  return {
    name: row.name,
    ...decodeFlag(row.data),
    revision: Number(row.revision),
    updatedAt: Number(row.updated_at),
    updatedBy: row.updated_by,
  };
}

/** A `flag_history` row as the change it records. */
export function flagChangeFromRow(row: FlagChangeRow): FlagChange {
  return {
    id: Number(row.id),
    name: row.name,
    action: row.action,
    before: decodeOptionalFlag(row.before),
    after: decodeOptionalFlag(row.after),
    actor: row.actor,
    at: Number(row.at),
  };
}

/** Refuses a write whose `expectedRevision` is not the flag's (`current`: 0 when absent). */
export function checkFlagRevision(name: string, write: FlagWrite, current: number): void {
  if (write.expectedRevision === undefined || write.expectedRevision === current) return;
  throw new AgentPoolError(
    'VERSION_CONFLICT',
    current === 0
      ? `feature flag ${JSON.stringify(name)} does not exist (revision ${write.expectedRevision} was expected)`
      : `feature flag ${JSON.stringify(name)} is at revision ${current}, not ${write.expectedRevision}: it changed since it was read`,
    { flag: name, expectedRevision: write.expectedRevision, revision: current },
  );
}
