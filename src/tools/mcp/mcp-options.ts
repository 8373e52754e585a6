/**
 * The options of MCP tools (`tools.mcp.*`): session idle timeout, tool-list TTL, call and connect
 * timeouts, each server's breaker and reconnect backoff, the session bound, and who may declare
 * stdio servers. One resolve step applies the defaults and names the field of a bad value.
 */
import { validationError } from '../../core/errors.ts';
import { enumOption, intOption, objectOption } from '../../core/options.ts';

/**
 * Who may declare a stdio MCP server (it runs a command on the agentpool host): `admin` (the admin
 * key, the config file, `apply -f` with the admin key, the library API), `all` (project keys too),
 * or `none`.
 */
export type McpStdioPolicy = 'admin' | 'all' | 'none';

/** Options of MCP tools: `createAgentPool({ tools: { mcp } })`, the settings `tools.mcp.*`. */
export interface McpOptions {
  /** A session unused this long is closed (a stdio server's process ends); reopened on the next use. @default 300000 */
  idleTimeoutMs?: number;
  /** A cached tool list older than this is refreshed in the background; calls keep using it meanwhile. @default 300000 */
  listTtlMs?: number;
  /** Timeout of one tool call when the server's declaration gives none. @default 30000 */
  callTimeoutMs?: number;
  /** Timeout of opening a session (connect + initialize) and of listing its tools. @default 10000 */
  connectTimeoutMs?: number;
  /** Consecutive failures (connect errors, timeouts, transport errors) that open a server's breaker. @default 3 */
  breakerThreshold?: number;
  /** The first wait before a server whose breaker opened is tried again; doubles per failed retry, jittered. @default 1000 */
  backoffInitialMs?: number;
  /** The longest such wait. @default 60000 */
  backoffMaxMs?: number;
  /** Sessions (server and identity pairs) kept at most; the least recently used idle one closes first. @default 1000 */
  maxSessions?: number;
  /** Who may declare stdio servers (see {@link McpStdioPolicy}). @default 'admin' */
  allowStdio?: McpStdioPolicy;
  /**
   * Environment variables a project key's declarations may reference (`{ env: 'NAME' }`) must start
   * with this prefix, so a tenant cannot send the server's own secrets to a URL of its choosing; the
   * admin key and the config file may reference any variable. @default 'MCP_'
   */
  projectEnvPrefix?: string;
}

/** {@link McpOptions} with every default applied. */
export type ResolvedMcpOptions = { readonly [K in keyof McpOptions]-?: Exclude<McpOptions[K], undefined> };

const KNOWN = [
  'idleTimeoutMs',
  'listTtlMs',
  'callTimeoutMs',
  'connectTimeoutMs',
  'breakerThreshold',
  'backoffInitialMs',
  'backoffMaxMs',
  'maxSessions',
  'allowStdio',
  'projectEnvPrefix',
] as const;

/** Applies defaults and rejects bad values with a message naming the field. */
export function resolveMcpOptions(input: unknown = {}, prefix = 'tools.mcp'): ResolvedMcpOptions {
  const given = objectOption(prefix, input, KNOWN);
  const field = (name: string): string => `${prefix}.${name}`;
  const backoffInitialMs = intOption(field('backoffInitialMs'), given['backoffInitialMs'], 1000);
  const backoffMaxMs = intOption(field('backoffMaxMs'), given['backoffMaxMs'], 60_000);
  if (backoffMaxMs < backoffInitialMs) {
    intOption(field('backoffMaxMs'), backoffMaxMs, 0, backoffInitialMs); // names the field and the bound
  }
  const envPrefix = given['projectEnvPrefix'] ?? 'MCP_';
  if (typeof envPrefix !== 'string') throw validationError(field('projectEnvPrefix'), 'must be a string');
  return {
    idleTimeoutMs: intOption(field('idleTimeoutMs'), given['idleTimeoutMs'], 300_000),
    listTtlMs: intOption(field('listTtlMs'), given['listTtlMs'], 300_000),
    callTimeoutMs: intOption(field('callTimeoutMs'), given['callTimeoutMs'], 30_000),
    connectTimeoutMs: intOption(field('connectTimeoutMs'), given['connectTimeoutMs'], 10_000),
    breakerThreshold: intOption(field('breakerThreshold'), given['breakerThreshold'], 3),
    backoffInitialMs,
    backoffMaxMs,
    maxSessions: intOption(field('maxSessions'), given['maxSessions'], 1000),
    allowStdio: enumOption(field('allowStdio'), given['allowStdio'], ['admin', 'all', 'none'], 'admin'),
    projectEnvPrefix: envPrefix,
  };
}
