/**
 * The policy factory: turns a configured policy name into an eviction policy, so the activation
 * cache depends on the interface and never on a concrete policy class.
 */
import { enumOption } from '../../core/options.ts';
import { LruPolicy } from './lru.ts';
import type { EvictionPolicy, PolicyName, PolicyOptions } from './policy.ts';
import { TinyLfuPolicy } from './tinylfu.ts';

/** Every policy name agentpool ships, in documentation order. */
export const POLICY_NAMES: readonly PolicyName[] = ['lru', 'tinylfu'];

/** Creates the named eviction policy; rejects unknown names and bad capacities with a validation error. */
export function createPolicy<K>(name: PolicyName, options: PolicyOptions<K>): EvictionPolicy<K> {
  const checked = enumOption('policy', name, POLICY_NAMES, name);
  switch (checked) {
    case 'lru':
      return new LruPolicy(options);
    case 'tinylfu':
      return new TinyLfuPolicy(options);
  }
}
