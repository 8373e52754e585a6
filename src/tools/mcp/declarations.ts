/**
 * MCP server declarations: what a project declares (`PUT /v1/mcp-servers/{name}`, the config file,
 * `apply -f`), how a declaration is validated, how it is shown back (secrets referenced from the
 * environment as `{ env }`, literal values of secret-looking headers and variables masked), and how
 * its secrets are resolved into a connection when a session opens.
 */
import { createHash } from 'node:crypto';
import { AgentPoolError, validationError } from '../../core/errors.ts';
import { isPlainObject, rejectUnknownKeys } from '../../core/options.ts';
import type { McpServerDeclaration, McpValue } from '../../store/mcp-server-ports.ts';
import type { ResolvedMcpOptions } from './mcp-options.ts';

/** Who writes a declaration: the admin key, the config file and the library are trusted. */
export interface DeclarationWriter {
  readonly admin: boolean;
}

/** A declaration's connection with its secrets read from the environment (never stored or shown). */
export type McpConnectionSpec =
  | { readonly transport: 'http'; readonly url: string; readonly headers: Record<string, string> }
  | {
      readonly transport: 'stdio';
      readonly command: string;
      readonly args: readonly string[];
      readonly env: Record<string, string>;
      readonly cwd: string | undefined;
    };

/**
 * Server names: letters, digits and `-` (no `_`, so the `<server>__<tool>` names the model sees split
 * one way only), at most 32 characters.
 */
export const MCP_SERVER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9-]{0,31}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const SECRET_LOOKING = /authorization|cookie|token|secret|password|passwd|api[-_]?key|key$|credential/i;
/** How a masked literal is shown. */
export const MASKED = '********';
const MAX_ENTRIES = 64;
const MAX_VALUE = 8192;

/** Refuses a server name the references and tool names could not carry. */
export function checkMcpServerName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || !MCP_SERVER_NAME.test(name)) {
    throw validationError(
      field,
      `must be 1 to 32 letters, digits and "-" starting with a letter or digit, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/**
 * Validates a declaration (`field` prefixes the names in errors) and returns a clean copy.
 * A project key may declare stdio servers only with `allowStdio: 'all'`, and may reference only
 * environment variables starting with `projectEnvPrefix` (`FORBIDDEN` otherwise).
 */
export function parseMcpServerDeclaration(
  body: unknown,
  writer: DeclarationWriter,
  options: ResolvedMcpOptions,
  field = 'mcpServer',
): McpServerDeclaration {
  if (!isPlainObject(body)) throw validationError(field, 'must be an object');
  const transport = body['transport'];
  const timeoutMs = optionalTimeout(body['timeoutMs'], `${field}.timeoutMs`);
  if (transport === 'http') {
    rejectUnknownKeys(`${field}.`, body, ['transport', 'url', 'headers', 'timeoutMs']);
    const url = checkUrl(body['url'], `${field}.url`);
    const headers = values(body['headers'], `${field}.headers`, HEADER_NAME, writer, options);
    return {
      transport,
      url,
      ...(headers !== undefined && { headers }),
      ...(timeoutMs !== undefined && { timeoutMs }),
    };
  }
  if (transport === 'stdio') {
    rejectUnknownKeys(`${field}.`, body, ['transport', 'command', 'args', 'env', 'cwd', 'timeoutMs']);
    if (options.allowStdio === 'none' || (options.allowStdio === 'admin' && !writer.admin)) {
      throw new AgentPoolError(
        'FORBIDDEN',
        `${field}: stdio MCP servers run a command on the agentpool host; ` +
          (options.allowStdio === 'none'
            ? 'they are disabled (tools.mcp.allowStdio is "none")'
            : 'declaring one needs the admin key (tools.mcp.allowStdio is "admin")'),
        { field: `${field}.transport`, allowStdio: options.allowStdio },
      );
    }
    const command = nonEmpty(body['command'], `${field}.command`);
    const args = body['args'];
    if (args !== undefined && (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))) {
      throw validationError(`${field}.args`, 'must be an array of strings');
    }
    const env = values(body['env'], `${field}.env`, ENV_NAME, writer, options);
    const cwd = body['cwd'] === undefined ? undefined : nonEmpty(body['cwd'], `${field}.cwd`);
    return {
      transport,
      command,
      ...(args !== undefined && { args: [...(args as string[])] }),
      ...(env !== undefined && { env }),
      ...(cwd !== undefined && { cwd }),
      ...(timeoutMs !== undefined && { timeoutMs }),
    };
  }
  throw validationError(`${field}.transport`, `must be "http" or "stdio", got ${JSON.stringify(transport)}`);
}

/** The declaration as shown back: `{ env }` references as they are, secret-looking literals masked. */
export function publicDeclaration(declaration: McpServerDeclaration): McpServerDeclaration {
  if (declaration.transport === 'http') {
    return declaration.headers === undefined
      ? declaration
      : { ...declaration, headers: masked(declaration.headers) };
  }
  return declaration.env === undefined ? declaration : { ...declaration, env: masked(declaration.env) };
}

/**
 * The connection of a declaration, its `{ env }` references read from `env` now: an unset variable
 * is `MCP_UNAVAILABLE` naming it (the tool call fails, the model is told).
 */
export function resolveConnection(
  server: string,
  declaration: McpServerDeclaration,
  env: NodeJS.ProcessEnv = process.env,
): McpConnectionSpec {
  const read = (entries: Readonly<Record<string, McpValue>> | undefined): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(entries ?? {})) {
      if (typeof value === 'string') {
        out[key] = value;
        continue;
      }
      const found = env[value.env];
      if (found === undefined) {
        throw new AgentPoolError(
          'MCP_UNAVAILABLE',
          `MCP server "${server}": the environment variable ${value.env} (for ${key}) is not set`,
          { server, env: value.env },
        );
      }
      out[key] = found;
    }
    return out;
  };
  if (declaration.transport === 'http') {
    return { transport: 'http', url: declaration.url, headers: read(declaration.headers) };
  }
  return {
    transport: 'stdio',
    command: declaration.command,
    args: declaration.args ?? [],
    env: read(declaration.env),
    cwd: declaration.cwd,
  };
}

/**
 * The identity of a session: the project, the server's name and its resolved connection, secrets
 * included, hashed, so two projects (or two credentials) never share a session or a tool list.
 */
export function identityKey(project: string, server: string, spec: McpConnectionSpec): string {
  return createHash('sha256')
    .update(JSON.stringify([project, server, spec]))
    .digest('hex')
    .slice(0, 32);
}

function masked(entries: Readonly<Record<string, McpValue>>): Record<string, McpValue> {
  const out: Record<string, McpValue> = {};
  for (const [key, value] of Object.entries(entries)) {
    out[key] = typeof value === 'string' && SECRET_LOOKING.test(key) ? MASKED : value;
  }
  return out;
}

function values(
  input: unknown,
  field: string,
  keyPattern: RegExp,
  writer: DeclarationWriter,
  options: ResolvedMcpOptions,
): Record<string, McpValue> | undefined {
  if (input === undefined) return undefined;
  if (!isPlainObject(input)) throw validationError(field, 'must be an object of names to values');
  const entries = Object.entries(input);
  if (entries.length > MAX_ENTRIES) throw validationError(field, `must have at most ${MAX_ENTRIES} entries`);
  const out: Record<string, McpValue> = {};
  for (const [key, value] of entries) {
    const at = `${field}.${key}`;
    if (!keyPattern.test(key)) throw validationError(at, `is not a valid name (${keyPattern.source})`);
    if (typeof value === 'string') {
      if (value.length > MAX_VALUE) throw validationError(at, `must be at most ${MAX_VALUE} characters`);
      if (value === MASKED) {
        throw validationError(at, 'is the masked value GET shows; send the real value or { "env": "VAR" }');
      }
      out[key] = value;
      continue;
    }
    if (!isPlainObject(value) || Object.keys(value).length !== 1 || typeof value['env'] !== 'string') {
      throw validationError(at, 'must be a string or { "env": "VARIABLE_NAME" }');
    }
    const name = value['env'];
    if (!ENV_NAME.test(name)) throw validationError(`${at}.env`, `is not a valid variable name`);
    if (!writer.admin && !name.startsWith(options.projectEnvPrefix)) {
      throw new AgentPoolError(
        'FORBIDDEN',
        `${at}.env: a project key may reference only environment variables starting with ` +
          `"${options.projectEnvPrefix}" (tools.mcp.projectEnvPrefix), got ${name}`,
        { field: `${at}.env`, prefix: options.projectEnvPrefix },
      );
    }
    out[key] = { env: name };
  }
  return out;
}

function checkUrl(value: unknown, field: string): string {
  if (typeof value !== 'string') throw validationError(field, 'must be an http: or https: URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw validationError(field, `must be an http: or https: URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw validationError(field, `must be an http: or https: URL, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonEmpty(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw validationError(field, 'must be a non-empty string');
  return value;
}

function optionalTimeout(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 3_600_000) {
    throw validationError(field, `must be an integer from 1 to 3600000 (ms), got ${JSON.stringify(value)}`);
  }
  return value;
}
