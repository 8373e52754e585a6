/**
 * The McpServerStore port: the MCP servers each project declared (tools/mcp/declarations.ts), one
 * record per project and server name, replaced whole by a put. A cluster's nodes share it
 * (PostgreSQL), so a declaration made through one node is used by all. Also holds the encoding
 * every adapter shares, so they store and read back the same JSON.
 */
import type { McpServerDeclaration, McpServerRecord } from '../tools/mcp/declarations.ts';

/** A put's outcome: the record as stored now, and whether it is new. */
export interface McpServerPut {
  readonly record: McpServerRecord;
  readonly created: boolean;
}

/**
 * The MCP server declarations of every project. Errors: `STORE_FAILED` / `STORE_UNAVAILABLE` as
 * the other stores; validation happens above (the adapters store what they are given).
 */
export interface McpServerStore {
  /**
   * Creates or replaces the declaration of `project`'s server `name` at `now` (epoch ms); a
   * replaced record keeps its `createdAt`.
   */
  putMcpServer(
    project: string,
    name: string,
    declaration: McpServerDeclaration,
    now: number,
  ): Promise<McpServerPut>;
  /** One declared server, or undefined. */
  getMcpServer(project: string, name: string): Promise<McpServerRecord | undefined>;
  /** A project's declared servers, by name. */
  listMcpServers(project: string): Promise<McpServerRecord[]>;
  /** Forgets one declared server; false when there was none. */
  deleteMcpServer(project: string, name: string): Promise<boolean>;
  /** Forgets every server of a project (the project is deleted); returns how many. */
  deleteProjectMcpServers(project: string): Promise<number>;
  /** Closes the store's use of its database (the last store closes it). */
  close(): Promise<void>;
}

/** A stored row as a record. */
export function mcpServerRecord(
  project: string,
  name: string,
  declaration: string,
  createdAt: number,
  updatedAt: number,
): McpServerRecord {
  return {
    project,
    name,
    declaration: JSON.parse(declaration) as McpServerDeclaration,
    createdAt,
    updatedAt,
  };
}
