/**
 * OpenAI request fields the routes do not translate into run options. None is silently ignored:
 * each is either informational (it cannot change the answer: end-user ids, cache and service
 * hints) and accepted, or accepted only at its neutral value (`n: 1`, `logprobs: false`,
 * `parallel_tool_calls: true` …) and refused with a 400 naming it otherwise.
 */
import { validationError } from '../../core/errors.ts';
import { isPlainObject } from '../../core/options.ts';

/** A field accepted only at a value that changes nothing. */
export interface NeutralRule {
  /** True for the values that leave the answer as it would be without the field. */
  readonly neutral: (value: unknown) => boolean;
  /** Why another value cannot be honoured, ending the error message. */
  readonly why: string;
}

const unset = (v: unknown) => v === undefined || v === null;

/** Neutral when unset. */
export const onlyUnset = (why: string): NeutralRule => ({ neutral: unset, why });
/** Neutral when unset or one of `values`. */
export const unsetOr = (values: readonly unknown[], why: string): NeutralRule => ({
  neutral: (v) => unset(v) || values.includes(v),
  why,
});
/** Neutral when unset or an empty array. */
export const unsetOrEmpty = (why: string): NeutralRule => ({
  neutral: (v) => unset(v) || (Array.isArray(v) && v.length === 0),
  why,
});
/** Neutral when unset or an object whose values are all unset (`{}`, `{ effort: null }`). */
export const unsetOrBlank = (why: string): NeutralRule => ({
  neutral: (v) => unset(v) || (isPlainObject(v) && Object.values(v).every(unset)),
  why,
});

/** Fields that cannot change an answer, accepted on both endpoints: who asks, caching and service hints. */
export const INFORMATIONAL_FIELDS = [
  'user',
  'safety_identifier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'service_tier',
] as const;

/** Schema properties for fields checked here rather than by the schema. */
export function looseProperties(names: readonly string[], description: string): Record<string, object> {
  return Object.fromEntries(names.map((name) => [name, { description }]));
}

/** Refuses the first field of `body` set to a value its rule does not take as neutral. */
export function refuseUnneutral(
  body: Record<string, unknown>,
  rules: Readonly<Record<string, NeutralRule>>,
): void {
  for (const [field, rule] of Object.entries(rules)) {
    const value = body[field];
    if (!rule.neutral(value)) {
      const shown = JSON.stringify(value) ?? String(value);
      const clipped = shown.length > 80 ? `${shown.slice(0, 80)}…` : shown;
      throw validationError(field, `is not supported with ${clipped}: ${rule.why}`);
    }
  }
}
