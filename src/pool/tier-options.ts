/**
 * Options of tiers (pool/tiers.ts): how `auto` agents are classified from traffic, and the
 * per-tier limits; their defaults and their validation.
 */
import { validationError } from '../core/errors.ts';
import { boolOption, intOption, numberOption, objectOption } from '../core/options.ts';

/** The tiers an instance serves in (`auto` is classified into one of them). */
export const SERVING_TIERS = ['hot', 'warm', 'cold'] as const;
/** One of {@link SERVING_TIERS}. */
export type ServingTier = (typeof SERVING_TIERS)[number];

/** Limits of one tier; 0 is no limit. */
export interface TierLimits {
  /** Live instances of the tier at most; an activation beyond is refused with `TIER_SATURATED`. @default 0 */
  maxInstances?: number;
  /** Leases (runs) on the tier's instances at once at most; beyond, `TIER_SATURATED`. @default 0 */
  maxConcurrentRuns?: number;
}

/** How `auto` agents are classified and what each tier may hold. */
export interface TierOptions {
  /** Classify `auto` agents from traffic (else they serve as warm). @default true */
  classify?: boolean;
  /** How often they are re-classified, ms. @default 60000 */
  intervalMs?: number;
  /** `auto` agents made hot (pinned, prewarmed) at most. @default 10 */
  maxHot?: number;
  /**
   * Score (decayed uses per interval, see `decay`) from which an `auto` agent becomes hot; a hot
   * one goes back to warm below half of it (hysteresis). @default 20
   */
  hotMinScore?: number;
  /**
   * Score below which an `auto` agent becomes cold (one-shot instances); a cold one goes back to
   * warm from twice it (hysteresis). @default 0.1
   */
  coldMaxScore?: number;
  /** Share of an agent's score kept from one interval to the next (its uses are added). @default 0.5 */
  decay?: number;
  /** `auto` agents whose scores are tracked at most (the least scored are forgotten first). @default 10000 */
  maxTracked?: number;
  /** Per-tier limits. @default no limits */
  limits?: Partial<Record<ServingTier, TierLimits>>;
}

/** {@link TierOptions} with every default applied. */
export type ResolvedTierOptions = Required<Omit<TierOptions, 'limits'>> & {
  limits: Record<ServingTier, Required<TierLimits>>;
};

const FIELDS = [
  'classify',
  'intervalMs',
  'maxHot',
  'hotMinScore',
  'coldMaxScore',
  'decay',
  'maxTracked',
  'limits',
];

/** Applies defaults and rejects bad values naming the field (`pool.tiers.maxHot`). */
export function resolveTierOptions(input: unknown = {}, field = 'pool.tiers'): ResolvedTierOptions {
  const given = objectOption(field, input, FIELDS);
  const hotMinScore = numberOption(`${field}.hotMinScore`, given['hotMinScore'], 20, 0, 1e9);
  const coldMaxScore = numberOption(`${field}.coldMaxScore`, given['coldMaxScore'], 0.1, 0, 1e9);
  if (2 * coldMaxScore > hotMinScore / 2) {
    throw validationError(
      `${field}.coldMaxScore`,
      `must leave room for warm: 2 × coldMaxScore must be ≤ hotMinScore / 2 (${hotMinScore / 2}), got ${coldMaxScore}`,
    );
  }
  const limitsGiven = objectOption(`${field}.limits`, given['limits'], [...SERVING_TIERS]);
  const limits = {} as Record<ServingTier, Required<TierLimits>>;
  for (const tier of SERVING_TIERS) {
    const f = `${field}.limits.${tier}`;
    const l = objectOption(f, limitsGiven[tier], ['maxInstances', 'maxConcurrentRuns']);
    limits[tier] = {
      maxInstances: intOption(`${f}.maxInstances`, l['maxInstances'], 0, 0),
      maxConcurrentRuns: intOption(`${f}.maxConcurrentRuns`, l['maxConcurrentRuns'], 0, 0),
    };
  }
  return {
    classify: boolOption(`${field}.classify`, given['classify'], true),
    intervalMs: intOption(`${field}.intervalMs`, given['intervalMs'], 60_000, 1000),
    maxHot: intOption(`${field}.maxHot`, given['maxHot'], 10, 0),
    hotMinScore,
    coldMaxScore,
    decay: numberOption(`${field}.decay`, given['decay'], 0.5, 0, 0.99),
    maxTracked: intOption(`${field}.maxTracked`, given['maxTracked'], 10_000),
    limits,
  };
}
