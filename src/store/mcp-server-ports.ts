/**
 * The McpServerStore port: the MCP servers each project declared (their shape here, their
 * validation in tools/mcp/declarations.ts), one record per project and server name, replaced whole
 * by a put. A cluster's nodes share it (PostgreSQL), so a declaration made through one node is used
 * by all. Also holds the encoding every adapter shares, so they store and read back the same JSON.
 */

/** A value read from the agentpool process's environment when a session opens, never stored or shown. */
export interface McpSecretRef {
  readonly env: string;
}

/** A header or environment value: literal, or a reference to an environment variable. */
export type McpValue = string | McpSecretRef;

/** A server reached over Streamable HTTP. */
export interface McpHttpServer {
  readonly transport: 'http';
  /** `http:` or `https:` URL of the server's MCP endpoint. */
  readonly url: string;
  /** Request headers (for example `Authorization`), each literal or `{ env: 'VAR' }`. */
  readonly headers?: Readonly<Record<string, McpValue>>;
  /** Timeout of one tool call, ms. @default tools.mcp.callTimeoutMs */
  readonly timeoutMs?: number;
}

/** A server run as a child process speaking MCP on its stdin and stdout. */
export interface McpStdioServer {
  readonly transport: 'stdio';
  readonly command: string;
  readonly args?: readonly string[];
  /** Environment of the process (added to a minimal safe environment), each literal or `{ env }`. */
  readonly env?: Readonly<Record<string, McpValue>>;
  /** Working directory of the process. @default the agentpool process's */
  readonly cwd?: string;
  /** Timeout of one tool call, ms. @default tools.mcp.callTimeoutMs */
  readonly timeoutMs?: number;
}

/** What a project declares for one MCP server. */
export type McpServerDeclaration = McpHttpServer | McpStdioServer;

/** A declared server as stored: its project, name and declaration. */
export interface McpServerRecord {
  readonly project: string;
  readonly name: string;
  readonly declaration: McpServerDeclaration;
  /** Epoch ms. */
  readonly createdAt: number;
  readonly updatedAt: number;
}

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
