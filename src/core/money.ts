/**
 * Money: amounts in USD are rounded to a nano-dollar (1e-9) where they are produced, so answers
 * read `0.0135`, never `0.013499999999999998`. Rounding at the source (prices, a run's running
 * cost, usage reports) rather than at each answer gives library users the same clean numbers, and
 * keeps the budget accounting consistent: a run's reservation and its settlement are rounded by
 * the same function, which never decreases when its input grows, so a cost that fits its worst
 * case still fits once both are rounded.
 */

/** The resolution of every USD amount agentpool reports: one nano-dollar. */
export const USD_RESOLUTION = 1e-9;

/**
 * `usd` rounded to the nearest nano-dollar (halves up). Values already on that grid come back
 * unchanged, so rounding twice changes nothing.
 */
export function roundUsd(usd: number): number {
  if (!Number.isFinite(usd)) return usd;
  return Math.round(usd * 1e9) / 1e9;
}
