/**
 * Redis for tests: the machine's server (127.0.0.1:6379, or AGENTPOOL_TEST_REDIS_URL), a fresh key
 * prefix per test so tests never see each other's keys, and a cleanup that deletes that prefix.
 * A missing Redis fails the test (never skips it): the cluster guarantees are tested for real.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis the tests use. */
export const TEST_REDIS_URL = process.env['AGENTPOOL_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** A unique prefix and a cleanup that deletes every key under it. */
export async function redisPrefix(
  label = 'test',
): Promise<{ url: string; prefix: string; cleanup: () => Promise<void> }> {
  const prefix = `agentpool-test:${label}:${randomBytes(6).toString('hex')}:`;
  const admin = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await admin.connect();
  } catch (err) {
    admin.disconnect();
    throw new Error(`the tests need Redis at ${TEST_REDIS_URL}: ${String(err)}`, { cause: err });
  }
  return {
    url: TEST_REDIS_URL,
    prefix,
    cleanup: async () => {
      try {
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await admin.del(...keys);
        } while (cursor !== '0');
      } finally {
        admin.disconnect();
      }
    },
  };
}
