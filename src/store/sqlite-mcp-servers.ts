/**
 * The SQLite McpServerStore: each project's declared MCP servers as rows of `mcp_servers`, in the
 * file (WAL) the other stores use. A put is one upsert that keeps the row's `created_at`.
 */
import type Database from 'better-sqlite3';
import { intOption } from '../core/options.ts';
import {
  mcpServerRecord,
  type McpServerPut,
  type McpServerStore,
  type McpServerDeclaration,
  type McpServerRecord,
} from './mcp-server-ports.ts';
import { SqliteConnection, type SqliteStoreSource } from './sqlite-connection.ts';

/** Options of {@link SqliteMcpServerStore}: its file (`path`) or a database shared with the other stores. */
export type SqliteMcpServerStoreOptions = SqliteStoreSource & {
  /** How long a write waits for another connection's lock, ms (with `path`). @default 5000 */
  readonly busyTimeoutMs?: number | undefined;
};

interface Row {
  project: string;
  name: string;
  declaration: string;
  created_at: number;
  updated_at: number;
}

/** MCP server declarations in one SQLite file, through better-sqlite3. */
export class SqliteMcpServerStore implements McpServerStore {
  readonly #conn: SqliteConnection;
  readonly #put: Database.Statement<[string, string, string, number, number], Row>;
  readonly #get: Database.Statement<[string, string], Row>;
  readonly #list: Database.Statement<[string], Row>;
  readonly #delete: Database.Statement<[string, string]>;
  readonly #deleteProject: Database.Statement<[string]>;

  constructor(options: SqliteMcpServerStoreOptions) {
    const busyTimeoutMs = intOption('busyTimeoutMs', options.busyTimeoutMs, 5000, 0, 0x7fffffff);
    this.#conn = new SqliteConnection(options, busyTimeoutMs, 'MCP server store');
    [this.#put, this.#get, this.#list, this.#delete, this.#deleteProject] = this.#conn.prepare(
      (db) =>
        [
          db.prepare<[string, string, string, number, number], Row>(
            `INSERT INTO mcp_servers (project, name, declaration, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (project, name) DO UPDATE SET declaration = excluded.declaration, updated_at = excluded.updated_at
             RETURNING *`,
          ),
          db.prepare<[string, string], Row>('SELECT * FROM mcp_servers WHERE project = ? AND name = ?'),
          db.prepare<[string], Row>('SELECT * FROM mcp_servers WHERE project = ? ORDER BY name'),
          db.prepare<[string, string]>('DELETE FROM mcp_servers WHERE project = ? AND name = ?'),
          db.prepare<[string]>('DELETE FROM mcp_servers WHERE project = ?'),
        ] as const,
    );
  }

  async putMcpServer(
    project: string,
    name: string,
    declaration: McpServerDeclaration,
    now: number,
  ): Promise<McpServerPut> {
    const json = JSON.stringify(declaration);
    // One synchronous statement pair: nothing else runs on this connection in between.
    return this.#conn.guard(() => {
      const existed = this.#get.get(project, name) !== undefined;
      const row = this.#put.get(project, name, json, now, now) as Row;
      return { record: toRecord(row), created: !existed };
    });
  }

  async getMcpServer(project: string, name: string): Promise<McpServerRecord | undefined> {
    const row = this.#conn.guard(() => this.#get.get(project, name));
    return row === undefined ? undefined : toRecord(row);
  }

  async listMcpServers(project: string): Promise<McpServerRecord[]> {
    return this.#conn.guard(() => this.#list.all(project)).map(toRecord);
  }

  async deleteMcpServer(project: string, name: string): Promise<boolean> {
    return this.#conn.guard(() => this.#delete.run(project, name).changes > 0);
  }

  async deleteProjectMcpServers(project: string): Promise<number> {
    return this.#conn.guard(() => this.#deleteProject.run(project).changes);
  }

  async close(): Promise<void> {
    this.#conn.close();
  }
}

function toRecord(row: Row): McpServerRecord {
  return mcpServerRecord(row.project, row.name, row.declaration, row.created_at, row.updated_at);
}
