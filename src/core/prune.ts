/**
 * Keeps a map of per-key state near a bound: once it reaches `max` entries, the oldest ones that
 * hold nothing worth keeping are dropped until a tenth of the room is free again, so the scan is
 * paid once per many insertions. Entries that are not idle stay, so the map exceeds `max` only
 * while that many keys are in use at once.
 */
export function pruneIdle<K, V>(map: Map<K, V>, max: number, isIdle: (value: V) => boolean): void {
  if (map.size < max) return;
  const target = Math.floor(max * 0.9);
  for (const [key, value] of map) {
    if (map.size <= target) return;
    if (isIdle(value)) map.delete(key);
  }
}
