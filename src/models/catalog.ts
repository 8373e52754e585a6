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
import { OldestKey } from '../core/oldest-key.ts';
import {
  BUILTIN_PROVIDERS,
  type CustomModelFactory,
  type ModelCatalogOptions,
  type ResolvedModelCatalogOptions,
  type ResolvedOpenAICompatibleConfig,
  resolveModelCatalogOptions,
} from './catalog-options.ts';
import { DemoLanguageModel } from './demo-model.ts';

export {
  type AnthropicProviderConfig,
  BUILTIN_PROVIDERS,
  type CustomModelFactory,
  type ModelCatalogOptions,
  type ModelProvidersConfig,
  NAMED_PROVIDER_KINDS,
  type NamedProviderConfig,
  type OpenAICompatibleProviderConfig,
  type OpenAIProviderConfig,
  type ResolvedKey,
  type ResolvedModelCatalogOptions,
  type ResolvedNamedProviderConfig,
  type ResolvedOpenAICompatibleConfig,
  resolveModelCatalogOptions,
} from './catalog-options.ts';

/** A `provider/model-id` reference split into its parts. */
export interface ModelRef {
  readonly provider: string;
  readonly modelId: string;
}

const MODEL_REF = /^([a-z0-9][a-z0-9._-]*)\/(\S+)$/;
const MAX_REF_LENGTH = 200;

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

function notConfigured(provider: string, option: string, envVar: string): AgentPoolError {
  return new AgentPoolError(
    'PROVIDER_NOT_CONFIGURED',
    `model provider "${provider}" is not configured: set ${option} in the model catalog options ` +
      `or the ${envVar} environment variable`,
    { provider, option, env: envVar },
  );
}

/** A provider `describeProviders()` lists: where it sends requests and where its key comes from. */
export interface ProviderSummary {
  readonly name: string;
  readonly kind: 'demo' | 'openai' | 'anthropic' | 'openai-compatible' | 'custom';
  readonly baseURL?: string;
  /** Whether a key is set (never the key). */
  readonly keySet?: boolean;
  /** The variable the key is read from, when it comes from one. */
  readonly keyEnv?: string;
}

/** Resolves `provider/model-id` references to AI SDK models, caching clients and models. */
export class ModelCatalog {
  /** The options in force, with defaults and environment fallbacks applied. */
  readonly options: ResolvedModelCatalogOptions;
  // Insertion order doubles as recency order: a hit is re-inserted, the first key is the oldest.
  readonly #models = new Map<string, LanguageModelV3>();
  readonly #oldest = new OldestKey(this.#models);
  /** OpenAI-compatible clients by provider name (the built-in one and each named one): as many as configured. */
  readonly #compat = new Map<string, ReturnType<typeof createOpenAICompatible>>();
  #openai: ReturnType<typeof createOpenAI> | undefined;
  #anthropic: ReturnType<typeof createAnthropic> | undefined;

  constructor(options: ModelCatalogOptions = {}) {
    this.options = resolveModelCatalogOptions(options);
  }

  /** Every provider name `resolve()` accepts: built-in ones, then named ones, then custom ones. */
  providers(): string[] {
    return [
      ...new Set<string>([...BUILTIN_PROVIDERS, ...this.options.named.keys(), ...this.options.custom.keys()]),
    ];
  }

  /**
   * The providers that can serve a model now (`demo`, those with their key or base URL, named and
   * custom ones), with where each sends requests and where its key comes from, never the key: what
   * `agentpool serve` prints at start.
   */
  describeProviders(): ProviderSummary[] {
    const p = this.options.providers;
    const out: ProviderSummary[] = [];
    const add = (summary: ProviderSummary) => {
      if (!this.options.custom.has(summary.name)) out.push(summary);
    };
    const key = (k: { apiKey: string | undefined; apiKeyEnv: string | undefined }) => ({
      keySet: k.apiKey !== undefined,
      ...(k.apiKeyEnv !== undefined && { keyEnv: k.apiKeyEnv }),
    });
    add({ name: 'demo', kind: 'demo' });
    if (p.openai.apiKey !== undefined)
      add({ name: 'openai', kind: 'openai', baseURL: p.openai.baseURL, ...key(p.openai) });
    if (p.anthropic.apiKey !== undefined) {
      add({ name: 'anthropic', kind: 'anthropic', baseURL: p.anthropic.baseURL, ...key(p.anthropic) });
    }
    const compat = p['openai-compatible'];
    if (compat.baseURL !== undefined) {
      add({ name: 'openai-compatible', kind: 'openai-compatible', baseURL: compat.baseURL, ...key(compat) });
    }
    for (const [name, c] of this.options.named) add({ name, kind: c.kind, baseURL: c.baseURL, ...key(c) });
    for (const name of this.options.custom.keys()) out.push({ name, kind: 'custom' });
    return out;
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
      this.#oldest.evict();
    }
    this.#models.set(ref, model);
    return model;
  }

  /** Drops every cached model and provider client; later resolves build fresh ones. */
  clear(): void {
    this.#models.clear();
    this.#compat.clear();
    this.#openai = this.#anthropic = undefined;
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
        return this.#compatModel(provider, c, c.baseURL, modelId);
      }
      case 'openai': {
        const c = p.openai;
        if (c.apiKey === undefined)
          throw notConfigured(provider, 'providers.openai.apiKey', c.apiKeyEnv ?? 'OPENAI_API_KEY');
        // Key and base URL are always passed explicitly: the SDK would otherwise read process.env
        // itself, bypassing the injected `env`. `.chat()` uses chat completions (not the Responses
        // API), so any OpenAI-compatible server works behind `OPENAI_BASE_URL` too.
        this.#openai ??= createOpenAI({ apiKey: c.apiKey, baseURL: c.baseURL });
        return this.#openai.chat(modelId);
      }
      case 'anthropic': {
        const c = p.anthropic;
        if (c.apiKey === undefined)
          throw notConfigured(provider, 'providers.anthropic.apiKey', c.apiKeyEnv ?? 'ANTHROPIC_API_KEY');
        this.#anthropic ??= createAnthropic({ apiKey: c.apiKey, baseURL: c.baseURL });
        return this.#anthropic(modelId);
      }
      default: {
        const named = this.options.named.get(provider);
        if (named !== undefined) {
          // A key named by apiKeyEnv that is not set is a mistake, not a keyless local server.
          if (named.apiKeyEnv !== undefined && named.apiKey === undefined) {
            throw new AgentPoolError(
              'PROVIDER_NOT_CONFIGURED',
              `model provider "${provider}" is not configured: its key is read from the ${named.apiKeyEnv} ` +
                'environment variable (providers.' +
                provider +
                '.apiKeyEnv), which is not set',
              { provider, option: `providers.${provider}.apiKeyEnv`, env: named.apiKeyEnv },
            );
          }
          return this.#compatModel(provider, named, named.baseURL, modelId);
        }
        throw new AgentPoolError(
          'MODEL_NOT_FOUND',
          `unknown model provider "${provider}" in "${ref}" (known providers: ${this.providers().join(', ')})`,
          { model: ref, provider, knownProviders: this.providers() },
        );
      }
    }
  }

  /** A chat model of an OpenAI-compatible server, its client built once per provider name. */
  #compatModel(
    provider: string,
    c: ResolvedOpenAICompatibleConfig,
    baseURL: string,
    modelId: string,
  ): LanguageModelV3 {
    let client = this.#compat.get(provider);
    if (client === undefined) {
      client = createOpenAICompatible({
        baseURL,
        name: c.name,
        headers: { ...c.headers },
        // Without it, streamed responses carry no token counts and budgets could not be charged.
        includeUsage: true,
        // json_schema response formats reach the server as json_schema (not json_object) unless off.
        supportsStructuredOutputs: c.structuredOutputs,
        ...(c.apiKey !== undefined ? { apiKey: c.apiKey } : {}),
      });
      this.#compat.set(provider, client);
    }
    return client.chatModel(modelId);
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
