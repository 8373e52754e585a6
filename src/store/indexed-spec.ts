/**
 * Validation of the spec fields a store indexes (see IndexedSpec), shared by every adapter.
 */
import { validationError } from '../core/errors.ts';
import type { IndexedSpec } from './ports.ts';

/** Rejects a spec whose indexed fields a store could not index, naming the field. */
export function checkIndexedSpec(spec: IndexedSpec): void {
  if (typeof spec.tier !== 'string') throw validationError('spec.tier', 'must be a string');
  if (typeof spec.labels !== 'object' || spec.labels === null) {
    throw validationError('spec.labels', 'must be an object of strings');
  }
  for (const [k, v] of Object.entries(spec.labels)) {
    if (typeof v !== 'string') throw validationError(`spec.labels.${k}`, 'must be a string');
  }
  const ttl = spec.ttlSeconds;
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0)) {
    throw validationError('spec.ttlSeconds', 'must be a non-negative number');
  }
}
