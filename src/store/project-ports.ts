/**
 * The ProjectStore port: projects (the tenants) and their API keys, the storage behind API-key
 * auth. The store never sees a key, only its SHA-256 (computed by the caller) and an 8-character
 * prefix for display; listings leave even the hash out. Also holds the few checks and cursors
 * every adapter shares, so adapters agree on what they refuse (the conformance suite checks it).
 */
import { AgentPoolError, validationError } from '../core/errors.ts';
import { decodeCursor, encodeCursor } from './paging.ts';
import type { Page } from './ports.ts';

/** Per-project quotas: what the project may hold and do at once or per minute. Absent fields are unlimited. */
export interface QuotaLimits {
  readonly maxAgents?: number;
  readonly maxConcurrentRuns?: number;
  readonly runsPerMinute?: number;
  readonly tokensPerMinute?: number;
}

/** Per-project spending limits in USD (UTC day and calendar month, and per run). Absent fields are unlimited. */
export interface BudgetLimits {
  readonly dailyUsd?: number;
  readonly monthlyUsd?: number;
  readonly perRunUsd?: number;
}

/** How a project's agents are served (pool/tiers.ts). */
export interface TierSettings {
  /** The tier of the project's `auto` agents, instead of classifying them from traffic. */
  readonly default?: 'hot' | 'warm' | 'cold';
}

/** How long a project's data is kept (run/retention.ts), instead of the pool's `retention.days`. */
export interface RetentionSettings {
  /** Runs and threads idle longer than this many days are deleted; 0 keeps them. */
  readonly days?: number;
}

/** A project's own limits; what it leaves out comes from the pool's defaults (governance/limits.ts validates). */
export interface ProjectLimits {
  readonly quotas?: QuotaLimits;
  readonly budgets?: BudgetLimits;
  readonly tiers?: TierSettings;
  readonly retention?: RetentionSettings;
}

/** A project: the unit of isolation. Its id is a slug that every other record's `project` names. */
export interface ProjectRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: number;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Quotas and budgets set on this project. @default {} */
  readonly limits: ProjectLimits;
}

/** What {@link ProjectStore.createProject} needs. */
export interface NewProject {
  readonly id: string;
  readonly name: string;
  readonly metadata: Record<string, unknown>;
  /** @default {} */
  readonly limits?: ProjectLimits | undefined;
  readonly now: number;
}

/** One API key of a project, as stored: never the key itself. */
export interface ApiKeyRecord {
  /** `key_…`, chosen by the caller. */
  readonly id: string;
  readonly project: string;
  /** The first 8 characters of the key, so people can tell their keys apart. */
  readonly prefix: string;
  /** Lower-case hex SHA-256 of the full key, computed by the caller. */
  readonly keyHash: string;
  readonly name: string;
  readonly createdAt: number;
  /** When the key last authenticated a request, epoch ms; null if never. */
  readonly lastUsedAt: number | null;
  /** When it was revoked, epoch ms; null while it is valid. */
  readonly revokedAt: number | null;
}

/** An API key as listings and creation return it: without its hash. */
export type ApiKeyInfo = Omit<ApiKeyRecord, 'keyHash'>;

/** What {@link ProjectStore.createKey} needs; a new key is unused and not revoked. */
export interface NewApiKey {
  readonly id: string;
  readonly project: string;
  readonly prefix: string;
  readonly keyHash: string;
  readonly name: string;
  readonly now: number;
}

/**
 * Projects and their API keys.
 * Errors: `PROJECT_EXISTS` from createProject when the id is taken; `VALIDATION_FAILED` (field
 * `id`) from createKey when the key id is taken, (field `keyHash`) when the hash is malformed or already stored, (field `prefix`) when the prefix
 * is longer than 8 characters, and for a bad cursor or limit (1..1000); `PROJECT_NOT_FOUND` from createKey
 * when the project does not exist; `STORE_FAILED` after close or when the storage fails.
 */
export interface ProjectStore {
  createProject(project: NewProject): Promise<ProjectRecord>;
  getProject(id: string): Promise<ProjectRecord | undefined>;
  /** Every project ordered by id. */
  listProjects(query: { limit: number; cursor?: string | undefined }): Promise<Page<ProjectRecord>>;
  /** Replaces a project's limits; undefined when the project does not exist. */
  setLimits(id: string, limits: ProjectLimits): Promise<ProjectRecord | undefined>;
  /** Deletes a project and all its keys; false when it did not exist. */
  deleteProject(id: string): Promise<boolean>;
  /**
   * Deletes every key of a project, revoked ones included, and returns how many: the first step
   * of deleting a project, so that nobody acts in it while its data goes.
   */
  deleteKeys(project: string): Promise<number>;
  /** Stores a key of an existing project. */
  createKey(key: NewApiKey): Promise<ApiKeyInfo>;
  /** The key with this hash, unless it was revoked (or its project deleted): what authentication asks. */
  findKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined>;
  /** A project's keys, revoked ones included, newest first (createdAt, then id, descending). */
  listKeys(project: string, query: { limit: number; cursor?: string | undefined }): Promise<Page<ApiKeyInfo>>;
  /**
   * Revokes a key of `project`; false when there is no such key in that project. Revoking again
   * returns true and keeps the first `revokedAt`.
   */
  revokeKey(project: string, keyId: string, now: number): Promise<boolean>;
  /** Records that a key was used; `lastUsedAt` never moves back. False when the key is absent. */
  touchKey(keyId: string, now: number): Promise<boolean>;
  /** Keys not revoked, over every project; the server turns auth on when this is above zero. */
  countKeys(): Promise<number>;
  /** Releases connections and file handles; further calls fail. */
  close(): Promise<void>;
}

// ── shared by the adapters ──────────────────────────────────────────────────

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Refuses a key the store must not hold: a hash that is not SHA-256 hex (maybe the raw key) or a long prefix. */
export function checkNewApiKey(key: NewApiKey): void {
  if (typeof key.keyHash !== 'string' || !SHA256_HEX.test(key.keyHash)) {
    throw validationError('keyHash', 'must be the lower-case hex SHA-256 of the key (64 characters)');
  }
  if (typeof key.prefix !== 'string' || key.prefix.length > 8) {
    throw validationError('prefix', 'must be at most the first 8 characters of the key');
  }
}

/** The cursor after a key in newest-first order. */
export function encodeKeyCursor(key: { readonly createdAt: number; readonly id: string }): string {
  return encodeCursor('key', `${key.createdAt}:${key.id}`);
}

/** The `[createdAt, id]` a key-listing cursor continues before. */
export function decodeKeyCursor(cursor: string): [number, string] {
  const text = decodeCursor('key', cursor);
  const colon = text.indexOf(':');
  const createdAt = Number(text.slice(0, colon));
  if (colon < 1 || !Number.isFinite(createdAt))
    throw validationError('cursor', 'is not a cursor of this listing');
  return [createdAt, text.slice(colon + 1)];
}

/** A project id already in use. */
export function projectExists(id: string): AgentPoolError {
  return new AgentPoolError('PROJECT_EXISTS', `project ${JSON.stringify(id)} already exists`, {
    project: id,
  });
}

/** The catalogue has no KEY_EXISTS: key ids are generated, so a clash is a caller bug, a bad request. */
export function keyIdTaken(id: string): AgentPoolError {
  return validationError('id', `"${id}" is already taken by another key`, { id, kind: 'key' });
}

/** A key cannot be stored twice; the message does not repeat the hash. */
export function hashTaken(): AgentPoolError {
  return validationError('keyHash', 'is already stored for another key');
}

/** A project that does not exist. */
export function projectNotFound(id: string): AgentPoolError {
  return new AgentPoolError('PROJECT_NOT_FOUND', `project ${JSON.stringify(id)} not found`, { project: id });
}
