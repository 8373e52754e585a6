/**
 * What governance enforces and where the numbers come from: validation of a project's quotas and
 * budgets (as an admin sets them, or as the pool's defaults), the merge of the two, and the
 * pool-level governance options. A project's own value wins field by field; a field set nowhere
 * is unlimited.
 */
import { validationError } from '../core/errors.ts';
import {
  enumOption,
  intOption,
  isPlainObject,
  numberOption,
  objectOption,
  rejectUnknownKeys,
} from '../core/options.ts';
import type {
  BudgetLimits,
  ProjectLimits,
  QuotaLimits,
  RetentionSettings,
  TierSettings,
} from '../store/project-ports.ts';

export type { BudgetLimits, ProjectLimits, QuotaLimits } from '../store/project-ports.ts';

const QUOTA_FIELDS = ['maxAgents', 'maxConcurrentRuns', 'runsPerMinute', 'tokensPerMinute'] as const;
const BUDGET_FIELDS = ['dailyUsd', 'monthlyUsd', 'perRunUsd'] as const;
const MAX_USD = 1e9;
/** A hundred years: more is a typo (0 keeps data for good). */
export const MAX_RETENTION_DAYS = 36_500;

/**
 * Validates quotas, budgets, tiers and retention (`{ quotas?, budgets?, tiers?, retention? }`), rejecting unknown fields and bad values
 * by field name (`limits.budgets.dailyUsd must be …`). `null` for a field means unlimited and is
 * dropped, so a PATCH can clear one limit.
 */
export function parseProjectLimits(input: unknown, field = 'limits'): ProjectLimits {
  if (!isPlainObject(input)) throw validationError(field, 'must be an object');
  const record = objectOption(field, input, ['quotas', 'budgets', 'tiers', 'retention']);
  const out: {
    quotas?: QuotaLimits;
    budgets?: BudgetLimits;
    tiers?: TierSettings;
    retention?: RetentionSettings;
  } = {};
  if (record['retention'] !== undefined && record['retention'] !== null) {
    const r = objectOption(`${field}.retention`, record['retention'], ['days']);
    if (r['days'] !== undefined && r['days'] !== null) {
      out.retention = { days: intOption(`${field}.retention.days`, r['days'], 0, 0, MAX_RETENTION_DAYS) };
    }
  }
  if (record['tiers'] !== undefined && record['tiers'] !== null) {
    const t = objectOption(`${field}.tiers`, record['tiers'], ['default']);
    if (t['default'] !== undefined && t['default'] !== null) {
      out.tiers = {
        default: enumOption(`${field}.tiers.default`, t['default'], ['hot', 'warm', 'cold'], 'warm'),
      };
    }
  }
  if (record['quotas'] !== undefined && record['quotas'] !== null) {
    const q = objectOption(`${field}.quotas`, record['quotas'], QUOTA_FIELDS);
    const quotas: Record<string, number> = {};
    for (const key of QUOTA_FIELDS) {
      if (q[key] === undefined || q[key] === null) continue;
      quotas[key] = intOption(`${field}.quotas.${key}`, q[key], 0, 0, 1_000_000_000);
    }
    out.quotas = quotas;
  }
  if (record['budgets'] !== undefined && record['budgets'] !== null) {
    const b = objectOption(`${field}.budgets`, record['budgets'], BUDGET_FIELDS);
    const budgets: Record<string, number> = {};
    for (const key of BUDGET_FIELDS) {
      if (b[key] === undefined || b[key] === null) continue;
      budgets[key] = numberOption(`${field}.budgets.${key}`, b[key], 0, 0, MAX_USD);
    }
    out.budgets = budgets;
  }
  return out;
}

/** The project's limits over the defaults, field by field. */
export function mergeLimits(defaults: ProjectLimits, own: ProjectLimits): ProjectLimits {
  return {
    quotas: { ...defaults.quotas, ...own.quotas },
    budgets: { ...defaults.budgets, ...own.budgets },
    ...((defaults.tiers !== undefined || own.tiers !== undefined) && {
      tiers: { ...defaults.tiers, ...own.tiers },
    }),
  };
}

/** Options of governance. */
export interface GovernanceOptions {
  /** Limits of every project that does not set its own (field by field). @default {} (unlimited) */
  defaults?: ProjectLimits;
  /**
   * Output tokens a model call may produce when its agent sets no `maxTokens` and a budget
   * applies; sent to the provider as the cap, so the worst case that is reserved holds. @default 4096
   */
  defaultMaxTokens?: number;
  /** How long a project's limits are cached before they are read again from the store. @default 5000 */
  limitsCacheMs?: number;
}

/** Governance options with every default applied. */
export interface ResolvedGovernanceOptions {
  readonly defaults: ProjectLimits;
  readonly defaultMaxTokens: number;
  readonly limitsCacheMs: number;
}

/** Applies defaults and rejects bad values by field name (`governance.defaults.quotas.runsPerMinute …`). */
export function resolveGovernanceOptions(options: GovernanceOptions = {}): ResolvedGovernanceOptions {
  rejectUnknownKeys('governance.', options, ['defaults', 'defaultMaxTokens', 'limitsCacheMs']);
  return {
    defaults:
      options.defaults === undefined ? {} : parseProjectLimits(options.defaults, 'governance.defaults'),
    defaultMaxTokens: intOption('governance.defaultMaxTokens', options.defaultMaxTokens, 4096, 1, 1_000_000),
    limitsCacheMs: intOption('governance.limitsCacheMs', options.limitsCacheMs, 5000, 0, 3_600_000),
  };
}
