/**
 * The effective configuration of `agentpool serve`, as `--print-config` shows it: every setting of
 * the table (`settings.ts`) with the value in force (each family's own resolver applies its
 * defaults) and where it came from: a flag, a variable, the config file, or the default. Secrets
 * (keys, tokens, header values) show only whether they are set, and from where.
 */
import { isPlainObject } from '../core/options.ts';
import type { ExplainedServerConfig, ServerConfig } from './config.ts';
import { FAMILIES, FAMILY_KEYS } from './config-families.ts';
import { formatPath, isFixedKey, isPlaceholder, type Setting, SETTINGS } from './settings.ts';

type Env = Readonly<Record<string, string | undefined>>;

/** One setting in force. */
export interface EffectiveSetting {
  /** `pool.maxActive`, `models.providers.vllm.baseURL`. */
  readonly key: string;
  /** The value; absent for a secret, null when unset. */
  readonly value?: unknown;
  /** For a secret: whether it is set. */
  readonly set?: boolean;
  readonly source: 'default' | 'flag' | 'env' | 'file';
  /** The flag, the variable or `config file <path>` it came from. */
  readonly from?: string;
  /** The default in words, when the value is the default and not one fixed value. */
  readonly defaultText?: string;
}

/** Every value in force, as one object shaped like the config file (each family resolved). */
export function effectiveValues(config: ServerConfig, env: Env): Record<string, unknown> {
  const tree: Record<string, unknown> = {
    port: config.port,
    host: config.host,
    dataDir: config.dataDir,
    store: config.store,
    agentsFile: config.agentsFile,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    logLevel: config.logLevel,
    adminKey: config.adminKey,
    metricsToken: config.metricsToken,
  };
  for (const key of FAMILY_KEYS) tree[key] = FAMILIES[key].resolve(config[key], env);
  return tree;
}

function getAt(value: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, key) => (isPlainObject(v) ? v[key] : undefined), value);
}

/** The concrete paths a setting's key stands for in `tree` (a placeholder: each key there). */
function expand(setting: Setting, tree: unknown): string[][] {
  let paths: string[][] = [[]];
  for (const segment of setting.path) {
    paths = paths.flatMap((path) => {
      if (!isPlaceholder(segment)) return [[...path, segment]];
      const node = getAt(tree, path);
      if (!isPlainObject(node)) return [];
      return Object.keys(node)
        .filter((key) => !isFixedKey(path, key))
        .map((key) => [...path, key]);
    });
  }
  return paths;
}

function hideValues(value: unknown): unknown {
  return isPlainObject(value) ? Object.fromEntries(Object.keys(value).map((k) => [k, '(hidden)'])) : value;
}

/** Every setting in force, in table order, a map's entries each on their own. */
export function effectiveSettings(explained: ExplainedServerConfig, env: Env): EffectiveSetting[] {
  const tree = effectiveValues(explained.config, env);
  const rows: EffectiveSetting[] = [];
  for (const setting of SETTINGS) {
    for (const path of expand(setting, tree)) {
      const key = formatPath(path);
      const value = getAt(tree, path);
      let origin = explained.origins.get(key);
      // A provider key read from a variable says which (the catalog read it, perhaps by apiKeyEnv).
      const keyEnv = path.at(-1) === 'apiKey' ? getAt(tree, [...path.slice(0, -1), 'apiKeyEnv']) : undefined;
      if (value !== undefined && typeof keyEnv === 'string') origin = { source: 'env', label: keyEnv };
      const shown =
        setting.secret === true
          ? { set: value !== undefined }
          : { value: setting.secret === 'values' ? hideValues(value) : (value ?? null) };
      rows.push({
        key,
        ...shown,
        ...(origin === undefined
          ? {
              source: 'default',
              ...(setting.defaultText !== undefined && { defaultText: setting.defaultText }),
            }
          : { source: origin.source, from: origin.label }),
      });
    }
  }
  return rows;
}

function describeValue(row: EffectiveSetting): string {
  if (row.set !== undefined) return row.set ? 'set' : 'unset';
  if (row.value === null && row.defaultText !== undefined) return row.defaultText;
  if (row.value === null) return 'unset';
  return JSON.stringify(row.value);
}

function describeSource(row: EffectiveSetting): string {
  switch (row.source) {
    case 'default':
      return 'default';
    case 'env':
      return `env ${row.from}`;
    default:
      return row.from ?? row.source;
  }
}

/** `--print-config`: one aligned line per setting (key, value, where it came from). */
export function formatEffectiveSettings(explained: ExplainedServerConfig, env: Env): string[] {
  const rows = effectiveSettings(explained, env);
  const file = explained.configFile === undefined ? 'no config file' : `config file ${explained.configFile}`;
  const cells = rows.map((row) => [row.key, describeValue(row), describeSource(row)] as const);
  const keyWidth = Math.max(...cells.map(([key]) => key.length));
  const valueWidth = Math.min(48, Math.max(...cells.map(([, value]) => value.length)));
  return [
    `# agentpool serve: effective configuration (flags > environment variables > ${file} > defaults)`,
    ...cells.map(([key, value, source]) => `${key.padEnd(keyWidth)}  ${value.padEnd(valueWidth)}  ${source}`),
  ];
}

/** `--print-config --json`: the same, as one JSON document. */
export function effectiveSettingsJson(explained: ExplainedServerConfig, env: Env): string {
  return JSON.stringify(
    {
      configFile: explained.configFile ?? null,
      precedence: ['flag', 'env', 'file', 'default'],
      settings: effectiveSettings(explained, env),
    },
    null,
    2,
  );
}
