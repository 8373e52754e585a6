/**
 * The server's configuration in one step: `resolveServerConfig()` merges command-line flags,
 * `AGENTPOOL_*` environment variables and a config file (YAML or JSON) over the defaults, in that
 * order of precedence, and rejects a bad value with a message naming the field and where it came
 * from (`AGENTPOOL_PORT must be an integer from 1 to 65535, got "abc"`).
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { type GovernanceOptions, resolveGovernanceOptions } from '../governance/limits.ts';
import { PriceTable, type PriceTableOptions } from '../models/pricing.ts';
import { type ModelResilienceOptions, resolveModelResilienceOptions } from '../models/resilience-options.ts';
import { isPlainObject } from '../core/options.ts';
import { LOG_LEVELS, type LogLevel } from '../core/logger.ts';
import { type CorsOptions, originProblem, resolveCorsOptions } from '../server/cors.ts';
import { describeSyntaxError, syntaxErrorPosition } from './syntax-error.ts';

/** The configuration `agentpool serve` runs with, every field resolved. */
export interface ServerConfig {
  /** TCP port to listen on, 1..65535. @default 8787 */
  port: number;
  /** Interface to listen on; `0.0.0.0` exposes the server beyond this machine. @default '127.0.0.1' */
  host: string;
  /** Directory of the SQLite file (`agentpool.db`). @default './data' */
  dataDir: string;
  /** Where definitions, threads and runs live. @default 'sqlite' */
  store: 'sqlite' | 'memory';
  /** A YAML or JSON agents file applied at start; none when absent. */
  agentsFile?: string;
  /** How long shutdown waits for runs in flight before interrupting them, in ms. @default 10000 */
  shutdownTimeoutMs: number;
  /**
   * The admin key (≥ 16 characters): it manages projects and API keys and turns authentication
   * on. From `AGENTPOOL_ADMIN_KEY` or the config file only, never a flag (flags show in `ps`).
   */
  adminKey?: string;
  /**
   * The token Prometheus reads `/metrics` with (≥ 16 characters; it opens nothing else). From
   * `AGENTPOOL_METRICS_TOKEN` or the config file only, never a flag.
   */
  metricsToken?: string;
  /** Default quotas and budgets of projects (config file only). */
  governance?: GovernanceOptions;
  /** Model prices per million tokens over the built-in table, for costs and budgets (config file only). */
  prices?: NonNullable<PriceTableOptions['prices']>;
  /** Breaker, retries, timeout, bulkhead and rate limits around model calls (config file only). */
  resilience?: ModelResilienceOptions;
  /** The least severe log level written (fatal, error, warn, info, debug, trace, silent). @default 'info' */
  logLevel: LogLevel;
  /**
   * Browser origins allowed to call the API; off (no CORS headers) when absent. The variable
   * takes a comma-separated list (`AGENTPOOL_CORS_ORIGINS=https://app.example.com,http://localhost:5173`).
   */
  cors?: CorsOptions;
}

/** Settings that are objects, so they come from the config file only. */
const STRUCTURED_KEYS = ['governance', 'prices', 'resilience'] as const;

/** The defaults of {@link ServerConfig}. */
export const SERVER_CONFIG_DEFAULTS: Readonly<
  Omit<ServerConfig, 'agentsFile' | 'adminKey' | 'metricsToken' | 'cors' | (typeof STRUCTURED_KEYS)[number]>
> = Object.freeze({
  port: 8787,
  host: '127.0.0.1',
  dataDir: './data',
  store: 'sqlite',
  shutdownTimeoutMs: 10_000,
  logLevel: 'info',
});

/** Command-line flags as commander hands them over (strings), or typed values from code. */
export interface ServerFlags {
  port?: string | number;
  host?: string;
  dataDir?: string;
  store?: string;
  agentsFile?: string;
  shutdownTimeoutMs?: string | number;
  logLevel?: string;
  /** Path of the config file. */
  config?: string;
}

/** A config file already read: its path (for messages and relative paths) and parsed contents. */
export interface ConfigFile {
  path: string;
  values: unknown;
}

/** The inputs of {@link resolveServerConfig}, highest precedence first. */
export interface ServerConfigSources {
  flags?: ServerFlags;
  /** Usually `process.env`; empty variables count as unset. */
  env?: Readonly<Record<string, string | undefined>>;
  file?: ConfigFile;
}

type Key = Exclude<keyof ServerConfig, (typeof STRUCTURED_KEYS)[number]>;
type Source = 'flag' | 'env' | 'file';

/** The keys a config file may hold. */
export const CONFIG_FILE_KEYS: readonly (keyof ServerConfig)[] = [
  'port',
  'host',
  'dataDir',
  'store',
  'agentsFile',
  'shutdownTimeoutMs',
  'adminKey',
  'metricsToken',
  ...STRUCTURED_KEYS,
  'logLevel',
  'cors',
];

const FLAG_NAMES: Readonly<Partial<Record<Key, string>>> = {
  port: '--port',
  host: '--host',
  dataDir: '--data-dir',
  store: '--store',
  agentsFile: '--agents-file',
  shutdownTimeoutMs: '--shutdown-timeout-ms',
  logLevel: '--log-level',
};

/** The environment variable of each field. */
export const ENV_NAMES: Readonly<Record<Key, string>> = {
  port: 'AGENTPOOL_PORT',
  host: 'AGENTPOOL_HOST',
  dataDir: 'AGENTPOOL_DATA_DIR',
  store: 'AGENTPOOL_STORE',
  agentsFile: 'AGENTPOOL_AGENTS_FILE',
  shutdownTimeoutMs: 'AGENTPOOL_SHUTDOWN_TIMEOUT_MS',
  adminKey: 'AGENTPOOL_ADMIN_KEY',
  logLevel: 'AGENTPOOL_LOG_LEVEL',
  cors: 'AGENTPOOL_CORS_ORIGINS',
  metricsToken: 'AGENTPOOL_METRICS_TOKEN',
};

/** The environment variable naming the config file (the `--config` flag wins over it). */
export const CONFIG_ENV = 'AGENTPOOL_CONFIG';

/** Where a value came from, as messages name it. */
interface Origin {
  source: Source;
  /** `--port`, `AGENTPOOL_PORT` or `port in config file ./agentpool.yaml`. */
  label: string;
  /** Base for relative paths in a config file: its directory. */
  baseDir?: string;
}

function invalid(key: Key, origin: Origin, expected: string, value: unknown): never {
  const got = JSON.stringify(value) ?? String(value);
  throw new AgentPoolError('VALIDATION_FAILED', `${origin.label} must be ${expected}, got ${got}`, {
    field: key,
    source: origin.source,
    value: got,
  });
}

function intValue(key: Key, origin: Origin, value: unknown, min: number, max: number): number {
  const n =
    typeof value === 'string' && /^\d+$/.test(value.trim()) && origin.source !== 'file'
      ? Number(value.trim())
      : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    invalid(key, origin, `an integer from ${min} to ${max}`, value);
  }
  return n;
}

function stringValue(key: Key, origin: Origin, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') invalid(key, origin, 'a non-empty string', value);
  return value;
}

function pathValue(key: Key, origin: Origin, value: unknown): string {
  const path = stringValue(key, origin, value);
  return origin.baseDir === undefined ? path : resolve(origin.baseDir, path);
}

/** Checks one raw value for its field. */
function parseField(key: Key, origin: Origin, value: unknown): ServerConfig[Key] {
  switch (key) {
    case 'port':
      return intValue(key, origin, value, 1, 65_535);
    case 'shutdownTimeoutMs':
      return intValue(key, origin, value, 0, 3_600_000);
    case 'host':
      return stringValue(key, origin, value);
    case 'adminKey':
    case 'metricsToken': {
      const key16 = stringValue(key, origin, value);
      if (key16.length < 16) invalid(key, origin, 'a secret of at least 16 characters', '(too short)');
      return key16;
    }
    case 'dataDir':
    case 'agentsFile':
      return pathValue(key, origin, value);
    case 'store':
      if (value !== 'sqlite' && value !== 'memory') invalid(key, origin, 'one of "sqlite", "memory"', value);
      return value;
    case 'logLevel':
      if (!(LOG_LEVELS as readonly unknown[]).includes(value)) {
        invalid(key, origin, `one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`, value);
      }
      return value as LogLevel;
    case 'cors':
      return corsValue(origin, value);
  }
}

/** `cors`: a comma-separated list in the variable, `{ origins: [...] }` in the config file. */
function corsValue(origin: Origin, value: unknown): CorsOptions {
  if (origin.source !== 'file') {
    const origins = String(value)
      .split(',')
      .map((o) => o.trim())
      .filter((o) => o !== '');
    const wrong = origins.length === 0 || origins.some((o) => originProblem(o) !== undefined);
    if (wrong || (origins.includes('*') && origins.length > 1)) {
      invalid(
        'cors',
        origin,
        'a comma-separated list of origins like https://app.example.com, or "*"',
        value,
      );
    }
    return { origins };
  }
  try {
    resolveCorsOptions(value, 'cors');
  } catch (err) {
    if (!isAgentPoolError(err)) throw err;
    throw new AgentPoolError('VALIDATION_FAILED', `${origin.label}: ${err.message}`, {
      ...err.details,
      source: origin.source,
    });
  }
  return value as CorsOptions;
}

/** The config file's values, checked for shape and unknown keys. */
function fileValues(file: ConfigFile): Record<string, unknown> {
  if (file.values === null || file.values === undefined) return {}; // an empty file
  if (!isPlainObject(file.values)) {
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      `config file ${file.path} must hold an object of settings (${CONFIG_FILE_KEYS.join(', ')})`,
      { source: 'file', path: file.path },
    );
  }
  for (const key of Object.keys(file.values)) {
    if (!(CONFIG_FILE_KEYS as readonly string[]).includes(key)) {
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `config file ${file.path} has an unknown key ${JSON.stringify(key)} (known: ${CONFIG_FILE_KEYS.join(', ')})`,
        { field: key, source: 'file', path: file.path },
      );
    }
  }
  return file.values;
}

/**
 * Merges flags over environment variables over the config file over the defaults, validating
 * every value given. Relative paths in a config file are taken from the file's directory; those
 * of flags and variables from the working directory.
 */
export function resolveServerConfig(sources: ServerConfigSources = {}): ServerConfig {
  const flags = sources.flags ?? {};
  const env = sources.env ?? {};
  const file = sources.file === undefined ? {} : fileValues(sources.file);
  const fileDir = sources.file === undefined ? undefined : dirname(resolve(sources.file.path));

  const pick = <K extends Key>(key: K): ServerConfig[K] | undefined => {
    const flagName = FLAG_NAMES[key];
    const flag = flagName === undefined ? undefined : (flags as Record<string, unknown>)[key];
    if (flag !== undefined && flagName !== undefined) {
      return parseField(key, { source: 'flag', label: flagName }, flag) as ServerConfig[K];
    }
    const variable = env[ENV_NAMES[key]];
    if (variable !== undefined && variable !== '') {
      return parseField(key, { source: 'env', label: ENV_NAMES[key] }, variable) as ServerConfig[K];
    }
    if (file[key] !== undefined && sources.file !== undefined) {
      const origin: Origin = { source: 'file', label: `${key} in config file ${sources.file.path}` };
      if (fileDir !== undefined) origin.baseDir = fileDir;
      return parseField(key, origin, file[key]) as ServerConfig[K];
    }
    return undefined;
  };

  const agentsFile = pick('agentsFile');
  const adminKey = pick('adminKey');
  const cors = pick('cors');
  const metricsToken = pick('metricsToken');
  const structured = structuredSettings(file, sources.file?.path);
  return {
    ...structured,
    port: pick('port') ?? SERVER_CONFIG_DEFAULTS.port,
    host: pick('host') ?? SERVER_CONFIG_DEFAULTS.host,
    dataDir: pick('dataDir') ?? SERVER_CONFIG_DEFAULTS.dataDir,
    store: pick('store') ?? SERVER_CONFIG_DEFAULTS.store,
    ...(agentsFile !== undefined && { agentsFile }),
    shutdownTimeoutMs: pick('shutdownTimeoutMs') ?? SERVER_CONFIG_DEFAULTS.shutdownTimeoutMs,
    ...(adminKey !== undefined && { adminKey }),
    logLevel: pick('logLevel') ?? SERVER_CONFIG_DEFAULTS.logLevel,
    ...(cors !== undefined && { cors }),
    ...(metricsToken !== undefined && { metricsToken }),
  };
}

/** Validates the object settings of a config file now, so a bad one stops `serve` before it starts. */
function structuredSettings(
  file: Record<string, unknown>,
  path: string | undefined,
): Pick<ServerConfig, (typeof STRUCTURED_KEYS)[number]> {
  const out: Pick<ServerConfig, (typeof STRUCTURED_KEYS)[number]> = {};
  const check = (key: string, validate: () => void) => {
    try {
      validate();
    } catch (err) {
      if (!isAgentPoolError(err)) throw err;
      throw new AgentPoolError('VALIDATION_FAILED', `config file ${path}: ${err.message}`, {
        ...err.details,
        source: 'file',
        path,
        key,
      });
    }
  };
  if (file['governance'] !== undefined) {
    const governance = file['governance'] as GovernanceOptions;
    check('governance', () => resolveGovernanceOptions(governance));
    out.governance = governance;
  }
  if (file['prices'] !== undefined) {
    const prices = file['prices'] as NonNullable<PriceTableOptions['prices']>;
    check('prices', () => new PriceTable({ prices }));
    out.prices = prices;
  }
  if (file['resilience'] !== undefined) {
    const resilience = file['resilience'] as ModelResilienceOptions;
    check('resilience', () => resolveModelResilienceOptions(resilience));
    out.resilience = resilience;
  }
  return out;
}

/**
 * Reads a YAML or JSON file (`.json` parses as JSON, anything else as YAML, which JSON also is);
 * `what` names it in messages ("config file", "agents file").
 */
export function readStructuredFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    throw new AgentPoolError('VALIDATION_FAILED', `${what} ${path} ${reason}`, { path }, { cause: err });
  }
  const format = extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML';
  try {
    return format === 'JSON' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    // The line and column, and the offending line itself, so the mistake is found without an editor.
    const { line, column } = syntaxErrorPosition(err);
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      `${what} ${path} ${describeSyntaxError(text, err, format)}`,
      { path, ...(line !== undefined && { line, column }) },
      { cause: err },
    );
  }
}

/**
 * Resolves the configuration the way `agentpool serve` does: reads the config file named by
 * `--config` or `AGENTPOOL_CONFIG` when there is one, then calls {@link resolveServerConfig}.
 */
export function loadServerConfig(
  flags: ServerFlags,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ServerConfig {
  const envConfig = env[CONFIG_ENV];
  const path = flags.config ?? (envConfig !== undefined && envConfig !== '' ? envConfig : undefined);
  if (path === undefined) return resolveServerConfig({ flags, env });
  const what = flags.config !== undefined ? 'config file (--config)' : `config file (${CONFIG_ENV})`;
  return resolveServerConfig({ flags, env, file: { path, values: readStructuredFile(path, what) } });
}
