/**
 * The agent definition: its schema, defaults and validation. A spec that passes
 * {@link parseAgentSpec} is complete (every default applied) and canonical, so two specs are the
 * same definition exactly when {@link sameSpec} says so; that is what keeps no-op updates from
 * making versions.
 */
import { validationError } from '../core/errors.ts';
import { INPUT_LIMITS, parseMetadata } from '../core/input-limits.ts';
import { enumOption, intOption, isPlainObject, numberOption, rejectUnknownKeys } from '../core/options.ts';
import type { IndexedSpec } from '../store/ports.ts';

/** How the pool treats an agent's instance: `hot` prewarmed and pinned, `warm` cached, `cold` one-shot, `auto` the pool decides (cached). */
export const TIERS = ['hot', 'warm', 'cold', 'auto'] as const;
/** One of {@link TIERS}. */
export type Tier = (typeof TIERS)[number];

/** The points of a run an agent's `hooks` may name a function for, in the order a run meets them. */
export const HOOK_NAMES = [
  'beforeModelCall',
  'afterModelCall',
  'beforeToolCall',
  'afterToolCall',
  'onRunFinished',
] as const;
/** One of {@link HOOK_NAMES}. */
export type HookName = (typeof HOOK_NAMES)[number];

/** An agent's hooks: per point, a `module:<path>#<export>` reference to a function. */
export type AgentHookRefs = Readonly<Partial<Record<HookName, string>>>;

/** The default project of a single-tenant deployment. */
export const DEFAULT_PROJECT = 'default';
/** The model of an agent that names none: the built-in demo model, needing no key and no network. */
export const DEFAULT_MODEL = 'demo/assistant';

/** Limits of a definition's fields: the definition's share of {@link INPUT_LIMITS}. */
export const SPEC_LIMITS = {
  nameLength: INPUT_LIMITS.nameLength,
  instructionsLength: INPUT_LIMITS.instructionsLength,
  maxTokens: INPUT_LIMITS.maxTokens,
  maxSteps: INPUT_LIMITS.maxSteps,
  tools: INPUT_LIMITS.tools,
  fallbacks: INPUT_LIMITS.fallbacks,
  toolRefLength: INPUT_LIMITS.toolRefLength,
  labels: INPUT_LIMITS.labels,
  labelValueLength: INPUT_LIMITS.labelValueLength,
  metadataBytes: INPUT_LIMITS.metadataBytes,
  ttlSeconds: INPUT_LIMITS.ttlSeconds,
  /** `runTimeoutMs` from 1 s to a day. */
  runTimeoutMsMin: 1000,
  runTimeoutMsMax: 86_400_000,
} as const;

/** A complete, validated agent definition: what one version holds. */
export interface AgentSpec extends IndexedSpec {
  readonly name: string;
  /** System instructions. @default '' */
  readonly instructions: string;
  /** `provider/model-id`. @default 'demo/assistant' */
  readonly model: string;
  /** 0..2; the provider's default when absent. */
  readonly temperature?: number;
  /** Output token cap per model call; the provider's default when absent. */
  readonly maxTokens?: number;
  /**
   * Models tried in order when `model` cannot answer (breaker open, retries exhausted, rate
   * limited, busy); absent when there are none.
   */
  readonly fallbacks?: readonly string[];
  /** Model calls per run at most. @default 10 */
  readonly maxSteps: number;
  /** Tool references, resolved at activation. @default [] */
  readonly tools: readonly string[];
  /**
   * Functions called at points of each run, as `module:<path>#<export>` references resolved once
   * per instance at activation (paths as for module tools); absent when there are none.
   */
  readonly hooks?: AgentHookRefs;
  /** @default 'auto' */
  readonly tier: Tier;
  /** Key/value labels for filtering. @default {} */
  readonly labels: Readonly<Record<string, string>>;
  /** Free-form JSON kept with the definition. @default {} */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** An ephemeral agent is deleted after this long unused. */
  readonly ttlSeconds?: number;
  /** This agent's own run quotas, within its project's. */
  readonly limits?: AgentLimits;
  /**
   * A run running longer (from its start, ms) is cancelled with `RUN_TIMEOUT` by the health
   * monitor, within one `pool.health.intervalMs`; no limit when absent.
   */
  readonly runTimeoutMs?: number;
}

/** Per-agent overrides of the project's run quotas. */
export interface AgentLimits {
  readonly maxConcurrentRuns?: number;
  readonly runsPerMinute?: number;
}

/** What a caller writes: the name plus any fields to set; the rest takes defaults. */
export type AgentSpecInput = { name: string } & Partial<Omit<AgentSpec, 'name'>>;

/** A partial change of a definition (the name cannot change). */
export type AgentSpecPatch = Partial<Omit<AgentSpec, 'name'>>;

const FIELDS = [
  'name',
  'instructions',
  'model',
  'fallbacks',
  'temperature',
  'maxTokens',
  'maxSteps',
  'tools',
  'hooks',
  'tier',
  'labels',
  'metadata',
  'ttlSeconds',
  'limits',
  'runTimeoutMs',
] as const;

const SLUG = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const LABEL_KEY = /^[a-z0-9](?:[a-z0-9._/-]*[a-z0-9])?$/;
const MODEL = /^[a-z0-9][a-z0-9._-]*\/\S+$/;

/** Checks a name-like slug (agent names, project ids): 1-64 lowercase letters, digits and inner hyphens. */
export function assertSlug(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length > SPEC_LIMITS.nameLength || !SLUG.test(value)) {
    throw validationError(
      field,
      `must be a slug of 1-${SPEC_LIMITS.nameLength} lowercase letters, digits and hyphens, starting and ending with a letter or digit, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function parseString(field: string, value: unknown, fallback: string, max: number): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw validationError(field, `must be a string, got ${typeof value}`);
  if (value.length > max)
    throw validationError(field, `must be at most ${max} characters, got ${value.length}`);
  return value;
}

function parseTools(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw validationError('tools', 'must be an array of tool references');
  if (value.length > SPEC_LIMITS.tools)
    throw validationError('tools', `must list at most ${SPEC_LIMITS.tools} tools`);
  const seen = new Set<string>();
  value.forEach((ref, i) => {
    if (typeof ref !== 'string' || ref.trim() === '' || ref.length > SPEC_LIMITS.toolRefLength) {
      throw validationError(
        `tools[${i}]`,
        `must be a non-empty string of at most ${SPEC_LIMITS.toolRefLength} characters`,
      );
    }
    if (seen.has(ref)) throw validationError(`tools[${i}]`, `repeats ${JSON.stringify(ref)}`);
    seen.add(ref);
  });
  return [...value];
}

const HOOK_REF = /^module:.+#[^#]+$/s;

function parseHooks(value: unknown): AgentHookRefs | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) {
    throw validationError('hooks', `must be an object of hook references (hooks: ${HOOK_NAMES.join(', ')})`);
  }
  rejectUnknownKeys('hooks.', value, HOOK_NAMES);
  const hooks: Partial<Record<HookName, string>> = {};
  for (const name of HOOK_NAMES) {
    const ref = value[name];
    if (ref === undefined) continue;
    if (typeof ref !== 'string' || ref.length > SPEC_LIMITS.toolRefLength || !HOOK_REF.test(ref)) {
      throw validationError(
        `hooks.${name}`,
        `must be "module:<path>#<export>" (at most ${SPEC_LIMITS.toolRefLength} characters), got ${JSON.stringify(ref)}`,
      );
    }
    hooks[name] = ref;
  }
  return Object.keys(hooks).length === 0 ? undefined : hooks;
}

function parseModel(field: string, value: unknown, fallback: string): string {
  const model = parseString(field, value, fallback, INPUT_LIMITS.modelRefLength);
  if (!MODEL.test(model)) {
    throw validationError(field, `must be "provider/model-id", got ${JSON.stringify(model)}`);
  }
  return model;
}

function parseFallbacks(value: unknown, model: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw validationError('fallbacks', 'must be an array of "provider/model-id"');
  if (value.length > SPEC_LIMITS.fallbacks)
    throw validationError('fallbacks', `must list at most ${SPEC_LIMITS.fallbacks} models`);
  const seen = new Set([model]);
  const out = value.map((ref, i) => {
    const parsed = parseModel(`fallbacks[${i}]`, ref, '');
    if (seen.has(parsed))
      throw validationError(
        `fallbacks[${i}]`,
        `repeats ${JSON.stringify(parsed)} (the model or an earlier fallback)`,
      );
    seen.add(parsed);
    return parsed;
  });
  return out.length === 0 ? undefined : out;
}

function parseAgentLimits(value: unknown): AgentLimits | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) throw validationError('limits', 'must be an object');
  rejectUnknownKeys('limits.', value, ['maxConcurrentRuns', 'runsPerMinute']);
  const limits: { maxConcurrentRuns?: number; runsPerMinute?: number } = {};
  if (value.maxConcurrentRuns !== undefined && value.maxConcurrentRuns !== null)
    limits.maxConcurrentRuns = intOption(
      'limits.maxConcurrentRuns',
      value.maxConcurrentRuns,
      1,
      0,
      1_000_000,
    );
  if (value.runsPerMinute !== undefined && value.runsPerMinute !== null)
    limits.runsPerMinute = intOption('limits.runsPerMinute', value.runsPerMinute, 1, 0, 1_000_000_000);
  return Object.keys(limits).length === 0 ? undefined : limits;
}

function parseLabels(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw validationError('labels', 'must be an object of string values');
  const keys = Object.keys(value).sort();
  if (keys.length > SPEC_LIMITS.labels)
    throw validationError('labels', `must have at most ${SPEC_LIMITS.labels} entries`);
  const out: Record<string, string> = {};
  for (const key of keys) {
    if (key.length > SPEC_LIMITS.nameLength || !LABEL_KEY.test(key)) {
      throw validationError(
        `labels.${key}`,
        `key must be 1-${SPEC_LIMITS.nameLength} lowercase letters, digits, ".", "_", "/" or "-"`,
      );
    }
    const v = value[key];
    if (typeof v !== 'string' || v.length > SPEC_LIMITS.labelValueLength) {
      throw validationError(
        `labels.${key}`,
        `must be a string of at most ${SPEC_LIMITS.labelValueLength} characters`,
      );
    }
    out[key] = v;
  }
  return out;
}

/**
 * Validates a definition and applies defaults. Errors are `VALIDATION_FAILED` naming the field
 * (`details.field`); unknown fields are rejected.
 */
export function parseAgentSpec(input: unknown): AgentSpec {
  if (!isPlainObject(input)) throw validationError('spec', 'must be an object');
  rejectUnknownKeys('', input, FIELDS);
  const model = parseModel('model', input.model, DEFAULT_MODEL);
  const fallbacks = parseFallbacks(input.fallbacks, model);
  const limits = parseAgentLimits(input.limits);
  const hooks = parseHooks(input.hooks);
  const spec: AgentSpec = {
    name: assertSlug('name', input.name),
    instructions: parseString('instructions', input.instructions, '', SPEC_LIMITS.instructionsLength),
    model,
    ...(fallbacks !== undefined && { fallbacks }),
    ...(input.temperature !== undefined && {
      temperature: numberOption('temperature', input.temperature, 1, 0, 2),
    }),
    ...(input.maxTokens !== undefined && {
      maxTokens: intOption('maxTokens', input.maxTokens, 1, 1, SPEC_LIMITS.maxTokens),
    }),
    maxSteps: intOption('maxSteps', input.maxSteps, 10, 1, SPEC_LIMITS.maxSteps),
    tools: parseTools(input.tools),
    ...(hooks !== undefined && { hooks }),
    tier: enumOption('tier', input.tier, TIERS, 'auto'),
    labels: parseLabels(input.labels),
    metadata: parseMetadata('metadata', input.metadata, canonicalJson),
    ...(input.ttlSeconds !== undefined && {
      ttlSeconds: intOption('ttlSeconds', input.ttlSeconds, 1, 1, SPEC_LIMITS.ttlSeconds),
    }),
    ...(limits !== undefined && { limits }),
    ...(input.runTimeoutMs !== undefined && {
      runTimeoutMs: intOption(
        'runTimeoutMs',
        input.runTimeoutMs,
        1,
        SPEC_LIMITS.runTimeoutMsMin,
        SPEC_LIMITS.runTimeoutMsMax,
      ),
    }),
  };
  return spec;
}

/**
 * Applies a patch to a spec. A field set to `null` in the patch returns to its default; the name
 * cannot change (a different name is a validation error).
 */
export function patchAgentSpec(current: AgentSpec, patch: unknown): AgentSpec {
  if (!isPlainObject(patch)) throw validationError('patch', 'must be an object');
  if ('name' in patch && patch.name !== current.name) {
    throw validationError(
      'name',
      `cannot change (agent is ${JSON.stringify(current.name)}); create a new agent instead`,
    );
  }
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return parseAgentSpec(merged);
}

/** JSON with object keys sorted at every depth, so equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (!isPlainObject(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = v[k];
    return sorted;
  });
}

/** True when two complete specs define the same agent. */
export function sameSpec(a: AgentSpec, b: AgentSpec): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
