/**
 * Feature flags: the strategies that decide whether a request gets a feature (`all`, `none`,
 * `percentage`, `allowlist`, `denylist`, `gradual`), their validation, their deterministic
 * evaluation, and {@link FeatureFlags}, the named flags of one pool.
 *
 * Evaluation hashes the request's key into a bucket in [0, 100) and compares it with the flag's
 * current percentage, so the same key always gets the same answer and a rising percentage only
 * ever adds keys: a user let into a canary at 5 % stays in at 20 %. A strategy is plain JSON, so
 * it can be stored (an agent's rollout keeps one) and sent over the wire as it is.
 *
 * This file depends on core/ only: the registry stores and parses rollout strategies with it.
 */
import { type Clock, systemClock } from '../core/clock.ts';
import { AgentPoolError, validationError } from '../core/errors.ts';
import { INPUT_LIMITS } from '../core/input-limits.ts';
import { intOption, isPlainObject, numberOption, rejectUnknownKeys } from '../core/options.ts';
import { hashString } from '../core/hash.ts';

/** Every strategy a flag may use. */
export const FLAG_STRATEGIES = ['all', 'none', 'percentage', 'allowlist', 'denylist', 'gradual'] as const;
/** One of {@link FLAG_STRATEGIES}. */
export type FlagStrategyName = (typeof FLAG_STRATEGIES)[number];

/**
 * How a flag decides, as JSON; `strategy` is the discriminant. Percentages are 0..100 and may be
 * fractional. `gradual` rises linearly from `startPercent` to `endPercent` over `durationMs` from
 * the flag's start time, then stays at `endPercent`. The lists hold project ids.
 */
export type FlagStrategy =
  | { readonly strategy: 'all' }
  | { readonly strategy: 'none' }
  | { readonly strategy: 'percentage'; readonly percent: number }
  | { readonly strategy: 'allowlist'; readonly projects: readonly string[] }
  | { readonly strategy: 'denylist'; readonly projects: readonly string[] }
  | {
      readonly strategy: 'gradual';
      readonly startPercent: number;
      readonly endPercent: number;
      readonly durationMs: number;
    };

/** What one evaluation looks at. */
export interface FlagContext {
  /** The project of the request (allowlist, denylist). */
  readonly project: string;
  /** What the percentage is taken of: a user, a thread, a run… The same key gets the same answer. */
  readonly key: string;
  /** Epoch ms now. */
  readonly now: number;
  /** Epoch ms when the flag took effect: the origin of a `gradual` ramp. */
  readonly startedAt: number;
}

/** Limits of a strategy's fields. */
export const FLAG_LIMITS = {
  projects: INPUT_LIMITS.flagProjects,
  projectLength: INPUT_LIMITS.nameLength,
  /** Ten years: a ramp longer than that is a typo. */
  durationMs: 10 * 365 * 24 * 3600 * 1000,
} as const;

const FIELDS: Readonly<Record<FlagStrategyName, readonly string[]>> = {
  all: ['strategy'],
  none: ['strategy'],
  percentage: ['strategy', 'percent'],
  allowlist: ['strategy', 'projects'],
  denylist: ['strategy', 'projects'],
  gradual: ['strategy', 'startPercent', 'endPercent', 'durationMs'],
};

const FLAG_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;

function percent(field: string, value: unknown): number {
  if (value === undefined) throw validationError(field, 'is required');
  return numberOption(field, value, 0, 0, 100);
}

function projects(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw validationError(field, 'must be an array of project ids');
  if (value.length > FLAG_LIMITS.projects) {
    throw validationError(field, `must list at most ${FLAG_LIMITS.projects} projects`);
  }
  const seen = new Set<string>();
  value.forEach((p, i) => {
    if (typeof p !== 'string' || p === '' || p.length > FLAG_LIMITS.projectLength) {
      throw validationError(
        `${field}[${i}]`,
        `must be a project id of 1-${FLAG_LIMITS.projectLength} characters`,
      );
    }
    if (seen.has(p)) throw validationError(`${field}[${i}]`, `repeats ${JSON.stringify(p)}`);
    seen.add(p);
  });
  return [...(value as string[])];
}

/** Parses a strategy, allowing `extra` keys beside the strategy's own (returned untouched). */
function parseStrategy(input: unknown, field: string, extra: readonly string[]): FlagStrategy {
  if (!isPlainObject(input)) throw validationError(field, 'must be an object with a "strategy"');
  const name = input.strategy;
  if (typeof name !== 'string' || !Object.hasOwn(FIELDS, name)) {
    throw validationError(
      `${field}.strategy`,
      `must be one of ${FLAG_STRATEGIES.map((s) => `"${s}"`).join(', ')}, got ${JSON.stringify(name)}`,
    );
  }
  const strategy = name as FlagStrategyName;
  rejectUnknownKeys(`${field}.`, input, [...FIELDS[strategy], ...extra]);
  switch (strategy) {
    case 'all':
    case 'none':
      return { strategy };
    case 'percentage':
      return { strategy, percent: percent(`${field}.percent`, input.percent) };
    case 'allowlist':
    case 'denylist':
      return { strategy, projects: projects(`${field}.projects`, input.projects) };
    case 'gradual': {
      const startPercent = percent(`${field}.startPercent`, input.startPercent);
      const endPercent = percent(`${field}.endPercent`, input.endPercent);
      if (endPercent < startPercent) {
        throw validationError(
          `${field}.endPercent`,
          `must be at least startPercent (${startPercent}), got ${endPercent}: a gradual flag only rises`,
        );
      }
      if (input.durationMs === undefined) throw validationError(`${field}.durationMs`, 'is required');
      const durationMs = intOption(`${field}.durationMs`, input.durationMs, 1, 1, FLAG_LIMITS.durationMs);
      return { strategy, startPercent, endPercent, durationMs };
    }
  }
}

/**
 * Validates a strategy and returns a fresh copy holding only its own fields. Errors are
 * `VALIDATION_FAILED` naming the field under `field` (`rollout.percent must be a number from 0
 * to 100, got 120`); unknown keys are rejected.
 */
export function parseFlagStrategy(input: unknown, field: string): FlagStrategy {
  return parseStrategy(input, field, []);
}

/** True when two valid strategies are the same (same strategy and fields, lists in the same order). */
export function sameFlagStrategy(a: FlagStrategy, b: FlagStrategy): boolean {
  const fields = (f: FlagStrategy) =>
    JSON.stringify(FIELDS[f.strategy].map((k) => (f as Record<string, unknown>)[k]));
  return a.strategy === b.strategy && fields(a) === fields(b);
}

/**
 * The share of keys a flag lets through at `now`, in percent; null for `allowlist` and `denylist`,
 * whose answer depends on the project, not on a share.
 */
export function currentPercent(flag: FlagStrategy, now: number, startedAt: number): number | null {
  switch (flag.strategy) {
    case 'all':
      return 100;
    case 'none':
      return 0;
    case 'percentage':
      return flag.percent;
    case 'allowlist':
    case 'denylist':
      return null;
    case 'gradual': {
      const elapsed = now - startedAt;
      if (elapsed <= 0) return flag.startPercent;
      if (elapsed >= flag.durationMs) return flag.endPercent;
      return flag.startPercent + ((flag.endPercent - flag.startPercent) * elapsed) / flag.durationMs;
    }
  }
}

/**
 * Where a key falls in [0, 100): FNV-1a over its UTF-16 code units, then murmur3's finaliser so
 * that keys differing in one character spread over the whole range. Stable across processes and
 * versions: changing it would move users in and out of every running canary.
 */
export function flagBucket(key: string): number {
  let h = hashString(key);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return ((h >>> 0) / 0x1_0000_0000) * 100;
}

/** Whether the flag is on for this request. Deterministic: same flag, key and time, same answer. */
export function evaluateFlag(flag: FlagStrategy, ctx: FlagContext): boolean {
  switch (flag.strategy) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'allowlist':
      return flag.projects.includes(ctx.project);
    case 'denylist':
      return !flag.projects.includes(ctx.project);
    case 'percentage':
    case 'gradual':
      return flagBucket(ctx.key) < (currentPercent(flag, ctx.now, ctx.startedAt) as number);
  }
}

/** A named flag as configured: a strategy, and optionally when it took effect. */
export type FlagDefinition = FlagStrategy & {
  /** Epoch ms, the origin of a `gradual` ramp. @default when the FeatureFlags were built */
  readonly startedAt?: number;
};

/** Options of {@link FeatureFlags}. */
export interface FeatureFlagsOptions {
  /** Flags by name (1-64 lowercase letters, digits, ".", "_", "-"), validated at construction. @default {} */
  flags?: Readonly<Record<string, FlagDefinition>>;
  /** @default systemClock */
  clock?: Clock;
}

/** One flag as {@link FeatureFlags.list} reports it. */
export interface FlagInfo {
  readonly name: string;
  readonly flag: FlagStrategy;
  readonly startedAt: number;
  /** The share of keys on now; null for project lists. */
  readonly percent: number | null;
}

/** A flag's strategy and the origin of its ramp: what a pool holds per name. */
export interface NamedFlag {
  readonly flag: FlagStrategy;
  readonly startedAt: number;
}

/** Refuses a name that is not 1-64 lowercase letters, digits, ".", "_", "-" (`field` names it). */
export function checkFlagName(name: string, field: string): void {
  if (typeof name !== 'string' || !FLAG_NAME.test(name)) {
    throw validationError(
      field,
      'name must be 1-64 lowercase letters, digits, ".", "_" or "-", starting and ending with a letter or digit',
    );
  }
}

/**
 * Validates one flag's definition (a strategy, optionally `startedAt`) under `field`; a missing
 * `startedAt` is `now`. Errors as {@link parseFlagStrategy}'s.
 */
export function parseFlagDefinition(input: unknown, field: string, now: number): NamedFlag {
  const flag = parseStrategy(input, field, ['startedAt']);
  const startedAt = intOption(`${field}.startedAt`, (input as { startedAt?: unknown }).startedAt, now, 0);
  return { flag, startedAt };
}

/**
 * The named feature flags of one pool, evaluated on its clock from memory. Built from
 * `options.flags`; the pool's runtime flags (runtime-flags.ts) keep it current with the flag store
 * through {@link FeatureFlags.replaceAll} and {@link FeatureFlags.apply}. Keys are hashed together
 * with the flag's name, so two flags at 10 % select two independent tenths.
 */
export class FeatureFlags {
  #flags = new Map<string, NamedFlag>();
  readonly #clock: Clock;

  /** Validates every flag; errors name the field (`flags.beta.percent must be …`). */
  constructor(options: FeatureFlagsOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    const flags = options.flags ?? {};
    if (!isPlainObject(flags)) throw validationError('flags', 'must be an object of flags by name');
    const now = this.#clock.now();
    for (const name of Object.keys(flags).sort()) {
      checkFlagName(name, `flags.${name}`);
      this.#flags.set(name, parseFlagDefinition(flags[name], `flags.${name}`, now));
    }
  }

  /**
   * Whether flag `name` is on for this request. An unknown name throws `NOT_FOUND` rather than
   * answering false: an unknown name is a typo (or a flag deleted while code still asks), and a
   * typo that silently turns a feature off (or keeps a guarded path dark in production) is far
   * costlier than an error on the first request that reaches it.
   */
  isEnabled(name: string, ctx: { project: string; key: string }): boolean {
    const named = this.#flags.get(name);
    if (named === undefined) throw flagNotFound(name, [...this.#flags.keys()]);
    return evaluateFlag(named.flag, {
      project: ctx.project,
      key: `${name}\u0000${ctx.key}`,
      now: this.#clock.now(),
      startedAt: named.startedAt,
    });
  }

  /** True when a flag of that name is defined. */
  has(name: string): boolean {
    return this.#flags.has(name);
  }

  /** How many flags are defined. */
  get size(): number {
    return this.#flags.size;
  }

  /** One flag with its current share, or undefined. */
  get(name: string): FlagInfo | undefined {
    const named = this.#flags.get(name);
    return named === undefined ? undefined : this.#info(name, named, this.#clock.now());
  }

  /** Every flag, by name, with its current share. */
  list(): FlagInfo[] {
    const now = this.#clock.now();
    return [...this.#flags].map(([name, named]) => this.#info(name, named, now));
  }

  /** Replaces every flag with these (already validated), ordered by name. */
  replaceAll(flags: Iterable<readonly [string, NamedFlag]>): void {
    this.#flags = new Map([...flags].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Sets (a definition) or removes (undefined) one flag. */
  apply(name: string, named: NamedFlag | undefined): void {
    if (named === undefined) {
      this.#flags.delete(name);
      return;
    }
    const had = this.#flags.has(name);
    this.#flags.set(name, named);
    if (!had) this.replaceAll(this.#flags); // keeps the listing in name order
  }

  #info(name: string, { flag, startedAt }: NamedFlag, now: number): FlagInfo {
    return { name, flag, startedAt, percent: currentPercent(flag, now, startedAt) };
  }
}

/** `NOT_FOUND` for a flag name no flag has. */
export function flagNotFound(name: string, defined?: readonly string[]): AgentPoolError {
  return new AgentPoolError('NOT_FOUND', `feature flag ${JSON.stringify(name)} is not defined`, {
    flag: name,
    ...(defined !== undefined && { defined }),
  });
}
