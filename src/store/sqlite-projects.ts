/**
 * The SQLite ProjectStore: projects and their API keys in the same file (WAL) as the agent and
 * run stores. Every write is one statement (a project's keys go with it through ON DELETE
 * CASCADE), so none needs an explicit transaction; the hash lookup authentication does on each
 * request is one probe of a UNIQUE index.
 */
import type Database from 'better-sqlite3';
import { intOption } from '../core/options.ts';
import { boundedPage, decodeCursor, encodeCursor, keysetPage, pageLimit } from './paging.ts';
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
import { type ApiKeyRow, type ProjectRow, toKey, toKeyInfo, toProject } from './rows.ts';
import { prepareProjectStatements } from './sqlite-schema.ts';
import { SqliteConnection, type SqliteStoreSource } from './sqlite-connection.ts';

/**
 * Options of {@link SqliteProjectStore}: its file (`path`; may be the agent store's) or a database
 * it shares with the other stores (`database`).
 */
export type SqliteProjectStoreOptions = SqliteStoreSource & {
  /**
   * How long a write waits for another connection's lock before failing, ms (with `path`; a shared
   * `database` has its own).
   * @default 5000
   */
  readonly busyTimeoutMs?: number | undefined;
};

/** A ProjectStore in one SQLite file, through better-sqlite3; shares the file with the other stores. */
export class SqliteProjectStore implements ProjectStore {
  readonly #conn: SqliteConnection;
  readonly #s: ReturnType<typeof prepareProjectStatements>;
  readonly #deleteKeys: Database.Statement<[string]>;

  constructor(options: SqliteProjectStoreOptions) {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    this.#conn = new SqliteConnection(options, busyTimeoutMs, 'project store');
    this.#s = this.#conn.prepare(prepareProjectStatements);
    // Served by api_keys_project_created; a project has a handful of keys.
    this.#deleteKeys = this.#conn.prepare((db) =>
      db.prepare<[string]>('DELETE FROM api_keys WHERE project = ?'),
    );
  }

  /** The file this store writes to. */
  get path(): string {
    return this.#conn.path;
  }

  async createProject(project: NewProject): Promise<ProjectRecord> {
    const row: ProjectRow = {
      id: project.id,
      name: project.name,
      metadata: JSON.stringify(project.metadata),
      limits: JSON.stringify(project.limits ?? {}),
      created_at: project.now,
    };
    return this.#conn.guard(() => {
      try {
        this.#s.insertProject.run(row);
      } catch (err) {
        if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw projectExists(row.id);
        throw err;
      }
      return toProject(row);
    });
  }

  async getProject(id: string): Promise<ProjectRecord | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.getProject.get(id);
      return row && toProject(row);
    });
  }

  async listProjects(query: { limit: number; cursor?: string | undefined }): Promise<Page<ProjectRecord>> {
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? undefined : decodeCursor('project', query.cursor);
    return this.#conn.guard(() => {
      const s = this.#s;
      const rows =
        after === undefined
          ? s.listProjectsFirst.iterate(limit + 1)
          : s.listProjectsAfter.iterate(after, limit + 1);
      return boundedPage(rows, limit, toProject, (r) => encodeCursor('project', r.id));
    });
  }

  async setLimits(id: string, limits: ProjectLimits): Promise<ProjectRecord | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.setLimits.get(JSON.stringify(limits), id);
      return row && toProject(row);
    });
  }

  async deleteProject(id: string): Promise<boolean> {
    return this.#conn.guard(() => this.#s.deleteProject.run(id).changes > 0);
  }

  async deleteKeys(project: string): Promise<number> {
    return this.#conn.guard(() => this.#deleteKeys.run(project).changes);
  }

  async createKey(key: NewApiKey): Promise<ApiKeyInfo> {
    checkNewApiKey(key);
    const row: ApiKeyRow = {
      id: key.id,
      project: key.project,
      prefix: key.prefix,
      key_hash: key.keyHash,
      name: key.name,
      created_at: key.now,
      last_used_at: null,
      revoked_at: null,
    };
    return this.#conn.guard(() => {
      try {
        this.#s.insertKey.run(row);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw projectNotFound(key.project);
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw keyIdTaken(key.id);
        if (code === 'SQLITE_CONSTRAINT_UNIQUE') throw hashTaken();
        throw err;
      }
      return toKeyInfo(row);
    });
  }

  async findKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    return this.#conn.guard(() => {
      const row = this.#s.findKeyByHash.get(keyHash);
      return row && toKey(row);
    });
  }

  async listKeys(
    project: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<ApiKeyInfo>> {
    const limit = pageLimit(query.limit);
    const before = query.cursor === undefined ? undefined : decodeKeyCursor(query.cursor);
    return this.#conn.guard(() => {
      const s = this.#s;
      const rows =
        before === undefined
          ? s.listKeysFirst.all(project, limit + 1)
          : s.listKeysAfter.all(project, before[0], before[1], limit + 1);
      const p = keysetPage(rows, limit, (r) => encodeKeyCursor({ createdAt: r.created_at, id: r.id }));
      return { data: p.data.map(toKeyInfo), nextCursor: p.nextCursor };
    });
  }

  async revokeKey(project: string, keyId: string, now: number): Promise<boolean> {
    return this.#conn.guard(() => this.#s.revokeKey.run(now, keyId, project).changes > 0);
  }

  async touchKey(keyId: string, now: number): Promise<boolean> {
    return this.#conn.guard(() => this.#s.touchKey.run({ id: keyId, at: now }).changes > 0);
  }

  async countKeys(): Promise<number> {
    return this.#conn.guard(() => this.#s.countKeys.get() as number);
  }

  async close(): Promise<void> {
    this.#conn.close();
  }
}
