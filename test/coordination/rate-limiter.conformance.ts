/**
 * The rate limiter's contract, run against every adapter (local, Redis): requests and tokens per
 * minute of one model, checked tokens first, a refusal counting nothing and saying exactly when
 * the window frees, a refund taking back a request never sent, models counted apart.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RateLimiter } from '../../src/coordination/rate-limiter.ts';

/** A limiter under test and what closes it. */
export interface RateLimiterHarness {
  readonly limiter: RateLimiter;
  close(): Promise<void>;
}

/** Noon UTC on a whole second. */
export const T0 = Date.UTC(2026, 0, 15, 12);
const MODEL = 'openai/gpt-x';

/** The conformance suite: `open` gives each test a fresh, empty limiter. */
export function rateLimiterConformance(name: string, open: () => Promise<RateLimiterHarness>): void {
  describe(`rate limiter: ${name}`, () => {
    it('allows requestsPerMinute requests, then refuses with the wait until the oldest leaves the window', async () => {
      const h = await open();
      try {
        const limit = h.limiter.forModel(MODEL, { requestsPerMinute: 2, tokensPerMinute: undefined });
        assert.equal(await limit.take(T0), undefined);
        assert.equal(await limit.take(T0 + 15_000), undefined);
        assert.deepEqual(await limit.take(T0 + 20_000), { limit: 'requests', perMinute: 2, waitMs: 40_000 });
        assert.deepEqual(await limit.take(T0 + 20_000), { limit: 'requests', perMinute: 2, waitMs: 40_000 });
        assert.equal(await limit.take(T0 + 60_000), undefined, 'the first left the window');
        assert.deepEqual(await limit.take(T0 + 60_000), { limit: 'requests', perMinute: 2, waitMs: 15_000 });
      } finally {
        await h.close();
      }
    });

    it('a refunded request (never sent) frees its place at once', async () => {
      const h = await open();
      try {
        const limit = h.limiter.forModel(MODEL, { requestsPerMinute: 1, tokensPerMinute: undefined });
        assert.equal(await limit.take(T0), undefined);
        limit.refund(T0);
        assert.equal(await limit.take(T0 + 1000), undefined);
        assert.equal((await limit.take(T0 + 1000))?.limit, 'requests');
      } finally {
        await h.close();
      }
    });

    it('refuses once the tokens of the last minute reached tokensPerMinute, and such a refusal counts no request', async () => {
      const h = await open();
      try {
        const limit = h.limiter.forModel(MODEL, { requestsPerMinute: 2, tokensPerMinute: 100 });
        limit.addTokens(60, T0);
        assert.equal(await limit.take(T0 + 500), undefined, '60 of 100 tokens');
        limit.refund(T0 + 500);
        limit.addTokens(40, T0 + 500);
        limit.addTokens(0, T0 + 500);
        assert.deepEqual(await limit.take(T0 + 1000), { limit: 'tokens', perMinute: 100, waitMs: 59_000 });
        assert.deepEqual(await limit.take(T0 + 1000), { limit: 'tokens', perMinute: 100, waitMs: 59_000 });
        // Once the tokens left, both requests of the minute are free: the refusals took none.
        assert.equal(await limit.take(T0 + 60_000), undefined);
        assert.equal(await limit.take(T0 + 60_000), undefined);
        assert.deepEqual(await limit.take(T0 + 60_000), { limit: 'requests', perMinute: 2, waitMs: 60_000 });
      } finally {
        await h.close();
      }
    });

    it('counts each model apart, and tokens alone when only tokens are limited', async () => {
      const h = await open();
      try {
        const a = h.limiter.forModel(MODEL, { requestsPerMinute: 1, tokensPerMinute: undefined });
        const b = h.limiter.forModel('openai/gpt-y', { requestsPerMinute: 1, tokensPerMinute: undefined });
        assert.equal(await a.take(T0), undefined);
        assert.equal(await b.take(T0), undefined);
        const tokensOnly = h.limiter.forModel('openai/gpt-z', {
          requestsPerMinute: undefined,
          tokensPerMinute: 10,
        });
        for (let i = 0; i < 5; i++) assert.equal(await tokensOnly.take(T0), undefined);
        tokensOnly.addTokens(10, T0);
        assert.equal((await tokensOnly.take(T0))?.limit, 'tokens');
        await h.limiter.flush();
      } finally {
        await h.close();
      }
    });
  });
}
