/**
 * The server's configuration in one step: `explainServerConfig()` merges command-line flags,
 * environment variables and a config file (YAML or JSON) over the defaults, in that order of
 * precedence, key by key, and rejects a bad value with a message naming the field and where it
 * came from (`AGENTPOOL_PORT must be an integer from 1 to 65535, got "abc"`,
 * `pool.maxActive in config file ./agentpool.yaml must be a positive integer, got -3`). It also
 * says where each value came from, for `agentpool serve --print-config`.
 *
 * The settings of `serve` itself are checked here; the option families (`pool`, `tools`, `models`,
 * …) are passed whole to the module that owns them and checked by its own `resolve…Options()`
 * (`config-families.ts`). Which keys exist, and their variables and flags, is `settings.ts`.
 */
import { dirname, resolve } from 'node:path';
import { AgentPoolError } from '../core/errors.ts';
import { isPlainObject } from '../core/options.ts';
import { LOG_LEVELS, type LogLevel } from '../core/logger.ts';
import { FAMILIES, FAMILY_KEYS, type FamilySettings, isFamilyKey, relabel } from './config-families.ts';
import {
  CONFIG_ENV,
  CONFIG_FILE_KEYS,
  formatPath,
  SERVE_DEFAULTS,
  type Setting,
  settingAt,
  SETTINGS,
} from './settings.ts';
import { readStructuredFile } from './structured-file.ts';

export { CONFIG_ENV, CONFIG_FILE_KEYS } from './settings.ts';
export { readStructuredFile } from './structured-file.ts';
export type { FamilySettings, ModelSettings, ToolSettings } from './config-families.ts';

/** The configuration `agentpool serve` runs with: its own settings resolved, the families as given. */
export interface ServerConfig extends FamilySettings {
  /** TCP port to listen on, 1..65535. @default 8787 */
  port: number;
  /** Interface to listen on; `0.0.0.0` exposes the server beyond this machine. @default '127.0.0.1' */
  host: string;
  /** Directory of the SQLite file (`agentpool.db`). @default './data' */
  dataDir: string;
  /** Where definitions, threads and runs live; `postgres` is what the nodes of a cluster share. @default 'sqlite' */
  store: 'sqlite' | 'memory' | 'postgres';
  /** The PostgreSQL database of store `postgres` (required with it). */
  databaseUrl?: string;
  /** The Redis the nodes of a cluster share (store `postgres` only); a single node without it. */
  redisUrl?: string;
  /** Prefix of every Redis key and channel. @default 'agentpool:' */
  redisPrefix?: string;
  /** This node's id in the cluster. @default node_ and random hex */
  nodeId?: string;
  /** The URL this node is reached at, as `GET /v1/cluster` lists it. @default http://host:port */
  nodeAddress?: string;
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
  /** The least severe log level written (fatal, error, warn, info, debug, trace, silent). @default 'info' */
  logLevel: LogLevel;
}

/** The settings of `serve` itself, checked here (the families check theirs). */
type ServeKey =
  | 'port'
  | 'host'
  | 'dataDir'
  | 'store'
  | 'databaseUrl'
  | 'redisUrl'
  | 'redisPrefix'
  | 'nodeId'
  | 'nodeAddress'
  | 'agentsFile'
  | 'shutdownTimeoutMs'
  | 'adminKey'
  | 'metricsToken'
  | 'logLevel';

/** The defaults of {@link ServerConfig}'s own settings (the families' are their modules'). */
export const SERVER_CONFIG_DEFAULTS: Readonly<
  Pick<
    ServerConfig,
    Exclude<
      ServeKey,
      | 'agentsFile'
      | 'adminKey'
      | 'metricsToken'
      | 'databaseUrl'
      | 'redisUrl'
      | 'redisPrefix'
      | 'nodeId'
      | 'nodeAddress'
    >
  >
> = SERVE_DEFAULTS;

/** Command-line flags as commander hands them over (strings), or typed values from code. */
export interface ServerFlags {
  port?: string | number;
  host?: string;
  dataDir?: string;
  store?: string;
  databaseUrl?: string;
  redisUrl?: string;
  redisPrefix?: string;
  nodeId?: string;
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

/** Where a value came from. */
export interface SettingOrigin {
  source: 'flag' | 'env' | 'file';
  /** `--port`, `AGENTPOOL_PORT` or `config file ./agentpool.yaml`. */
  label: string;
}

/** A configuration and where each value given came from (keys as `formatPath` writes them). */
export interface ExplainedServerConfig {
  config: ServerConfig;
  /** The origin of every value given by a flag, a variable or the config file; the rest are defaults. */
  origins: ReadonlyMap<string, SettingOrigin>;
  /** The config file read, if any. */
  configFile?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Where a value came from, as messages name it. */
interface Origin extends SettingOrigin {
  /** The name in messages: `--port`, `AGENTPOOL_PORT` or `port in config file ./agentpool.yaml`. */
  name: string;
  /** Base for relative paths in a config file: its directory. */
  baseDir?: string;
}

function invalid(key: ServeKey, origin: Origin, expected: string, value: unknown): never {
  const got = JSON.stringify(value) ?? String(value);
  throw new AgentPoolError('VALIDATION_FAILED', `${origin.name} must be ${expected}, got ${got}`, {
    field: key,
    source: origin.source,
    value: got,
  });
}

function intValue(key: ServeKey, origin: Origin, value: unknown, min: number, max: number): number {
  const n =
    typeof value === 'string' && /^\d+$/.test(value.trim()) && origin.source !== 'file'
      ? Number(value.trim())
      : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    invalid(key, origin, `an integer from ${min} to ${max}`, value);
  }
  return n;
}

function stringValue(key: ServeKey, origin: Origin, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') invalid(key, origin, 'a non-empty string', value);
  return value;
}

function pathValue(key: ServeKey, origin: Origin, value: unknown): string {
  const path = stringValue(key, origin, value);
  return origin.baseDir === undefined ? path : resolve(origin.baseDir, path);
}

/** Checks one raw value of a setting of `serve` itself. */
function parseField(key: ServeKey, origin: Origin, value: unknown): ServerConfig[ServeKey] {
  switch (key) {
    case 'port':
      return intValue(key, origin, value, 1, 65_535);
    case 'shutdownTimeoutMs':
      return intValue(key, origin, value, 0, 3_600_000);
    case 'host':
    case 'databaseUrl':
    case 'redisUrl':
    case 'redisPrefix':
    case 'nodeId':
    case 'nodeAddress':
      // The pool checks what each must look like, naming the field (databaseUrl, redisPrefix, …).
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
      if (value !== 'sqlite' && value !== 'memory' && value !== 'postgres') {
        invalid(key, origin, 'one of "sqlite", "memory", "postgres"', value);
      }
      return value;
    case 'logLevel':
      if (!(LOG_LEVELS as readonly unknown[]).includes(value)) {
        invalid(key, origin, `one of ${LOG_LEVELS.map((l) => `"${l}"`).join(', ')}`, value);
      }
      return value as LogLevel;
  }
}

/** A flag's or variable's text as the value its setting takes. */
function fromText(setting: Setting, text: string): unknown {
  switch (setting.text ?? 'string') {
    case 'int':
      // Anything else stays text, and the family refuses it with the range it expects.
      return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
    case 'list':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    default:
      return text;
  }
}

/** The config file's contents, checked for shape and unknown keys at every level. */
function fileValues(
  file: ConfigFile,
  visit: (path: string[], setting: Setting) => void,
): Record<string, unknown> {
  if (file.values === null || file.values === undefined) return {}; // an empty file
  if (!isPlainObject(file.values)) {
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      `config file ${file.path} must hold an object of settings (${CONFIG_FILE_KEYS.join(', ')})`,
      { source: 'file', path: file.path },
    );
  }
  const walk = (value: unknown, path: string[]): void => {
    const node = settingAt(path);
    if (node.kind === 'setting') return visit(path, node.setting);
    const shown = formatPath(path);
    if (node.kind === 'unknown') {
      const parent = settingAt(path.slice(0, -1));
      const known = parent.kind === 'group' ? parent.keys.join(', ') : '';
      const where = path.length === 1 ? 'known' : `known under ${formatPath(path.slice(0, -1))}`;
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `config file ${file.path} has an unknown key ${JSON.stringify(shown)} (${where}: ${known})`,
        { field: shown, source: 'file', path: file.path },
      );
    }
    if (!isPlainObject(value)) {
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `${shown} in config file ${file.path} must be an object of settings (${node.keys.join(', ')})`,
        { field: shown, source: 'file', path: file.path },
      );
    }
    for (const [key, child] of Object.entries(value)) walk(child, [...path, key]);
  };
  walk(file.values, []);
  return file.values;
}

function getAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, key) => (isPlainObject(v) ? v[key] : undefined), value);
}

/** Sets (or with `undefined`, deletes) the value at `path` of an object made of plain objects. */
function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (value === undefined && !isPlainObject(next)) return; // nothing there to delete
    node[key] = isPlainObject(next) ? next : {};
    node = node[key] as Record<string, unknown>;
  }
  const last = path.at(-1) as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

/**
 * Merges flags over environment variables over the config file over the defaults, validating
 * every value given, and records where each came from. Relative paths in a config file are taken
 * from the file's directory; those of flags and variables from the working directory.
 */
export function explainServerConfig(sources: ServerConfigSources = {}): ExplainedServerConfig {
  const flags = (sources.flags ?? {}) as Record<string, unknown>;
  const env: Env = sources.env ?? {};
  const origins = new Map<string, SettingOrigin>();
  const filePath = sources.file?.path;
  const fileDir = sources.file === undefined ? undefined : dirname(resolve(sources.file.path));
  const fileOrigin = (path: readonly string[]): Origin => ({
    source: 'file',
    label: `config file ${filePath}`,
    name: `${formatPath(path)} in config file ${filePath}`,
    ...(fileDir !== undefined && { baseDir: fileDir }),
  });
  const pathSettings: string[][] = [];
  const file =
    sources.file === undefined
      ? {}
      : fileValues(sources.file, (path, setting) => {
          origins.set(formatPath(path), { source: 'file', label: `config file ${filePath}` });
          if (setting.isPath === true && path.length > 1) pathSettings.push(path);
        });

  /** The flag or variable of a setting that is set, flag first. */
  const given = (setting: Setting): { origin: Origin; value: unknown } | undefined => {
    const flagKey = setting.path.length === 1 ? setting.path[0] : undefined;
    if (setting.flag !== undefined && flagKey !== undefined && flags[flagKey] !== undefined) {
      return { origin: { source: 'flag', label: setting.flag, name: setting.flag }, value: flags[flagKey] };
    }
    const text = setting.env === undefined ? undefined : env[setting.env];
    if (setting.env === undefined || text === undefined || text === '') return undefined;
    return { origin: { source: 'env', label: setting.env, name: setting.env }, value: text };
  };

  // The settings of serve itself.
  const serve: Partial<Record<ServeKey, unknown>> = {};
  for (const key of Object.keys(SERVE_SETTINGS) as ServeKey[]) {
    const setting = SERVE_SETTINGS[key];
    const picked = given(setting);
    if (picked !== undefined) {
      serve[key] = parseField(key, picked.origin, picked.value);
      origins.set(key, { source: picked.origin.source, label: picked.origin.label });
    } else if (file[key] !== undefined) {
      serve[key] = parseField(key, fileOrigin([key]), file[key]);
    }
  }

  // The families: the file's object with variables and flags over it, checked by its owner.
  const families: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(file))
    if (isFamilyKey(key)) families[key] = structuredClone(value);
  for (const path of pathSettings) {
    const value = getAt(families, path);
    // Anything but a path is left for the family to refuse, naming it.
    if (typeof value === 'string' && value !== '') setAt(families, path, resolve(fileDir as string, value));
  }
  for (const setting of SETTINGS) {
    const key = setting.path[0] as string;
    if (!isFamilyKey(key)) continue;
    const picked = given(setting);
    if (picked === undefined) continue;
    origins.set(formatPath(setting.path), { source: picked.origin.source, label: picked.origin.label });
    if (setting.path.length === 1) families[key] = fromText(setting, String(picked.value));
    // The family reads this variable itself: dropping the file's value lets the variable win.
    else if (setting.readByFamily === true) setAt(families, setting.path, undefined);
    else setAt(families, setting.path, fromText(setting, String(picked.value)));
  }
  // Every family, given or not: the model catalog also checks the provider variables it reads.
  for (const key of FAMILY_KEYS) {
    try {
      FAMILIES[key].resolve(families[key], env);
    } catch (err) {
      throw relabel(err, key, origins, filePath);
    }
  }

  const config = {
    ...families,
    port: serve.port ?? SERVE_DEFAULTS.port,
    host: serve.host ?? SERVE_DEFAULTS.host,
    dataDir: serve.dataDir ?? SERVE_DEFAULTS.dataDir,
    store: serve.store ?? SERVE_DEFAULTS.store,
    ...(serve.databaseUrl !== undefined && { databaseUrl: serve.databaseUrl }),
    ...(serve.redisUrl !== undefined && { redisUrl: serve.redisUrl }),
    ...(serve.redisPrefix !== undefined && { redisPrefix: serve.redisPrefix }),
    ...(serve.nodeId !== undefined && { nodeId: serve.nodeId }),
    ...(serve.nodeAddress !== undefined && { nodeAddress: serve.nodeAddress }),
    ...(serve.agentsFile !== undefined && { agentsFile: serve.agentsFile }),
    shutdownTimeoutMs: serve.shutdownTimeoutMs ?? SERVE_DEFAULTS.shutdownTimeoutMs,
    ...(serve.adminKey !== undefined && { adminKey: serve.adminKey }),
    ...(serve.metricsToken !== undefined && { metricsToken: serve.metricsToken }),
    logLevel: serve.logLevel ?? SERVE_DEFAULTS.logLevel,
  } as ServerConfig;
  return { config, origins, ...(filePath !== undefined && { configFile: filePath }) };
}

/** The settings of serve itself, by key. */
const SERVE_SETTINGS = Object.fromEntries(
  SETTINGS.filter((setting) => setting.path.length === 1 && !isFamilyKey(setting.path[0] as string)).map(
    (setting) => [setting.path[0], setting],
  ),
) as Record<ServeKey, Setting>;

/** Like {@link explainServerConfig}, the configuration alone. */
export function resolveServerConfig(sources: ServerConfigSources = {}): ServerConfig {
  return explainServerConfig(sources).config;
}

/**
 * Resolves the configuration the way `agentpool serve` does: reads the config file named by
 * `--config` or `AGENTPOOL_CONFIG` when there is one, then calls {@link explainServerConfig}.
 */
export function loadExplainedServerConfig(flags: ServerFlags, env: Env = process.env): ExplainedServerConfig {
  const envConfig = env[CONFIG_ENV];
  const path = flags.config ?? (envConfig !== undefined && envConfig !== '' ? envConfig : undefined);
  if (path === undefined) return explainServerConfig({ flags, env });
  const what = flags.config !== undefined ? 'config file (--config)' : `config file (${CONFIG_ENV})`;
  return explainServerConfig({ flags, env, file: { path, values: readStructuredFile(path, what) } });
}

/** Like {@link loadExplainedServerConfig}, the configuration alone. */
export function loadServerConfig(flags: ServerFlags, env: Env = process.env): ServerConfig {
  return loadExplainedServerConfig(flags, env).config;
}
