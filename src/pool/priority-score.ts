/**
 * The priority score of an inactive agent for preloading (docs/operations.md, "Usage and
 * preloading"): 0.4·frequency + 0.3·recency + 0.3·success, each term in [0, 1], so the score is too.
 *
 * - frequency = uses / the most uses among the candidates (0 when none has any);
 * - recency = 2^(−(now − lastUsedAt) / recencyHalfLifeMs): 1 just used, ½ one half-life ago;
 * - success = (successes + 1) / (successes + failures + 2): the success rate with one success and
 *   one failure assumed beforehand (Laplace), so an agent with no finished run counts ½, and one
 *   lucky run does not make an agent look perfect.
 */

/** The weights of the three terms; they add up to 1. */
export const SCORE_WEIGHTS = { frequency: 0.4, recency: 0.3, success: 0.3 } as const;

/** What the score reads of an agent's usage. */
export interface ScoredUsage {
  readonly uses: number;
  readonly successes: number;
  readonly failures: number;
  readonly lastUsedAt: number;
}

/** The three terms and the score. */
export interface PriorityScore {
  readonly frequency: number;
  readonly recency: number;
  readonly success: number;
  readonly score: number;
}

/** Scores `usage` among candidates whose most uses is `maxUses`, at `now`. */
export function priorityScore(
  usage: ScoredUsage,
  maxUses: number,
  now: number,
  recencyHalfLifeMs: number,
): PriorityScore {
  const frequency = maxUses > 0 ? Math.min(1, usage.uses / maxUses) : 0;
  const recency = 2 ** (-Math.max(0, now - usage.lastUsedAt) / recencyHalfLifeMs);
  const success = (usage.successes + 1) / (usage.successes + usage.failures + 2);
  const score =
    SCORE_WEIGHTS.frequency * frequency + SCORE_WEIGHTS.recency * recency + SCORE_WEIGHTS.success * success;
  return { frequency, recency, success, score };
}
