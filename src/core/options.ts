/**
 * Helpers for `resolveXOptions()` functions: each reads one field, applies its default and
 * rejects a bad value with a message naming the field ("pool.maxActive must be a positive integer, got -3").
 */
import { validationError } from './errors.ts';

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function fail(field: string, expected: string, value: unknown): never {
  throw validationError(field, `must be ${expected}, got ${describe(value)}`, { value: describe(value) });
}

/** An integer ≥ `min` (1 unless given), or the default when undefined. */
export function intOption(
  field: string,
  value: unknown,
  fallback: number,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range =
      max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
    fail(field, min === 1 && max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : range, value);
  }
  return value;
}

/** A finite number within [min, max], or the default when undefined. */
export function numberOption(
  field: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(field, `a number from ${min} to ${max}`, value);
  }
  return value;
}

/** One of the listed strings, or the default when undefined. */
export function enumOption<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    fail(field, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
  }
  return value as T;
}

/** A boolean, or the default when undefined. */
export function boolOption(field: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') fail(field, 'a boolean', value);
  return value;
}

/** True for a plain JSON-like object: not null, not an array. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An object option: `{}` when undefined, else it must be a plain object, and with `known`, hold
 * no other keys (`field.key is not a known field`).
 */
export function objectOption(
  field: string,
  value: unknown,
  known?: readonly string[],
): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw validationError(field, 'must be an object');
  if (known !== undefined) rejectUnknownKeys(`${field}.`, value, known);
  return value;
}

/** Rejects keys of `input` that are not in `known`, naming the first one found. */
export function rejectUnknownKeys(prefix: string, input: object, known: readonly string[]): void {
  // for-in, not Object.keys: no array of the keys per call (a run checks its options this way).
  for (const key in input) {
    if (Object.hasOwn(input, key) && !known.includes(key)) {
      throw validationError(`${prefix}${key}`, `is not a known field (known: ${known.join(', ')})`);
    }
  }
}
