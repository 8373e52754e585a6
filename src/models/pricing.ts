/**
 * Model prices: USD per million input and output tokens, keyed by `provider/model-id` or a
 * `provider/*` wildcard. Owns the built-in defaults and turns token usage into cost for runs,
 * budgets and metrics. Immutable once built, so it is bounded by its configuration.
 */
import { validationError } from '../core/errors.ts';
import { roundUsd } from '../core/money.ts';
import { rejectUnknownKeys } from '../core/options.ts';
import { parseModelRef } from './catalog.ts';

/** Prices of one model in USD per million tokens. */
export type ModelPrice = { inputPerMillion: number; outputPerMillion: number };

/** Token counts of one or more model calls. */
export interface TokenUsage {
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
}

/** The cost of some usage, and whether the model had a price at all. */
export interface Cost {
  /** Cost in USD; 0 when the model has no price. */
  readonly usd: number;
  /** False when no entry matched, so callers can tell "free" from "unpriced". */
  readonly known: boolean;
  /** The table key that matched (`openai/gpt-4o` or `demo/*`), when one did. */
  readonly matched?: string;
}

/** Built-in list prices (USD per million tokens) of a few common models; demo models are free. */
export const DEFAULT_MODEL_PRICES: Readonly<Record<string, Readonly<ModelPrice>>> = Object.freeze({
  'openai/gpt-4o': { inputPerMillion: 2.5, outputPerMillion: 10 },
  'openai/gpt-4o-mini': { inputPerMillion: 0.15, outputPerMillion: 0.6 },
  'openai/gpt-4.1': { inputPerMillion: 2, outputPerMillion: 8 },
  'openai/gpt-4.1-mini': { inputPerMillion: 0.4, outputPerMillion: 1.6 },
  'anthropic/claude-sonnet-4': { inputPerMillion: 3, outputPerMillion: 15 },
  'anthropic/claude-3-5-haiku': { inputPerMillion: 0.8, outputPerMillion: 4 },
  'demo/*': { inputPerMillion: 0, outputPerMillion: 0 },
});

/** Options of a price table. */
export interface PriceTableOptions {
  /** Prices by `provider/model-id` or `provider/*`; they replace or extend the defaults. @default {} */
  prices?: Record<string, ModelPrice>;
  /** Start from `DEFAULT_MODEL_PRICES`; false for a table holding only `prices`. @default true */
  includeDefaults?: boolean;
}

// Dated snapshots and aliases (gpt-4o-2024-08-06, claude-sonnet-4-20250514, claude-3-5-haiku-latest,
// claude-sonnet-4-0) cost what their base model costs, so they need no entry of their own.
const SNAPSHOT_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest|0)$/;

function priceField(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    const got = value === undefined ? 'nothing' : typeof value === 'number' ? String(value) : typeof value;
    throw validationError(field, `must be a non-negative finite number (USD per million tokens), got ${got}`);
  }
  return value;
}

/** Validates one price entry, naming the offending field (`prices["openai/x"].inputPerMillion`). */
export function parseModelPrice(field: string, value: unknown): ModelPrice {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw validationError(field, 'must be an object { inputPerMillion, outputPerMillion }');
  }
  rejectUnknownKeys(`${field}.`, value, ['inputPerMillion', 'outputPerMillion']);
  const v = value as Record<string, unknown>;
  return {
    inputPerMillion: priceField(`${field}.inputPerMillion`, v['inputPerMillion']),
    outputPerMillion: priceField(`${field}.outputPerMillion`, v['outputPerMillion']),
  };
}

function tokens(n: number | undefined): number {
  // Providers sometimes omit counts; a missing or nonsensical count costs nothing rather than NaN.
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0;
}

/** Looks up model prices (exact, then snapshot base, then `provider/*`) and computes cost in USD. */
export class PriceTable {
  readonly #prices: ReadonlyMap<string, Readonly<ModelPrice>>;

  constructor(options: PriceTableOptions = {}) {
    rejectUnknownKeys('', options, ['prices', 'includeDefaults']);
    if (options.includeDefaults !== undefined && typeof options.includeDefaults !== 'boolean') {
      throw validationError('includeDefaults', `must be a boolean, got ${typeof options.includeDefaults}`);
    }
    const prices = new Map<string, Readonly<ModelPrice>>(
      options.includeDefaults === false ? [] : Object.entries(DEFAULT_MODEL_PRICES),
    );
    const given: unknown = options.prices ?? {};
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      throw validationError('prices', 'must be an object keyed by "provider/model-id" or "provider/*"');
    }
    for (const [key, value] of Object.entries(given)) {
      const field = `prices[${JSON.stringify(key)}]`;
      parseModelRef(key, field);
      prices.set(key, Object.freeze(parseModelPrice(field, value)));
    }
    this.#prices = prices;
  }

  /** The price entry for `model` and the key it came from, or undefined when none matches. */
  lookup(model: string): { key: string; price: Readonly<ModelPrice> } | undefined {
    const exact = this.#prices.get(model);
    if (exact !== undefined) return { key: model, price: exact };
    const slash = model.indexOf('/');
    if (slash <= 0) return undefined;
    let base = model;
    while (SNAPSHOT_SUFFIX.test(base)) {
      base = base.replace(SNAPSHOT_SUFFIX, '');
      const price = this.#prices.get(base);
      if (price !== undefined) return { key: base, price };
    }
    const wildcard = `${model.slice(0, slash)}/*`;
    const price = this.#prices.get(wildcard);
    return price === undefined ? undefined : { key: wildcard, price };
  }

  /** The price of `model`, or undefined when it has none. */
  priceOf(model: string): Readonly<ModelPrice> | undefined {
    return this.lookup(model)?.price;
  }

  /**
   * The cost in USD of `usage` on `model`, rounded to a nano-dollar (`roundUsd`); an unpriced
   * model costs 0 with `known: false`.
   */
  costOf(model: string, usage: TokenUsage): Cost {
    const hit = this.lookup(model);
    if (hit === undefined) return { usd: 0, known: false };
    const usd = roundUsd(
      (tokens(usage.inputTokens) * hit.price.inputPerMillion +
        tokens(usage.outputTokens) * hit.price.outputPerMillion) /
        1_000_000,
    );
    return { usd, known: true, matched: hit.key };
  }

  /** Every entry of the table, defaults included, in insertion order. */
  entries(): Array<[string, ModelPrice]> {
    return [...this.#prices].map(([k, p]) => [k, { ...p }]);
  }
}
