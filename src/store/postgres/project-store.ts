/**
 * The PostgreSQL ProjectStore: projects and their API keys, on the database the other stores
 * share. Every write is one statement (a project's keys go with it through ON DELETE CASCADE);
 * the hash lookup authentication does on each request is one probe of a unique index.
 */
import { boundedPage, decodeCursor, encodeCursor, keysetPage, pageLimit } from '../paging.ts';
import type { Page } from '../ports.ts';
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
} from '../project-ports.ts';
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase } from './database.ts';
import { foreignKeyViolation, uniqueViolation } from './errors.ts';
import { bytesBounded, PAGE_BUDGET } from './paging.ts';
import { type ApiKeyRow, type ProjectRow, toKey, toKeyInfo, toProject } from '../rows.ts';

/** A ProjectStore on a PostgreSQL database shared with the other stores (open.ts opens them together). */
export class PostgresProjectStore implements ProjectStore {
  readonly #conn: StoreConnection;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'project store');
  }

  async createProject(project: NewProject): Promise<ProjectRecord> {
    const row: ProjectRow = {
      id: project.id,
      name: project.name,
      metadata: JSON.stringify(project.metadata),
      limits: JSON.stringify(project.limits ?? {}),
      created_at: project.now,
    };
    await this.#conn.guard(async () => {
      try {
        await this.#conn.db.query(
          'INSERT INTO projects (id, name, metadata, limits, created_at) VALUES ($1, $2, $3, $4, $5)',
          [row.id, row.name, row.metadata, row.limits, row.created_at],
        );
      } catch (err) {
        if (uniqueViolation(err) !== undefined) throw projectExists(row.id);
        throw err;
      }
    });
    return toProject(row);
  }

  async getProject(id: string): Promise<ProjectRecord | undefined> {
    const [row] = await this.#conn.rows<ProjectRow>(
      'SELECT * FROM projects WHERE id = $1',
      [id],
      'project_get',
    );
    return row && toProject(row);
  }

  async listProjects(query: { limit: number; cursor?: string | undefined }): Promise<Page<ProjectRecord>> {
    const limit = pageLimit(query.limit);
    const after = query.cursor === undefined ? null : decodeCursor('project', query.cursor);
    const inner = 'SELECT * FROM projects WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2';
    const size = 'octet_length(q.name) + octet_length(q.metadata) + octet_length(q.limits)';
    const rows = await this.#conn.rows<ProjectRow>(bytesBounded(inner, 'q.id', size, '$3'), [
      after,
      limit + 1,
      PAGE_BUDGET,
    ]);
    return boundedPage(rows, limit, toProject, (r) => encodeCursor('project', r.id));
  }

  async setLimits(id: string, limits: ProjectLimits): Promise<ProjectRecord | undefined> {
    const [row] = await this.#conn.rows<ProjectRow>(
      'UPDATE projects SET limits = $1 WHERE id = $2 RETURNING *',
      [JSON.stringify(limits), id],
    );
    return row && toProject(row);
  }

  async deleteProject(id: string): Promise<boolean> {
    const result = await this.#conn.result('DELETE FROM projects WHERE id = $1', [id]);
    return (result.rowCount ?? 0) > 0;
  }

  async deleteKeys(project: string): Promise<number> {
    const result = await this.#conn.result('DELETE FROM api_keys WHERE project = $1', [project]);
    return result.rowCount ?? 0;
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
    await this.#conn.guard(async () => {
      try {
        await this.#conn.db.query(
          `INSERT INTO api_keys (id, project, prefix, key_hash, name, created_at, last_used_at, revoked_at)
           VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)`,
          [row.id, row.project, row.prefix, row.key_hash, row.name, row.created_at],
        );
      } catch (err) {
        if (foreignKeyViolation(err)) throw projectNotFound(key.project);
        const constraint = uniqueViolation(err);
        if (constraint === 'api_keys_pkey') throw keyIdTaken(key.id);
        if (constraint !== undefined) throw hashTaken();
        throw err;
      }
    });
    return toKeyInfo(row);
  }

  async findKeyByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.#conn.rows<ApiKeyRow>(
      'SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL',
      [keyHash],
      'key_by_hash',
    );
    return row && toKey(row);
  }

  async listKeys(
    project: string,
    query: { limit: number; cursor?: string | undefined },
  ): Promise<Page<ApiKeyInfo>> {
    const limit = pageLimit(query.limit);
    const before = query.cursor === undefined ? undefined : decodeKeyCursor(query.cursor);
    const rows =
      before === undefined
        ? await this.#conn.rows<ApiKeyRow>(
            'SELECT * FROM api_keys WHERE project = $1 ORDER BY created_at DESC, id DESC LIMIT $2',
            [project, limit + 1],
          )
        : await this.#conn.rows<ApiKeyRow>(
            `SELECT * FROM api_keys WHERE project = $1 AND (created_at, id) < ($2, $3)
             ORDER BY created_at DESC, id DESC LIMIT $4`,
            [project, before[0], before[1], limit + 1],
          );
    const p = keysetPage(rows, limit, (r) => encodeKeyCursor({ createdAt: r.created_at, id: r.id }));
    return { data: p.data.map(toKeyInfo), nextCursor: p.nextCursor };
  }

  async revokeKey(project: string, keyId: string, now: number): Promise<boolean> {
    // coalesce keeps the first revocation time when a key is revoked twice.
    const result = await this.#conn.result(
      'UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 AND project = $3',
      [now, keyId, project],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async touchKey(keyId: string, now: number): Promise<boolean> {
    // greatest keeps lastUsedAt monotonic when concurrent requests record use out of order.
    const result = await this.#conn.result(
      'UPDATE api_keys SET last_used_at = greatest(last_used_at, $1) WHERE id = $2',
      [now, keyId],
    );
    return (result.rowCount ?? 0) > 0;
  }

  async countKeys(): Promise<number> {
    const [row] = await this.#conn.rows<{ n: number }>(
      'SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL',
    );
    return row?.n ?? 0;
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}
