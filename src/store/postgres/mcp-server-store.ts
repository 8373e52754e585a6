/**
 * The PostgreSQL McpServerStore: each project's declared MCP servers as rows of `mcp_servers`, on
 * the database the other stores share, so every node of a cluster uses the same declarations. A
 * put is one upsert that keeps the row's `created_at` and says whether it inserted.
 */
import {
  type McpServerDeclaration,
  mcpServerRecord,
  type McpServerPut,
  type McpServerRecord,
  type McpServerStore,
} from '../mcp-server-ports.ts';
import { StoreConnection } from './connection.ts';
import type { PostgresDatabase } from './database.ts';

interface Row {
  project: string;
  name: string;
  declaration: string;
  created_at: string | number;
  updated_at: string | number;
}

/** MCP server declarations on a PostgreSQL database shared with the other stores. */
export class PostgresMcpServerStore implements McpServerStore {
  readonly #conn: StoreConnection;

  constructor(db: PostgresDatabase) {
    this.#conn = new StoreConnection(db, 'MCP server store');
  }

  async putMcpServer(
    project: string,
    name: string,
    declaration: McpServerDeclaration,
    now: number,
  ): Promise<McpServerPut> {
    // xmax is 0 on a row this statement inserted, and the updating transaction's id otherwise.
    const rows = await this.#conn.rows<Row & { inserted: boolean }>(
      `INSERT INTO mcp_servers (project, name, declaration, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (project, name) DO UPDATE SET declaration = excluded.declaration, updated_at = excluded.updated_at
       RETURNING *, (xmax = 0) AS inserted`,
      [project, name, JSON.stringify(declaration), now],
    );
    const row = rows[0]!;
    return { record: toRecord(row), created: row.inserted };
  }

  async getMcpServer(project: string, name: string): Promise<McpServerRecord | undefined> {
    const rows = await this.#conn.rows<Row>('SELECT * FROM mcp_servers WHERE project = $1 AND name = $2', [
      project,
      name,
    ]);
    return rows[0] === undefined ? undefined : toRecord(rows[0]);
  }

  async listMcpServers(project: string): Promise<McpServerRecord[]> {
    const rows = await this.#conn.rows<Row>('SELECT * FROM mcp_servers WHERE project = $1 ORDER BY name', [
      project,
    ]);
    return rows.map(toRecord);
  }

  async deleteMcpServer(project: string, name: string): Promise<boolean> {
    const result = await this.#conn.result('DELETE FROM mcp_servers WHERE project = $1 AND name = $2', [
      project,
      name,
    ]);
    return (result.rowCount ?? 0) > 0;
  }

  async deleteProjectMcpServers(project: string): Promise<number> {
    const result = await this.#conn.result('DELETE FROM mcp_servers WHERE project = $1', [project]);
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.#conn.close();
  }
}

function toRecord(row: Row): McpServerRecord {
  return mcpServerRecord(
    row.project,
    row.name,
    row.declaration,
    Number(row.created_at),
    Number(row.updated_at),
  );
}
