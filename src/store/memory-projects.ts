/**
 * The in-memory ProjectStore: projects and API keys in process memory, for tests and
 * single-process deployments that need no durability. It holds what an admin creates until it is
 * deleted; projects and keys are few, so nothing else bounds it. Records are deep-copied on the
 * way in and out, and no method awaits between its checks and its writes, so each call is atomic.
 */
import { AgentPoolError } from '../core/errors.ts';
import { boundedPage, decodeCursor, encodeCursor, pageLimit } from './paging.ts';
import {
  type ApiKeyInfo,
  type ApiKeyRecord,
  checkNewApiKey,
  decodeKeyCursor,
  encodeKeyCursor,
  hashTaken,
  keyIdTaken,
  type NewApiKey,
  type NewProject,
  type ProjectLimits,
  type ProjectRecord,
  type ProjectStore,
  projectExists,
  projectNotFound,
} from './project-ports.ts';
import type { Page } from './ports.ts';
import { bound, insertSorted, removeSorted } from './sorted-keys.ts';

interface StoredKey {
  readonly id: string;
  readonly project: string;
  readonly prefix: string;
  readonly keyHash: string;
  readonly name: string;
  readonly createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface StoredProject {
  record: ProjectRecord;
  /** Its keys by id, so deleting the project deletes them. */
  readonly keys: Map<string, StoredKey>;
}

/** Newest first: createdAt descending, then id descending, the order of SQLite's keyset. */
function newestFirst(a: StoredKey, b: StoredKey): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** True when `key` comes after the cursor position `[createdAt, id]` in newest-first order. */
function isAfter(key: StoredKey, [createdAt, id]: [number, string]): boolean {
  return key.createdAt < createdAt || (key.createdAt === createdAt && key.id < id);
}

function info(key: StoredKey): ApiKeyInfo {
  return {
    id: key.id,
    project: key.project,
    prefix: key.prefix,
    name: key.name,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    revokedAt: key.revokedAt,
  };
}

/** A ProjectStore held in process memory; nothing survives the process. */
export class MemoryProjectStore implements ProjectStore {
  #closed = false;
  readonly #projects = new Map<string, StoredProject>();
  /** Project ids ascending, kept sorted on insert and delete so pages need no sort. */
  readonly #ids: string[] = [];
  readonly #keys = new Map<string, StoredKey>();
  /** Key ids by hash, revoked keys included: a hash is stored once. */
  readonly #byHash = new Map<string, string>();

  async createProject(project: NewProject): Promise<ProjectRecord> {
    this.#assertOpen();
    if (this.#projects.has(project.id)) throw projectExists(project.id);
    const record: ProjectRecord = {
      id: project.id,
      name: project.name,
      createdAt: project.now,
      metadata: structuredClone(project.metadata),
      limits: structuredClone(project.limits ?? {}),
    };
    this.#projects.set(record.id, { record, keys: new Map() });
    insertSorted(this.#ids, record.id);
    return structuredClone(record);
  }

  async setLimits(id: string, limits: ProjectLimits): Promise<ProjectRecord | undefined> {
    this.#assertOpen();
    const stored = this.#projects.get(id);
    if (stored === undefined) return undefined;
    stored.record = { ...stored.record, limits: structuredClone(limits) };
    return structuredClone(stored.record);
  }

  async getProject(id: string): Promise<ProjectRecord | undefined> {
    this.#assertOpen();
    const stored = this.#projects.get(id);
    return stored && structuredClone(stored.record);
  }

  async listProjects(query: { limit: number; cursor?: string | undefined }): Promise<Page<ProjectRecord>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const from =
      query.cursor === undefined ? 0 : bound(this.#ids, decodeCursor('project', query.cursor), false);
    return boundedPage(
      this.#ids.slice(from, from + limit + 1),
      limit,
      (id) => structuredClone((this.#projects.get(id) as StoredProject).record),
      (id) => encodeCursor('project', id),
    );
  }

  async deleteProject(id: string): Promise<boolean> {
    this.#assertOpen();
    const stored = this.#projects.get(id);
    if (stored === undefined) return false;
    for (const key of stored.keys.values()) {
      this.#keys.delete(key.id);
      this.#byHash.delete(key.keyHash);
    }
    this.#projects.delete(id);
    removeSorted(this.#ids, id);
    return true;
  }

  async deleteKeys(project: string): Promise<number> {
    this.#assertOpen();
    const keys = this.#projects.get(project)?.keys;
    if (keys === undefined) return 0;
    const n = keys.size;
    for (const key of keys.values()) {
      this.#keys.delete(key.id);
      this.#byHash.delete(key.keyHash);
    }
    keys.clear();
    return n;
  }

  async createKey(key: NewApiKey): Promise<ApiKeyInfo> {
    this.#assertOpen();
    checkNewApiKey(key);
    const project = this.#projects.get(key.project);
    if (project === undefined) throw projectNotFound(key.project);
    if (this.#keys.has(key.id)) throw keyIdTaken(key.id);
    if (this.#byHash.has(key.keyHash)) throw hashTaken();
    const stored: StoredKey = {
      id: key.id,
      project: key.project,
      prefix: key.prefix,
      keyHash: key.keyHash,
      name: key.name,
      createdAt: key.now,
      lastUsedAt: null,
      revokedAt: null,
    };
    this.#keys.set(stored.id, stored);
    this.#byHash.set(stored.keyHash, stored.id);
    project.keys.set(stored.id, stored);
    return info(stored);
  }

  async findKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    this.#assertOpen();
    const id = this.#byHash.get(keyHash);
    const key = id === undefined ? undefined : this.#keys.get(id);
    if (key === undefined || key.revokedAt !== null) return undefined;
    return { ...key };
  }

  async listKeys(
    project: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<ApiKeyInfo>> {
    this.#assertOpen();
    const limit = pageLimit(query.limit);
    const before = query.cursor === undefined ? undefined : decodeKeyCursor(query.cursor);
    // A project has a handful of keys, so sorting per listing is cheaper than keeping an index.
    let keys = [...(this.#projects.get(project)?.keys.values() ?? [])].sort(newestFirst);
    if (before !== undefined) keys = keys.filter((k) => isAfter(k, before));
    const data = keys.slice(0, limit).map(info);
    const more = keys.length > limit;
    return { data, nextCursor: more ? encodeKeyCursor(data[limit - 1] as ApiKeyInfo) : null };
  }

  async revokeKey(project: string, keyId: string, now: number): Promise<boolean> {
    this.#assertOpen();
    const key = this.#keys.get(keyId);
    if (key === undefined || key.project !== project) return false;
    key.revokedAt ??= now;
    return true;
  }

  async touchKey(keyId: string, now: number): Promise<boolean> {
    this.#assertOpen();
    const key = this.#keys.get(keyId);
    if (key === undefined) return false;
    key.lastUsedAt = key.lastUsedAt === null ? now : Math.max(key.lastUsedAt, now);
    return true;
  }

  async countKeys(): Promise<number> {
    this.#assertOpen();
    let n = 0;
    for (const key of this.#keys.values()) if (key.revokedAt === null) n++;
    return n;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#projects.clear();
    this.#ids.length = 0;
    this.#keys.clear();
    this.#byHash.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'MemoryProjectStore is closed');
  }
}
