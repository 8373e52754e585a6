/**
 * Writes that can lose a race to another writer (another process on the same store): the store
 * refuses the loser with VERSION_CONFLICT (or AGENT_EXISTS), and the registry reads again and
 * retries, a bounded number of times.
 */
import { type ErrorCode, isAgentPoolError } from '../core/errors.ts';

/** Attempts of one write in all before a lost race is reported to the caller. */
export const MAX_WRITE_ATTEMPTS = 5;

/** Runs `write` (which reads what it needs first) again while it loses a race, at most MAX_WRITE_ATTEMPTS times. */
export async function retryRacedWrite<T>(
  write: () => Promise<T>,
  raced: readonly ErrorCode[] = ['VERSION_CONFLICT'],
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      const lost = raced.some((code) => isAgentPoolError(err, code));
      if (!lost || attempt >= MAX_WRITE_ATTEMPTS) throw err;
    }
  }
}
