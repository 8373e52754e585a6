/**
 * The model catalog: turns a `provider/model-id` reference into an AI SDK `LanguageModelV3`.
 * It owns provider configuration (options first, then environment variables read once at
 * construction), the provider clients, and a bounded cache of resolved models shared by all
 * instances. Misconfiguration fails at `resolve()`, so the pool can fail an activation clearly
 * instead of failing on the first model call.
 */
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type { LanguageModelV3 } from '@ai-sdk/provider';
import { AgentPoolError, isAgentPoolError, validationError } from '../core/errors.ts';
import { intOption, objectOption, rejectUnknownKeys } from '../core/options.ts';
import { DemoLanguageModel } from './demo-model.ts';

/** The providers built into the catalog; custom providers are added through options. */
export const BUILTIN_PROVIDERS = ['demo', 'openai-compatible', 'openai', 'anthropic'] as const;

/** A `provider/model-id` reference split into its parts. */
export interface ModelRef {
  readonly provider: string;
  readonly modelId: string;
}

/** Builds a model for a custom provider from the part after `provider/`. */
export type CustomModelFactory = (modelId: string) => LanguageModelV3;

/** Connection settings for any server speaking the OpenAI chat-completions protocol. */
export interface OpenAICompatibleProviderConfig {
  /** Base URL ending before `/chat/completions`, e.g. `http://localhost:11434/v1`. @default env AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL */
  baseURL?: string;
  /** Sent as `Authorization: Bearer …`; local servers often need none. @default env AGENTPOOL_OPENAI_COMPATIBLE_API_KEY */
  apiKey?: string;
  /** Provider name reported by the models (`<name>.chat`). @default 'openai-compatible' */
  name?: string;
  /** Extra headers sent with every request. @default {} */
  headers?: Record<string, string>;
}

/** Settings of the OpenAI provider (chat-completions API). */
export interface OpenAIProviderConfig {
  /** @default env OPENAI_API_KEY */
  apiKey?: string;
  /** @default env OPENAI_BASE_URL, else 'https://api.openai.com/v1' */
  baseURL?: string;
}

/** Settings of the Anthropic provider (messages API). */
export interface AnthropicProviderConfig {
  /** @default env ANTHROPIC_API_KEY */
  apiKey?: string;
  /** @default env ANTHROPIC_BASE_URL, else 'https://api.anthropic.com/v1' */
  baseURL?: string;
}

/** Per-provider configuration; any field left out falls back to its environment variable. */
export interface ModelProvidersConfig {
  'openai-compatible'?: OpenAICompatibleProviderConfig;
  openai?: OpenAIProviderConfig;
  anthropic?: AnthropicProviderConfig;
}

/** Options of the model catalog. */
export interface ModelCatalogOptions {
  /** Provider settings; fields left out fall back to environment variables. @default {} */
  providers?: ModelProvidersConfig;
  /**
   * Extra providers by name, e.g. in-process mocks for tests. A custom provider named like a
   * built-in one replaces it, so `openai/gpt-4o` can be served by a mock and still be priced.
   * @default {}
   */
  custom?: Record<string, CustomModelFactory>;
  /** Where environment fallbacks are read from, once, at construction. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Most resolved models kept; the least recently resolved is dropped beyond it. @default 10000 */
  maxCachedModels?: number;
}

/** The catalog options with every default and environment fallback applied. */
export interface ResolvedModelCatalogOptions {
  readonly providers: {
    readonly 'openai-compatible': {
      readonly baseURL: string | undefined;
      readonly apiKey: string | undefined;
      readonly name: string;
      readonly headers: Readonly<Record<string, string>>;
    };
    readonly openai: { readonly apiKey: string | undefined; readonly baseURL: string };
    readonly anthropic: { readonly apiKey: string | undefined; readonly baseURL: string };
  };
  readonly custom: ReadonlyMap<string, CustomModelFactory>;
  readonly maxCachedModels: number;
}

const PROVIDER_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const MODEL_REF = /^([a-z0-9][a-z0-9._-]*)\/(\S+)$/;
const MAX_REF_LENGTH = 200;
const OPENAI_DEFAULT_URL = 'https://api.openai.com/v1';
const ANTHROPIC_DEFAULT_URL = 'https://api.anthropic.com/v1';

/** Splits and validates `provider/model-id` (the model id may itself contain `/`). */
export function parseModelRef(ref: unknown, field = 'model'): ModelRef {
  const match = typeof ref === 'string' && ref.length <= MAX_REF_LENGTH ? MODEL_REF.exec(ref) : null;
  if (!match) {
    const got = typeof ref === 'string' ? JSON.stringify(ref) : typeof ref;
    throw validationError(
      field,
      `must be "provider/model-id" (at most ${MAX_REF_LENGTH} characters), got ${got}`,
    );
  }
  return { provider: match[1] as string, modelId: match[2] as string };
}

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

// `known` undefined: any key is allowed (header names, custom provider names).

function headersOption(field: string, value: unknown): Record<string, string> {
  const record = objectOption(field, value);
  for (const [k, v] of Object.entries(record)) {
    if (typeof v !== 'string') throw validationError(`${field}.${k}`, `must be a string, got ${typeof v}`);
  }
  return { ...(record as Record<string, string>) };
}

/** Applies defaults and environment fallbacks (read once, here) and rejects bad values by field name. */
export function resolveModelCatalogOptions(options: ModelCatalogOptions = {}): ResolvedModelCatalogOptions {
  rejectUnknownKeys('', options, ['providers', 'custom', 'env', 'maxCachedModels']);
  const env = options.env ?? process.env;
  const providers = objectOption('providers', options.providers, [
    'openai-compatible',
    'openai',
    'anthropic',
  ]);
  const compat = objectOption('providers.openai-compatible', providers['openai-compatible'], [
    'baseURL',
    'apiKey',
    'name',
    'headers',
  ]);
  const openai = objectOption('providers.openai', providers['openai'], ['apiKey', 'baseURL']);
  const anthropic = objectOption('providers.anthropic', providers['anthropic'], ['apiKey', 'baseURL']);

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
        apiKey:
          str('providers.openai-compatible.apiKey', compat['apiKey']) ??
          str('env.AGENTPOOL_OPENAI_COMPATIBLE_API_KEY', env['AGENTPOOL_OPENAI_COMPATIBLE_API_KEY']),
        name: str('providers.openai-compatible.name', compat['name']) ?? 'openai-compatible',
        headers: headersOption('providers.openai-compatible.headers', compat['headers']),
      },
      openai: {
        apiKey:
          str('providers.openai.apiKey', openai['apiKey']) ??
          str('env.OPENAI_API_KEY', env['OPENAI_API_KEY']),
        baseURL:
          url('providers.openai.baseURL', openai['baseURL']) ??
          url('env.OPENAI_BASE_URL', env['OPENAI_BASE_URL']) ??
          OPENAI_DEFAULT_URL,
      },
      anthropic: {
        apiKey:
          str('providers.anthropic.apiKey', anthropic['apiKey']) ??
          str('env.ANTHROPIC_API_KEY', env['ANTHROPIC_API_KEY']),
        baseURL:
          url('providers.anthropic.baseURL', anthropic['baseURL']) ??
          url('env.ANTHROPIC_BASE_URL', env['ANTHROPIC_BASE_URL']) ??
          ANTHROPIC_DEFAULT_URL,
      },
    },
    custom,
    maxCachedModels: intOption('maxCachedModels', options.maxCachedModels, 10_000),
  };
}

function notConfigured(provider: string, option: string, envVar: string): AgentPoolError {
  return new AgentPoolError(
    'PROVIDER_NOT_CONFIGURED',
    `model provider "${provider}" is not configured: set ${option} in the model catalog options ` +
      `or the ${envVar} environment variable`,
    { provider, option, env: envVar },
  );
}

/** Resolves `provider/model-id` references to AI SDK models, caching clients and models. */
export class ModelCatalog {
  /** The options in force, with defaults and environment fallbacks applied. */
  readonly options: ResolvedModelCatalogOptions;
  // Insertion order doubles as recency order: a hit is re-inserted, the first key is the oldest.
  readonly #models = new Map<string, LanguageModelV3>();
  #compat: ReturnType<typeof createOpenAICompatible> | undefined;
  #openai: ReturnType<typeof createOpenAI> | undefined;
  #anthropic: ReturnType<typeof createAnthropic> | undefined;

  constructor(options: ModelCatalogOptions = {}) {
    this.options = resolveModelCatalogOptions(options);
  }

  /** Every provider name `resolve()` accepts: built-in ones, then custom ones. */
  providers(): string[] {
    return [...new Set<string>([...BUILTIN_PROVIDERS, ...this.options.custom.keys()])];
  }

  /**
   * Checks, without building anything, that `ref` is `provider/model-id` with a provider this
   * catalog knows; `VALIDATION_FAILED` naming `field` otherwise. What an agent definition is checked
   * with when it is written. A provider missing its API key or base URL passes: the configuration
   * may come later, and `resolve()` reports it (`PROVIDER_NOT_CONFIGURED`) when an instance activates.
   */
  check(ref: string, field = 'model'): void {
    const { provider } = parseModelRef(ref, field);
    const known = this.providers();
    if (!known.includes(provider)) {
      throw validationError(
        field,
        `names an unknown model provider "${provider}" in ${JSON.stringify(ref)} (known providers: ${known.join(', ')})`,
        { model: ref, provider, knownProviders: known },
      );
    }
  }

  /** How many resolved models are cached (never more than `maxCachedModels`). */
  get size(): number {
    return this.#models.size;
  }

  /** The model for `ref`; the same object for the same ref while it stays cached. Throws VALIDATION_FAILED, MODEL_NOT_FOUND or PROVIDER_NOT_CONFIGURED. */
  resolve(ref: string): LanguageModelV3 {
    const cached = this.#models.get(ref);
    if (cached !== undefined) {
      this.#models.delete(ref);
      this.#models.set(ref, cached);
      return cached;
    }
    const model = this.#create(parseModelRef(ref), ref);
    if (this.#models.size >= this.options.maxCachedModels) {
      const oldest = this.#models.keys().next();
      if (oldest.done !== true) this.#models.delete(oldest.value);
    }
    this.#models.set(ref, model);
    return model;
  }

  /** Drops every cached model and provider client; later resolves build fresh ones. */
  clear(): void {
    this.#models.clear();
    this.#compat = this.#openai = this.#anthropic = undefined;
  }

  #create({ provider, modelId }: ModelRef, ref: string): LanguageModelV3 {
    const factory = this.options.custom.get(provider);
    if (factory !== undefined) return this.#custom(provider, modelId, ref, factory);
    const p = this.options.providers;
    switch (provider) {
      case 'demo':
        return new DemoLanguageModel(modelId);
      case 'openai-compatible': {
        const c = p['openai-compatible'];
        if (c.baseURL === undefined) {
          throw notConfigured(
            provider,
            "providers['openai-compatible'].baseURL",
            'AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL',
          );
        }
        this.#compat ??= createOpenAICompatible({
          baseURL: c.baseURL,
          name: c.name,
          headers: { ...c.headers },
          // Without it, streamed responses carry no token counts and budgets could not be charged.
          includeUsage: true,
          ...(c.apiKey !== undefined ? { apiKey: c.apiKey } : {}),
        });
        return this.#compat.chatModel(modelId);
      }
      case 'openai': {
        const c = p.openai;
        if (c.apiKey === undefined)
          throw notConfigured(provider, 'providers.openai.apiKey', 'OPENAI_API_KEY');
        // Key and base URL are always passed explicitly: the SDK would otherwise read process.env
        // itself, bypassing the injected `env`. `.chat()` uses chat completions (not the Responses
        // API), so any OpenAI-compatible server works behind `OPENAI_BASE_URL` too.
        this.#openai ??= createOpenAI({ apiKey: c.apiKey, baseURL: c.baseURL });
        return this.#openai.chat(modelId);
      }
      case 'anthropic': {
        const c = p.anthropic;
        if (c.apiKey === undefined)
          throw notConfigured(provider, 'providers.anthropic.apiKey', 'ANTHROPIC_API_KEY');
        this.#anthropic ??= createAnthropic({ apiKey: c.apiKey, baseURL: c.baseURL });
        return this.#anthropic(modelId);
      }
      default:
        throw new AgentPoolError(
          'MODEL_NOT_FOUND',
          `unknown model provider "${provider}" in "${ref}" (known providers: ${this.providers().join(', ')})`,
          { model: ref, provider, knownProviders: this.providers() },
        );
    }
  }

  #custom(provider: string, modelId: string, ref: string, factory: CustomModelFactory): LanguageModelV3 {
    let model: LanguageModelV3;
    try {
      model = factory(modelId);
    } catch (err) {
      if (isAgentPoolError(err)) throw err;
      throw new AgentPoolError(
        'MODEL_NOT_FOUND',
        `custom provider "${provider}" could not build model "${ref}": ${err instanceof Error ? err.message : String(err)}`,
        { model: ref, provider },
        { cause: err },
      );
    }
    // A factory returning something else would only fail later, deep inside a run.
    if ((model as Partial<LanguageModelV3> | undefined)?.specificationVersion !== 'v3') {
      throw validationError(
        `custom.${provider}`,
        `must return a LanguageModelV3 (specificationVersion 'v3') for "${ref}"`,
      );
    }
    return model;
  }
}
