/**
 * The option families of the config file (`pool`, `tools`, `models`, …): each is validated by the
 * `resolve…Options()` of the module that owns it, so the config file accepts exactly what
 * `createAgentPool()` and `buildServer()` accept, checked the same way, with the same defaults.
 * This file maps a family's error field back to the config key (`server.http.maxJsonDepth` is
 * `http.maxJsonDepth` in the file), and gives each family's resolved values for `--print-config`.
 */
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { intOption } from '../core/options.ts';
import { type ClusterOptions, resolveClusterOptions } from '../coordination/cluster-options.ts';
import {
  type PostgresPoolOptions,
  postgresPoolOptions,
  resolvePostgresOptions,
} from '../store/postgres/options.ts';
import { resolveSqlitePoolOptions, type SqlitePoolOptions } from '../store/sqlite-stores.ts';
import { FeatureFlags, type FlagDefinition } from '../governance/flags.ts';
import { type GovernanceOptions, resolveGovernanceOptions } from '../governance/limits.ts';
import { type LiveFiguresOptions, resolveLiveFiguresOptions } from '../live-figures-options.ts';
import { type MetricsOptions, resolveMetricsOptions } from '../metrics-options.ts';
import { type ModelCatalogOptions, resolveModelCatalogOptions } from '../models/catalog-options.ts';
import { PriceTable, type PriceTableOptions } from '../models/pricing.ts';
import { type ModelResilienceOptions, resolveModelResilienceOptions } from '../models/resilience-options.ts';
import { type InstancePoolOptions, resolveInstancePoolOptions } from '../pool/pool-options.ts';
import { type AgentUsageOptions, resolveAgentUsageOptions } from '../registry/usage.ts';
import { resolveRunOptions, type RunOptions } from '../run/run-options.ts';
import { resolveRetentionOptions, type RetentionOptions } from '../run/retention-options.ts';
import { type CorsOptions, resolveCorsOptions } from '../server/cors.ts';
import { type HttpLimitsOptions, resolveHttpLimitsOptions } from '../server/http-limits.ts';
import { resolveToolCatalogOptions, type ToolCatalogOptions } from '../tools/catalog.ts';
import { formatPath, parsePath } from './settings.ts';

/** The tool settings a config file may hold (no tools, clock or fetch: those only code can give). */
export type ToolSettings = Pick<
  ToolCatalogOptions,
  | 'baseDir'
  | 'allowOutsideBaseDir'
  | 'maxModules'
  | 'reload'
  | 'maxModuleVersions'
  | 'maxReloads'
  | 'defaultTimeoutMs'
  | 'mcp'
> & {
  builtins?: Pick<
    NonNullable<ToolCatalogOptions['builtins']>,
    'fetchAllowlist' | 'fetchTimeoutMs' | 'fetchMaxBytes' | 'fetchMaxRedirects'
  >;
};

/** The model settings a config file may hold (no custom factories or env: those only code can give). */
export type ModelSettings = Pick<ModelCatalogOptions, 'providers' | 'maxCachedModels'>;

/** The option families and object settings of the config file, as given (after variables and flags). */
export interface FamilySettings {
  /** Largest request body accepted, in bytes. */
  bodyLimit?: number;
  /** Browser origins allowed to call the API; off (no CORS headers) when absent. */
  cors?: CorsOptions;
  /** Timeouts, connection caps and JSON depth of the HTTP server. */
  http?: HttpLimitsOptions;
  /** Bounds and ageing of live instances. */
  pool?: InstancePoolOptions;
  /** Bounds of runs, thread history and replay buffers. */
  runs?: RunOptions;
  /** How often ephemeral agents and threads past their ttl are deleted (ms). */
  ttlSweepIntervalMs?: number;
  /** How long runs and threads are kept, and how the retention sweep deletes what is older. */
  retention?: RetentionOptions;
  /** Tool module base directory, fetch allowlist and limits. */
  tools?: ToolSettings;
  /** Model providers: built-in ones and named OpenAI-compatible servers. */
  models?: ModelSettings;
  /** Breaker, retries, timeout, bulkhead and rate limits around model calls. */
  resilience?: ModelResilienceOptions;
  /** Model prices per million tokens over the built-in table. */
  prices?: NonNullable<PriceTableOptions['prices']>;
  /** Default quotas and budgets of projects. */
  governance?: GovernanceOptions;
  /** Named feature flags. */
  flags?: Record<string, FlagDefinition>;
  /** Per-agent Prometheus series and stats bounds. */
  metrics?: MetricsOptions;
  /** The window of live figures the dashboard and `agentpool top` show. */
  liveFigures?: LiveFiguresOptions;
  /** Agents' lastUsedAt writes. */
  agents?: AgentUsageOptions;
  /** The PostgreSQL stores' schema, connection pool and timeouts (store postgres). */
  postgres?: PostgresPoolOptions;
  /** How the SQLite store opens its file (store sqlite). */
  sqlite?: SqlitePoolOptions;
  /** A cluster node's tuning: heartbeats, leases, the event log, the queue (with redisUrl). */
  cluster?: Omit<ClusterOptions, 'nodeId' | 'address'>;
}

type Env = Readonly<Record<string, string | undefined>>;

// The two settings without a module of their own are checked here as `createAgentPool()` and
// `buildServer()` check them (a test pins these defaults to theirs); importing those modules would
// load the whole pool and fastify into every CLI command that reads the configuration.
/** `ServerOptions.bodyLimit`'s default. */
export const BODY_LIMIT_DEFAULT = 1024 * 1024;
/** `AgentPoolOptions.ttlSweepIntervalMs`'s default. */
export const TTL_SWEEP_INTERVAL_MS_DEFAULT = 60_000;

/** One family: how it is validated and resolved, and how its error fields map to config keys. */
interface Family {
  /** Validates the value as its owner does (throws its `VALIDATION_FAILED`); returns what is in force. */
  resolve(value: unknown, env: Env): unknown;
  /** The config key of a field as the family's errors name it. @default the field itself */
  configField?(field: string): string;
}

const replacePrefix = (from: string, to: string) => (field: string) =>
  field.startsWith(from) ? to + field.slice(from.length) : field;

/** The families, by their top-level key in the config file. */
export const FAMILIES: Readonly<Record<keyof FamilySettings, Family>> = {
  bodyLimit: { resolve: (value) => intOption('bodyLimit', value, BODY_LIMIT_DEFAULT, 1) },
  cors: {
    resolve: (value) => resolveCorsOptions(value, 'cors') ?? { origins: undefined },
  },
  http: {
    resolve: (value) => resolveHttpLimitsOptions(value as HttpLimitsOptions),
    configField: replacePrefix('server.http', 'http'),
  },
  pool: { resolve: (value) => resolveInstancePoolOptions(value as InstancePoolOptions) },
  runs: { resolve: (value) => resolveRunOptions(value as RunOptions) },
  ttlSweepIntervalMs: {
    resolve: (value) => intOption('ttlSweepIntervalMs', value, TTL_SWEEP_INTERVAL_MS_DEFAULT, 0),
  },
  retention: { resolve: (value) => resolveRetentionOptions(value as RetentionOptions) },
  tools: {
    resolve: (value) => {
      const {
        clock: _clock,
        tools: _tools,
        builtins,
        ...rest
      } = resolveToolCatalogOptions(value as ToolCatalogOptions);
      const { clock: _c, fetch: _f, ...fetchSettings } = builtins;
      return { ...rest, builtins: fetchSettings };
    },
  },
  models: {
    resolve: (value, env) => {
      const resolved = resolveModelCatalogOptions({ ...(value as ModelSettings), env });
      const providers: Record<string, unknown> = { ...resolved.providers };
      for (const [name, { name: _name, ...config }] of resolved.named) providers[name] = config;
      return { maxCachedModels: resolved.maxCachedModels, providers };
    },
    // The catalog names its fields from `providers`, and a bad variable it read as `env.<NAME>`.
    configField: (field) => (field.startsWith('env.') ? field : `models.${field}`),
  },
  resilience: {
    resolve: (value) => {
      const resolved = resolveModelResilienceOptions(value as ModelResilienceOptions);
      // Per-model entries as given: each overrides the defaults above field by field.
      return { ...resolved.defaults, models: (value as ModelResilienceOptions | undefined)?.models ?? {} };
    },
  },
  prices: {
    resolve: (value) => {
      new PriceTable({ prices: value as NonNullable<PriceTableOptions['prices']> });
      return value ?? {};
    },
  },
  governance: { resolve: (value) => resolveGovernanceOptions(value as GovernanceOptions) },
  flags: {
    resolve: (value) => {
      new FeatureFlags({ flags: value as Record<string, FlagDefinition> });
      return value ?? {};
    },
  },
  metrics: { resolve: (value) => resolveMetricsOptions(value as MetricsOptions) },
  liveFigures: { resolve: (value) => resolveLiveFiguresOptions(value as LiveFiguresOptions) },
  agents: { resolve: (value) => resolveAgentUsageOptions(value as AgentUsageOptions) },
  postgres: {
    resolve: (value) => {
      const given = postgresPoolOptions(value);
      const {
        databaseUrl: _url,
        nodeId: _node,
        ...resolved
      } = resolvePostgresOptions({ ...given, databaseUrl: 'postgres://localhost/agentpool' }, 'postgres.');
      return resolved;
    },
  },
  sqlite: { resolve: (value) => resolveSqlitePoolOptions(value) },
  cluster: {
    // Its id and address are the settings nodeId and nodeAddress: the table has no cluster.nodeId.
    resolve: (value) => {
      const {
        nodeId: _node,
        address: _address,
        ...resolved
      } = resolveClusterOptions(value as ClusterOptions | undefined);
      return resolved;
    },
  },
};

/** The top-level keys of {@link FAMILIES}. */
export const FAMILY_KEYS = Object.keys(FAMILIES) as (keyof FamilySettings)[];

/** Whether `key` is a family's top-level key. */
export function isFamilyKey(key: string): key is keyof FamilySettings {
  return Object.hasOwn(FAMILIES, key);
}

/**
 * A family's error, its field renamed to the config key and its message to where the value came
 * from: `pool.maxActive in config file ./x.yaml must be …`, `AGENTPOOL_MAX_ACTIVE must be …`.
 */
export function relabel(
  err: unknown,
  key: keyof FamilySettings,
  origins: ReadonlyMap<string, { readonly source: string; readonly label: string }>,
  filePath: string | undefined,
): unknown {
  if (!isAgentPoolError(err)) return err;
  const raw = typeof err.details.field === 'string' ? err.details.field : undefined;
  const field = raw === undefined ? undefined : (FAMILIES[key].configField?.(raw) ?? raw);
  const rest = raw !== undefined && err.message.startsWith(raw) ? err.message.slice(raw.length) : undefined;
  let name: string | undefined;
  let origin: { readonly source: string; readonly label: string } | undefined;
  let shown = field;
  if (field !== undefined && field.startsWith('env.')) {
    // A provider variable the model catalog read itself.
    name = field.slice('env.'.length);
    origin = { source: 'env', label: name };
  } else if (field !== undefined) {
    const path = parsePath(field);
    shown = formatPath(path);
    for (let n = path.length; n > 0 && origin === undefined; n--) {
      const found = origins.get(formatPath(path.slice(0, n)));
      if (found === undefined) continue;
      origin = found;
      const exact = n === path.length;
      name =
        found.source === 'file'
          ? `${shown} in config file ${filePath}`
          : exact
            ? found.label
            : `${found.label} (${shown})`;
    }
  }
  // A field the file lacks (a required one, or one checked against another) is still the file's.
  if (name === undefined && shown !== undefined && filePath !== undefined) {
    name = `${shown} in config file ${filePath}`;
  }
  const message =
    name !== undefined && rest !== undefined
      ? `${name}${rest}`
      : filePath !== undefined
        ? `config file ${filePath}: ${err.message}`
        : err.message;
  return new AgentPoolError(
    'VALIDATION_FAILED',
    message,
    {
      ...err.details,
      ...(shown !== undefined && { field: shown }),
      source: origin?.source ?? 'file',
      key,
      ...(filePath !== undefined && { path: filePath }),
    },
    { cause: err },
  );
}
