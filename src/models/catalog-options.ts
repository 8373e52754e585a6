/**
 * Options of the model catalog, their defaults and environment fallbacks, resolved in one step:
 * the built-in providers (`openai-compatible`, `openai`, `anthropic`), more OpenAI-compatible
 * servers by name (`vllm`, `ollama`, …), and custom providers built in code. Keys may be named by
 * the environment variable that holds them (`apiKeyEnv`), so they never sit in a config file.
 */
import type { LanguageModelV3 } from '@ai-sdk/provider';
import { validationError } from '../core/errors.ts';
import { boolOption, intOption, isPlainObject, objectOption, rejectUnknownKeys } from '../core/options.ts';

/** The providers built into the catalog; named and custom providers are added through options. */
export const BUILTIN_PROVIDERS = ['demo', 'openai-compatible', 'openai', 'anthropic'] as const;

/** What a named provider speaks. */
export const NAMED_PROVIDER_KINDS = ['openai-compatible'] as const;

/** Builds a model for a custom provider from the part after `provider/`. */
export type CustomModelFactory = (modelId: string) => LanguageModelV3;

/** Where a provider's key comes from, without the key: given in the options, or read from a variable. */
interface KeyOptions {
  /** The API key itself. Prefer `apiKeyEnv` in files: a key in a file is easily leaked. */
  apiKey?: string;
  /** The environment variable holding the API key, read once when the catalog is built (not with `apiKey`). */
  apiKeyEnv?: string;
}

/** Connection settings for any server speaking the OpenAI chat-completions protocol. */
export interface OpenAICompatibleProviderConfig extends KeyOptions {
  /** Base URL ending before `/chat/completions`, e.g. `http://localhost:11434/v1`. @default env AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL */
  baseURL?: string;
  /** Sent as `Authorization: Bearer …`; local servers often need none. @default env AGENTPOOL_OPENAI_COMPATIBLE_API_KEY */
  apiKey?: string;
  /** Provider name reported by the models (`<name>.chat`). @default 'openai-compatible' */
  name?: string;
  /** Extra headers sent with every request. @default {} */
  headers?: Record<string, string>;
  /**
   * Whether the server takes `response_format: { type: 'json_schema' }` (vLLM, Ollama, LM Studio,
   * LiteLLM do); false sends `json_object` with the schema left to the instructions. @default true
   */
  structuredOutputs?: boolean;
}

/** One more OpenAI-compatible server, by name: agents use `<name>/<model-id>`. */
export interface NamedProviderConfig extends KeyOptions {
  /** The protocol it speaks. @default 'openai-compatible' */
  kind?: (typeof NAMED_PROVIDER_KINDS)[number];
  /** Base URL ending before `/chat/completions`, e.g. `http://gpu-1:8000/v1`. Required. */
  baseURL: string;
  /** Extra headers sent with every request. @default {} */
  headers?: Record<string, string>;
  /** Whether the server takes `json_schema` response formats; false falls back to `json_object`. @default true */
  structuredOutputs?: boolean;
}

/** Settings of the OpenAI provider (chat-completions API). */
export interface OpenAIProviderConfig extends KeyOptions {
  /** @default env OPENAI_API_KEY */
  apiKey?: string;
  /** @default env OPENAI_BASE_URL, else 'https://api.openai.com/v1' */
  baseURL?: string;
}

/** Settings of the Anthropic provider (messages API). */
export interface AnthropicProviderConfig extends KeyOptions {
  /** @default env ANTHROPIC_API_KEY */
  apiKey?: string;
  /** @default env ANTHROPIC_BASE_URL, else 'https://api.anthropic.com/v1' */
  baseURL?: string;
}

/**
 * Per-provider configuration; any field of a built-in provider left out falls back to its
 * environment variable. Any other key names one more OpenAI-compatible server.
 */
export interface ModelProvidersConfig {
  'openai-compatible'?: OpenAICompatibleProviderConfig;
  openai?: OpenAIProviderConfig;
  anthropic?: AnthropicProviderConfig;
  [name: string]:
    | NamedProviderConfig
    | OpenAICompatibleProviderConfig
    | OpenAIProviderConfig
    | AnthropicProviderConfig
    | undefined;
}

/** Options of the model catalog. */
export interface ModelCatalogOptions {
  /** Provider settings; fields left out fall back to environment variables. @default {} */
  providers?: ModelProvidersConfig;
  /**
   * Extra providers by name, e.g. in-process mocks for tests. A custom provider named like a
   * built-in or named one replaces it, so `openai/gpt-4o` can be served by a mock and still be priced.
   * @default {}
   */
  custom?: Record<string, CustomModelFactory>;
  /** Where environment fallbacks are read from, once, at construction. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Most resolved models kept; the least recently resolved is dropped beyond it. @default 10000 */
  maxCachedModels?: number;
}

/** A provider's key as resolved: the key, and the variable it was read from (undefined: given in the options). */
export interface ResolvedKey {
  readonly apiKey: string | undefined;
  /** The variable the key was (or was to be) read from; undefined when the options gave it or nothing did. */
  readonly apiKeyEnv: string | undefined;
}

/** An OpenAI-compatible server's settings with every default applied. */
export interface ResolvedOpenAICompatibleConfig extends ResolvedKey {
  readonly baseURL: string | undefined;
  readonly name: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly structuredOutputs: boolean;
}

/** A named provider with every default applied. */
export interface ResolvedNamedProviderConfig extends ResolvedOpenAICompatibleConfig {
  readonly kind: (typeof NAMED_PROVIDER_KINDS)[number];
  readonly baseURL: string;
}

/** The catalog options with every default and environment fallback applied. */
export interface ResolvedModelCatalogOptions {
  readonly providers: {
    readonly 'openai-compatible': ResolvedOpenAICompatibleConfig;
    readonly openai: ResolvedKey & { readonly baseURL: string };
    readonly anthropic: ResolvedKey & { readonly baseURL: string };
  };
  /** The named OpenAI-compatible servers, by name. */
  readonly named: ReadonlyMap<string, ResolvedNamedProviderConfig>;
  readonly custom: ReadonlyMap<string, CustomModelFactory>;
  readonly maxCachedModels: number;
}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const OPENAI_DEFAULT_URL = 'https://api.openai.com/v1';
const ANTHROPIC_DEFAULT_URL = 'https://api.anthropic.com/v1';
const COMPAT_FIELDS = ['baseURL', 'apiKey', 'apiKeyEnv', 'name', 'headers', 'structuredOutputs'] as const;
const NAMED_FIELDS = ['kind', 'baseURL', 'apiKey', 'apiKeyEnv', 'headers', 'structuredOutputs'] as const;
const HOSTED_FIELDS = ['apiKey', 'apiKeyEnv', 'baseURL'] as const;

// Empty strings count as unset: `FOO= node app.ts` should behave like no FOO at all.
function str(field: string, value: unknown): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw validationError(field, `must be a string, got ${typeof value}`);
  return value;
}

function url(field: string, value: unknown): string | undefined {
  const s = str(field, value);
  if (s !== undefined && !URL.canParse(s)) {
    throw validationError(field, `must be an absolute URL, got ${JSON.stringify(s)}`);
  }
  return s;
}

function headersOption(field: string, value: unknown): Record<string, string> {
  const record = objectOption(field, value);
  for (const [k, v] of Object.entries(record)) {
    if (typeof v !== 'string') throw validationError(`${field}.${k}`, `must be a string, got ${typeof v}`);
  }
  return { ...(record as Record<string, string>) };
}

/**
 * The key of one provider: `apiKey` given, else the variable `apiKeyEnv` names (only that one),
 * else the provider's usual variable (`fallbackEnv`), when it has one.
 */
function keyOption(
  prefix: string,
  o: Record<string, unknown>,
  env: Readonly<Record<string, string | undefined>>,
  fallbackEnv: string | undefined,
): ResolvedKey {
  const apiKey = str(`${prefix}.apiKey`, o['apiKey']);
  const named = str(`${prefix}.apiKeyEnv`, o['apiKeyEnv']);
  if (named !== undefined && !ENV_NAME.test(named)) {
    throw validationError(
      `${prefix}.apiKeyEnv`,
      `must be an environment variable name, got ${JSON.stringify(named)}`,
    );
  }
  if (apiKey !== undefined && named !== undefined) {
    throw validationError(`${prefix}.apiKeyEnv`, 'cannot be given with apiKey: one says where the key is');
  }
  if (apiKey !== undefined) return { apiKey, apiKeyEnv: undefined };
  const variable = named ?? fallbackEnv;
  if (variable === undefined) return { apiKey: undefined, apiKeyEnv: undefined };
  return { apiKey: str(`env.${variable}`, env[variable]), apiKeyEnv: variable };
}

function namedProvider(
  name: string,
  input: unknown,
  env: Readonly<Record<string, string | undefined>>,
): ResolvedNamedProviderConfig {
  const prefix = `providers.${name}`;
  if (!PROVIDER_NAME.test(name)) {
    throw validationError(prefix, 'must be a provider name of lower-case letters, digits, ".", "_" or "-"');
  }
  if ((BUILTIN_PROVIDERS as readonly string[]).includes(name)) {
    throw validationError(prefix, "is a built-in provider and takes that provider's settings");
  }
  if (!isPlainObject(input)) {
    throw validationError(
      prefix,
      `must be an object { kind: "openai-compatible", baseURL, apiKey | apiKeyEnv, headers, structuredOutputs } (built-in providers: ${BUILTIN_PROVIDERS.join(', ')})`,
    );
  }
  rejectUnknownKeys(`${prefix}.`, input, NAMED_FIELDS);
  const kind = input['kind'] ?? 'openai-compatible';
  if (!(NAMED_PROVIDER_KINDS as readonly unknown[]).includes(kind)) {
    throw validationError(
      `${prefix}.kind`,
      `must be one of ${NAMED_PROVIDER_KINDS.map((k) => `"${k}"`).join(', ')}, got ${JSON.stringify(kind)}`,
    );
  }
  const baseURL = url(`${prefix}.baseURL`, input['baseURL']);
  if (baseURL === undefined) throw validationError(`${prefix}.baseURL`, "is required (the server's /v1 URL)");
  return {
    kind: kind as ResolvedNamedProviderConfig['kind'],
    baseURL,
    ...keyOption(prefix, input, env, undefined),
    name,
    headers: headersOption(`${prefix}.headers`, input['headers']),
    structuredOutputs: boolOption(`${prefix}.structuredOutputs`, input['structuredOutputs'], true),
  };
}

/** Applies defaults and environment fallbacks (read once, here) and rejects bad values by field name. */
export function resolveModelCatalogOptions(options: ModelCatalogOptions = {}): ResolvedModelCatalogOptions {
  rejectUnknownKeys('', options, ['providers', 'custom', 'env', 'maxCachedModels']);
  const env = options.env ?? process.env;
  const providers = objectOption('providers', options.providers);
  const compat = objectOption('providers.openai-compatible', providers['openai-compatible'], COMPAT_FIELDS);
  const openai = objectOption('providers.openai', providers['openai'], HOSTED_FIELDS);
  const anthropic = objectOption('providers.anthropic', providers['anthropic'], HOSTED_FIELDS);

  const named = new Map<string, ResolvedNamedProviderConfig>();
  for (const [name, config] of Object.entries(providers)) {
    if (name === 'openai-compatible' || name === 'openai' || name === 'anthropic') continue;
    named.set(name, namedProvider(name, config, env));
  }

  const custom = new Map<string, CustomModelFactory>();
  for (const [name, factory] of Object.entries(objectOption('custom', options.custom))) {
    if (!PROVIDER_NAME.test(name)) {
      throw validationError(
        `custom.${name}`,
        'must be a provider name of lower-case letters, digits, ".", "_" or "-"',
      );
    }
    if (typeof factory !== 'function')
      throw validationError(`custom.${name}`, 'must be a function (modelId) => model');
    custom.set(name, factory as CustomModelFactory);
  }

  return {
    providers: {
      'openai-compatible': {
        baseURL:
          url('providers.openai-compatible.baseURL', compat['baseURL']) ??
          url('env.AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL', env['AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL']),
        ...keyOption('providers.openai-compatible', compat, env, 'AGENTPOOL_OPENAI_COMPATIBLE_API_KEY'),
        name: str('providers.openai-compatible.name', compat['name']) ?? 'openai-compatible',
        headers: headersOption('providers.openai-compatible.headers', compat['headers']),
        structuredOutputs: boolOption(
          'providers.openai-compatible.structuredOutputs',
          compat['structuredOutputs'],
          true,
        ),
      },
      openai: {
        ...keyOption('providers.openai', openai, env, 'OPENAI_API_KEY'),
        baseURL:
          url('providers.openai.baseURL', openai['baseURL']) ??
          url('env.OPENAI_BASE_URL', env['OPENAI_BASE_URL']) ??
          OPENAI_DEFAULT_URL,
      },
      anthropic: {
        ...keyOption('providers.anthropic', anthropic, env, 'ANTHROPIC_API_KEY'),
        baseURL:
          url('providers.anthropic.baseURL', anthropic['baseURL']) ??
          url('env.ANTHROPIC_BASE_URL', env['ANTHROPIC_BASE_URL']) ??
          ANTHROPIC_DEFAULT_URL,
      },
    },
    named,
    custom,
    maxCachedModels: intOption('maxCachedModels', options.maxCachedModels, 10_000),
  };
}
