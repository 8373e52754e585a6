/**
 * Projects (tenants) and their API keys. A key is shown once, when it is created; only its
 * SHA-256 is stored, so a stolen store file holds no usable key. Keys are 160 random bits, so a
 * plain hash suffices (slow password hashes are for guessable secrets). The default project is a
 * record like any other (created at start when missing); whether a project exists is cached for a
 * few seconds, since authentication asks it of requests that name one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.ts';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { INPUT_LIMITS, parseMetadata, parseText } from '../core/input-limits.ts';
import { OldestKey } from '../core/oldest-key.ts';
import { intOption } from '../core/options.ts';
import { parseProjectLimits } from '../governance/limits.ts';
import { assertSlug, DEFAULT_PROJECT } from '../registry/definition.ts';
import {
  type ApiKeyInfo,
  type ProjectLimits,
  type ProjectRecord,
  type ProjectStore,
  projectExists,
  projectNotFound,
} from '../store/project-ports.ts';
import type { Page } from '../store/ports.ts';
import {
  countProjectContents,
  type DeletedProject,
  type ProjectDataDeps,
  projectNotEmpty,
  purgeProject,
} from './project-deletion.ts';

export type { DeletedProject, ProjectContents, ProjectDataDeps } from './project-deletion.ts';

/** How long the number of keys in use is trusted before it is counted again. */
const KEY_COUNT_TTL_MS = 5_000;

/** How often a key's `lastUsedAt` is written at most; each write is a store commit. */
const TOUCH_EVERY_MS = 60_000;

/** How long "project x exists (or not)" is trusted before the store is asked again. */
const EXISTS_TTL_MS = 5_000;

/** Projects whose existence is cached at most; beyond it the oldest answer is dropped. */
const MAX_CACHED_EXISTENCE = 10_000;

/** A key as created: the secret, shown this once, and its stored description. */
export interface CreatedApiKey {
  readonly key: string;
  readonly info: ApiKeyInfo;
}

/** The SHA-256 of a key, as stored. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Projects and API keys over a ProjectStore. */
export class Projects {
  readonly #store: ProjectStore;
  readonly #clock: Clock;
  /**
   * Keys in use, cached for a few seconds so that deciding "is authentication on?" costs no query
   * per request; changes made here reset it at once, changes by another process within seconds.
   */
  #activeKeys: { count: number; at: number } | undefined;
  readonly #onLimitsChanged: (project: string) => void;
  readonly #data: ProjectDataDeps;
  /** Recent answers of {@link exists}, bounded. */
  readonly #existence = new Map<string, { exists: boolean; at: number }>();
  readonly #oldestExistence = new OldestKey(this.#existence);
  /** Bumped by every deletion, so an existence read that raced one is not cached. */
  #deletions = 0;
  /** Deletions in progress, joined by a second request for the same project; bounded by admin requests. */
  readonly #deleting = new Map<string, Promise<DeletedProject>>();

  constructor(deps: {
    store: ProjectStore;
    clock: Clock;
    /** The project's agents, threads and runs, and the hooks that stop and forget a deleted project. */
    data: ProjectDataDeps;
    onLimitsChanged?: (project: string) => void;
  }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
    this.#data = deps.data;
    this.#onLimitsChanged = deps.onLimitsChanged ?? (() => undefined);
  }

  /** Creates a project; `PROJECT_EXISTS` when the id is taken. */
  async create(input: {
    id: unknown;
    name?: unknown;
    metadata?: unknown;
    limits?: unknown;
  }): Promise<ProjectRecord> {
    const id = assertSlug('id', input.id);
    const name = parseText('name', input.name ?? undefined, INPUT_LIMITS.displayNameLength) || id;
    const metadata = parseMetadata('metadata', input.metadata ?? undefined);
    const limits = input.limits === undefined ? {} : parseProjectLimits(input.limits);
    if (this.#deleting.has(id)) throw projectExists(id); // the old one is still being deleted
    const created = await this.#store.createProject({ id, name, metadata, limits, now: this.#clock.now() });
    this.#existence.delete(id);
    return created;
  }

  /**
   * Creates the project when it does not exist yet, and returns it either way. Several processes
   * on one store may do this at once: one creates it, the others read it.
   */
  async ensure(id: string): Promise<ProjectRecord> {
    const found = await this.#store.getProject(id);
    if (found !== undefined) return found;
    try {
      return await this.#store.createProject({
        id,
        name: id,
        metadata: {},
        limits: {},
        now: this.#clock.now(),
      });
    } catch (err) {
      if (!isAgentPoolError(err, 'PROJECT_EXISTS')) throw err;
      return this.get(id);
    }
  }

  /**
   * Whether a project exists, asked of the store at most every few seconds per project: a project
   * deleted in this process is forgotten at once, one created or deleted by another process is seen
   * within seconds. A project being deleted no longer exists.
   */
  async exists(id: string): Promise<boolean> {
    if (this.#deleting.has(id)) return false;
    const now = this.#clock.now();
    const cached = this.#existence.get(id);
    if (cached !== undefined && now - cached.at < EXISTS_TTL_MS) return cached.exists;
    const deletions = this.#deletions;
    const exists = (await this.#store.getProject(id)) !== undefined;
    if (deletions === this.#deletions && !this.#deleting.has(id)) {
      if (this.#existence.size >= MAX_CACHED_EXISTENCE) {
        this.#oldestExistence.evict();
      }
      this.#existence.set(id, { exists, at: now });
    }
    return exists && !this.#deleting.has(id);
  }

  /** A project; `PROJECT_NOT_FOUND` otherwise. */
  async get(id: string): Promise<ProjectRecord> {
    const project = await this.#store.getProject(id);
    if (project === undefined) throw projectNotFound(id);
    return project;
  }

  /**
   * Changes a project's quotas and budgets field by field: a field given replaces its value, a
   * field given as null returns to the pool's default, the rest stay. Takes effect at once here
   * (other processes within their limits cache time).
   */
  async updateLimits(id: string, patch: unknown): Promise<ProjectRecord> {
    const current = await this.get(id);
    const change = patch as {
      quotas?: Record<string, unknown> | null;
      budgets?: Record<string, unknown> | null;
      tiers?: Record<string, unknown> | null;
      retention?: Record<string, unknown> | null;
    };
    parseProjectLimits(patch); // field names and values, before merging
    const merge = (own: object | undefined, next: Record<string, unknown> | null | undefined) =>
      next === null ? undefined : { ...own, ...next };
    const limits: ProjectLimits = parseProjectLimits({
      quotas: merge(current.limits.quotas, change.quotas),
      budgets: merge(current.limits.budgets, change.budgets),
      tiers: merge(current.limits.tiers, change.tiers),
      retention: merge(current.limits.retention, change.retention),
    });
    const updated = await this.#store.setLimits(id, limits);
    if (updated === undefined) return this.get(id); // deleted meanwhile: PROJECT_NOT_FOUND
    this.#onLimitsChanged(id);
    return updated;
  }

  async list(options: { limit?: number; cursor?: string } = {}): Promise<Page<ProjectRecord>> {
    return this.#store.listProjects({
      limit: intOption('limit', options.limit, 50, 1, 1000),
      cursor: options.cursor,
    });
  }

  /**
   * Deletes a project. While it holds agents, threads or runs it is refused with
   * `PROJECT_NOT_EMPTY` (the counts in `details`), unless `cascade`: then its runs in flight are
   * cancelled, its instances retired, and its keys, runs, threads, messages and agents deleted in
   * bounded steps before the record. The default project cannot be deleted (`VALIDATION_FAILED`);
   * an unknown one is `PROJECT_NOT_FOUND`. From the start, the project no longer exists for
   * {@link exists} and its keys no longer authenticate.
   */
  async delete(id: string, options: { cascade?: boolean } = {}): Promise<DeletedProject> {
    if (id === DEFAULT_PROJECT) {
      throw validationError(
        'id',
        `"${DEFAULT_PROJECT}" cannot be deleted: it is the project of development mode`,
        {
          project: id,
        },
      );
    }
    const joined = this.#deleting.get(id);
    if (joined !== undefined) return joined;
    await this.get(id);
    const inFlight = this.#deleting.get(id); // another request got there while this one read
    if (inFlight !== undefined) return inFlight;
    // Starts on the next microtask, once registered: from then on the project is gone for exists().
    const deletion = Promise.resolve().then(() => this.#delete(id, options.cascade === true));
    this.#deleting.set(id, deletion);
    this.#deletions++;
    this.#existence.delete(id);
    try {
      return await deletion;
    } finally {
      this.#deleting.delete(id);
      this.#existence.delete(id);
      this.#activeKeys = undefined;
    }
  }

  async #delete(id: string, cascade: boolean): Promise<DeletedProject> {
    if (!cascade) {
      const contents = await countProjectContents(id, this.#data);
      if (contents.agents + contents.threads + contents.runs > 0) throw projectNotEmpty(id, contents);
    }
    return purgeProject(id, this.#store, this.#data);
  }

  /** Issues a key for a project; the secret is in the result and nowhere else. */
  async createKey(project: string, name = ''): Promise<CreatedApiKey> {
    parseText('name', name, INPUT_LIMITS.displayNameLength);
    await this.get(project);
    const key = `ap_${randomBytes(20).toString('base64url')}`;
    const now = this.#clock.now();
    const info = await this.#store.createKey({
      id: newId('key', now),
      project,
      prefix: key.slice(0, 8),
      keyHash: hashApiKey(key),
      name,
      now,
    });
    this.#activeKeys = undefined;
    return { key, info };
  }

  async listKeys(
    project: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<Page<ApiKeyInfo>> {
    await this.get(project);
    return this.#store.listKeys(project, {
      limit: intOption('limit', options.limit, 50, 1, 1000),
      cursor: options.cursor,
    });
  }

  /** Revokes a key of a project; `NOT_FOUND` when the project has no such key. */
  async revokeKey(project: string, keyId: string): Promise<void> {
    if (!(await this.#store.revokeKey(project, keyId, this.#clock.now()))) {
      throw new AgentPoolError('NOT_FOUND', `project ${project} has no key ${JSON.stringify(keyId)}`, {
        project,
        keyId,
      });
    }
    this.#activeKeys = undefined;
  }

  /** True when any key is in use: the server then requires one. */
  async hasKeys(): Promise<boolean> {
    const known = this.knownHasKeys();
    if (known !== undefined) return known;
    const now = this.#clock.now();
    this.#activeKeys = { count: await this.#store.countKeys(), at: now };
    return this.#activeKeys.count > 0;
  }

  /**
   * {@link hasKeys}'s answer while the count it comes from is still trusted, at once (the server
   * asks it of every request); undefined when the keys must be counted again.
   */
  knownHasKeys(): boolean | undefined {
    const counted = this.#activeKeys;
    if (counted === undefined || this.#clock.now() - counted.at > KEY_COUNT_TTL_MS) return undefined;
    return counted.count > 0;
  }

  /** The project a key belongs to, or undefined for an unknown or revoked key. */
  async authenticate(key: string): Promise<string | undefined> {
    const record = await this.#store.findKeyByHash(hashApiKey(key));
    if (record === undefined || this.#deleting.has(record.project)) return undefined;
    const now = this.#clock.now();
    if (record.lastUsedAt === null || now - record.lastUsedAt >= TOUCH_EVERY_MS) {
      void this.#store.touchKey(record.id, now).catch(() => undefined); // best effort, bookkeeping only
    }
    return record.project;
  }
}
