import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import type {
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import type { RateLimiter } from '../../src/coordination/rate-limiter.ts';
import { type Clock, ManualClock, systemClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { LocalEventBus } from '../../src/events/bus.ts';
import { DemoLanguageModel } from '../../src/models/demo-model.ts';
import type { ModelResilienceOptions } from '../../src/models/resilience-options.ts';
import {
  type ModelEvent,
  ModelGuards,
  type ModelObserver,
  type ModelStream,
  type ModelTarget,
} from '../../src/models/resilient-model.ts';
import {
  type FakeChatRequest,
  type FakeOpenAI,
  type FakeReply,
  startFakeOpenAI,
} from '../support/fake-openai.ts';

const PRIMARY = 'openai-compatible/fake-model';
const BACKUP = 'openai-compatible/backup-model';
const context = { project: 'acme', agent: 'helper', runId: 'run_1' };
/** Retries without waiting long; each test overrides what it is about. */
const fast = { initialDelayMs: 1, maxDelayMs: 5 };

function setup(options: ModelResilienceOptions = {}, clock: Clock = systemClock) {
  const bus = new LocalEventBus<ModelEvent>();
  const events: ModelEvent[] = [];
  bus.on('*', (e) => events.push(e));
  const seen: string[] = [];
  const observer: ModelObserver = {
    retried: (m) => seen.push(`retried ${m}`),
    throttled: (m, limit) => seen.push(`throttled ${m} ${limit}`),
    rejected: (m, code) => seen.push(`rejected ${m} ${code}`),
    breakerChanged: (m, state) => seen.push(`breaker ${m} ${state}`),
    fallback: (from, to) => seen.push(`fallback ${from} ${to}`),
    usageExceededCap: (m) => seen.push(`usage exceeded cap ${m}`),
  };
  const guards = new ModelGuards(options, { clock, bus, observer });
  const statsOf = (ref: string) => guards.stats().find((s) => s.model === ref);
  return { guards, events, seen, statsOf };
}

function target(fake: FakeOpenAI, ref = PRIMARY): ModelTarget {
  const provider = createOpenAICompatible({ baseURL: fake.url, name: 'fake', includeUsage: true });
  return { ref, model: provider.chatModel(ref.split('/')[1] as string) };
}

const ask = (text = 'hi', extra: Partial<LanguageModelV3CallOptions> = {}): LanguageModelV3CallOptions => ({
  prompt: [{ role: 'user', content: [{ type: 'text', text }] }],
  ...extra,
});

/** The parts of a guarded stream, read as the runner reads them. */
async function* partsOf(stream: ModelStream): AsyncGenerator<LanguageModelV3StreamPart> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function textOf(stream: ModelStream): Promise<string> {
  let text = '';
  for await (const part of partsOf(stream)) {
    if (part.type === 'text-delta') text += part.delta;
    if (part.type === 'error') throw part.error as Error;
  }
  return text;
}

/** An assert.rejects validator: the code, and each listed detail. */
const fails =
  (code: string, details: Record<string, unknown> = {}) =>
  (err: unknown) => {
    assert.ok(isAgentPoolError(err, code as never), `expected ${code}, got ${String(err)}`);
    for (const [k, v] of Object.entries(details)) assert.deepEqual(err.details[k], v, `details.${k}`);
    return true;
  };

/** A one-shot reply that also notes when its request arrived. */
const noted = (arrivals: number[], reply: FakeReply) => (): FakeReply => {
  arrivals.push(performance.now());
  return reply;
};

let fake: FakeOpenAI;
beforeEach(async () => {
  fake = await startFakeOpenAI();
});
afterEach(() => fake.close());

describe('model guards: retries', () => {
  it('retries a 500 and answers with the next attempt', async () => {
    fake.script({ status: 500 });
    const { guards, seen, statsOf } = setup({ retry: fast });
    const { ref, stream } = await guards.stream([target(fake)], ask('hi'), context);
    assert.equal(ref, PRIMARY);
    assert.equal(await textOf(stream), 'Echo: hi');
    assert.equal(fake.requests.length, 2);
    assert.equal(statsOf(PRIMARY)?.retries, 1);
    assert.deepEqual(seen, [`retried ${PRIMARY}`]);
  });

  it('waits as long as retry-after-ms says before retrying', async () => {
    const arrivals: number[] = [];
    fake.script(
      noted(arrivals, { status: 503, headers: { 'retry-after-ms': '300' } }),
      noted(arrivals, { text: 'later' }),
    );
    const { guards } = setup({ retry: fast });
    const { stream } = await guards.stream([target(fake)], ask(), context);
    assert.equal(await textOf(stream), 'later');
    const [first, second] = arrivals as [number, number];
    assert.ok(second - first >= 280, `the retry came ${second - first} ms later`);
  });

  it('does not wait for a Retry-After above maxRetryAfterMs: the call fails at once', async () => {
    fake.script({ status: 429, headers: { 'retry-after': '120' } });
    const { guards } = setup({ retry: { ...fast, maxRetryAfterMs: 1000 } });
    const started = performance.now();
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('RATE_LIMITED', {
        model: PRIMARY,
        scope: 'provider-response',
        retryAfterSeconds: 120,
        attempts: 1,
      }),
    );
    assert.ok(performance.now() - started < 1000);
    assert.equal(fake.requests.length, 1);
  });

  it('reads Retry-After as an HTTP date too', async () => {
    fake.script({ status: 503, headers: { 'retry-after': new Date(Date.now() + 3_600_000).toUTCString() } });
    const { guards } = setup({ retry: fast });
    await assert.rejects(guards.stream([target(fake)], ask(), context), (err: unknown) => {
      fails('MODEL_CALL_FAILED', { providerStatus: 503, retryable: true, attempts: 1 })(err);
      const seconds = (err as { details: { retryAfterSeconds: number } }).details.retryAfterSeconds;
      assert.ok(seconds > 3590 && seconds <= 3600, `retryAfterSeconds ${seconds}`);
      return true;
    });
    assert.equal(fake.requests.length, 1);
  });

  it('gives up on a 429 after maxAttempts with RATE_LIMITED from the provider, and the breaker stays closed', async () => {
    const tooMany = { status: 429, headers: { 'retry-after-ms': '10' } };
    fake.script(tooMany, tooMany, tooMany);
    const { guards, statsOf } = setup({ retry: fast, breaker: { threshold: 2 } });
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('RATE_LIMITED', { scope: 'provider-response', attempts: 3, retryAfterSeconds: 1 }),
    );
    assert.equal(fake.requests.length, 3);
    assert.equal(statsOf(PRIMARY)?.breaker, 'closed');
  });

  it('never retries a client error (400, 401, 403, 404, 422), nor counts it against the breaker', async () => {
    const { guards, statsOf } = setup({ retry: fast, breaker: { threshold: 2 } });
    for (const status of [400, 401, 403, 404, 422]) {
      fake.script({ status });
      await assert.rejects(
        guards.stream([target(fake)], ask(), context),
        fails('MODEL_CALL_FAILED', { providerStatus: status, retryable: false, attempts: 1 }),
      );
    }
    assert.equal(fake.requests.length, 5);
    assert.equal(statsOf(PRIMARY)?.breaker, 'closed');
    assert.equal(statsOf(PRIMARY)?.retries, 0);
  });

  it('retries a refused connection', async () => {
    const gone = await startFakeOpenAI();
    await gone.close();
    const { guards, statsOf } = setup({ retry: { ...fast, maxAttempts: 2 } });
    await assert.rejects(
      guards.stream([target(gone)], ask(), context),
      fails('MODEL_CALL_FAILED', { retryable: true, attempts: 2 }),
    );
    assert.equal(statsOf(PRIMARY)?.retries, 1);
  });
});

describe('model guards: attempt timeout', () => {
  it('abandons an attempt that sends nothing within timeoutMs, and retries it', async () => {
    fake.script({ hang: true });
    const { guards } = setup({ timeoutMs: 150, retry: fast });
    const { stream } = await guards.stream([target(fake)], ask('hi'), context);
    assert.equal(await textOf(stream), 'Echo: hi');
    assert.equal(fake.requests.length, 2);
    for (let i = 0; i < 50 && fake.aborted === 0; i++) await sleep(10);
    assert.equal(fake.aborted, 1, 'the hanging request was aborted');
  });

  it('fails with MODEL_TIMEOUT when every attempt hangs', async () => {
    fake.script({ hang: true }, { hang: true });
    const { guards } = setup({ timeoutMs: 100, retry: { ...fast, maxAttempts: 2 } });
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('MODEL_TIMEOUT', { model: PRIMARY, timeoutMs: 100, attempts: 2 }),
    );
    assert.equal(fake.requests.length, 2);
  });

  it('runs the attempt timeout on the injected clock: a hanging call fails when the clock passes it', async () => {
    fake.script({ hang: true });
    const clock = new ManualClock();
    const { guards } = setup({ timeoutMs: 60_000, retry: { ...fast, maxAttempts: 1 } }, clock);
    const sent = fake.requests.length;
    const call = guards.stream([target(fake)], ask(), context);
    const outcome = call.then(
      () => 'answered',
      (err: unknown) => err,
    );
    while (fake.requests.length === sent) await sleep(5); // the request is out, and hangs
    clock.advance(59_999);
    await sleep(20);
    assert.equal(await Promise.race([outcome, Promise.resolve('pending')]), 'pending');
    clock.advance(1);
    assert.ok(fails('MODEL_TIMEOUT', { timeoutMs: 60_000 })(await outcome));
  });

  it('covers only the wait for the first part, not the whole stream', async () => {
    const slow = await startFakeOpenAI({ chunkDelayMs: 60 });
    try {
      const { guards } = setup({ timeoutMs: 150, retry: fast });
      const { stream } = await guards.stream([target(slow)], ask('a slow but steady answer'), context);
      const started = performance.now();
      assert.equal(await textOf(stream), 'Echo: a slow but steady answer');
      assert.ok(performance.now() - started > 150, 'the stream outlasted the timeout');
      assert.equal(slow.requests.length, 1);
    } finally {
      await slow.close();
    }
  });
});

describe('model guards: circuit breaker', () => {
  it('opens after threshold consecutive failures, fails fast, half-opens after halfOpenAfterMs and closes after a success', async () => {
    fake.script({ status: 500 }, { status: 500 });
    const { guards, events, seen, statsOf } = setup({
      retry: { maxAttempts: 1 },
      breaker: { threshold: 2, halfOpenAfterMs: 100 },
    });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(guards.stream([target(fake)], ask(), context), fails('MODEL_CALL_FAILED'));
    }
    assert.equal(statsOf(PRIMARY)?.breaker, 'open');
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('MODEL_UNAVAILABLE', { model: PRIMARY, retryAfterSeconds: 1 }),
    );
    assert.equal(fake.requests.length, 2, 'an open breaker does not reach the provider');
    assert.equal(statsOf(PRIMARY)?.rejected, 1);

    await sleep(130);
    const { stream } = await guards.stream([target(fake)], ask('again'), context);
    assert.equal(await textOf(stream), 'Echo: again');
    assert.deepEqual(
      events.map((e) => e.type),
      ['breaker.opened', 'breaker.half_opened', 'breaker.closed'],
    );
    const opened = events[0] as Extract<ModelEvent, { type: 'breaker.opened' }>;
    assert.equal(opened.model, PRIMARY);
    assert.equal(opened.reason.code, 'MODEL_CALL_FAILED');
    assert.deepEqual(
      seen.filter((s) => s.startsWith('breaker')),
      [`breaker ${PRIMARY} open`, `breaker ${PRIMARY} half-open`, `breaker ${PRIMARY} closed`],
    );
    assert.equal(statsOf(PRIMARY)?.breaker, 'closed');
  });

  it('lets one trial call through when half-open, failing the others fast, and reopens if it fails', async () => {
    fake.script({ status: 500 }, { delayMs: 150, then: { status: 500 } });
    const { guards, events } = setup({
      retry: { maxAttempts: 1 },
      breaker: { threshold: 1, halfOpenAfterMs: 50 },
    });
    await assert.rejects(guards.stream([target(fake)], ask(), context), fails('MODEL_CALL_FAILED'));
    await sleep(70);
    const settled: string[] = [];
    const trial = guards.stream([target(fake)], ask(), context).finally(() => settled.push('trial'));
    await assert.rejects(guards.stream([target(fake)], ask(), context), fails('MODEL_UNAVAILABLE'));
    settled.push('other');
    await assert.rejects(trial, fails('MODEL_CALL_FAILED', { providerStatus: 500 }));
    assert.deepEqual(settled, ['other', 'trial'], 'the other call did not wait for the trial');
    assert.equal(fake.requests.length, 2);
    assert.deepEqual(
      events.map((e) => e.type),
      ['breaker.opened', 'breaker.half_opened', 'breaker.opened'],
    );
  });

  it('with the sampled strategy, opens once more than failureRatio of at least minimumCalls failed', async () => {
    const { guards, statsOf } = setup({
      retry: { maxAttempts: 1 },
      breaker: { strategy: 'sampled', failureRatio: 0.5, minimumCalls: 4, windowMs: 10_000 },
    });
    const call = async (reply: FakeReply | undefined, state: string) => {
      if (reply !== undefined) fake.script(reply);
      try {
        await textOf((await guards.stream([target(fake)], ask(), context)).stream);
      } catch {
        // failures are the point
      }
      assert.equal(statsOf(PRIMARY)?.breaker, state);
    };
    await call({ status: 500 }, 'closed'); // 1 of 1 failed, but too few calls to judge
    await call({ status: 502 }, 'closed'); // 2 of 2
    await call(undefined, 'closed'); // 2 of 3
    await call(undefined, 'closed'); // 2 of 4: not more than half
    await call({ status: 503 }, 'open'); // 3 of 5
  });
});

describe('model guards: bulkhead', () => {
  it('refuses with MODEL_BUSY when every slot is taken and the queue is full; a call holds its slot until its stream ends', async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const first = await guards.stream([target(fake)], ask('one'), context);
    assert.equal(statsOf(PRIMARY)?.inFlight, 1);
    await assert.rejects(
      guards.stream([target(fake)], ask('two'), context),
      fails('MODEL_BUSY', { model: PRIMARY }),
    );
    assert.equal(fake.requests.length, 1);
    assert.equal(await textOf(first.stream), 'Echo: one');
    const third = await guards.stream([target(fake)], ask('three'), context);
    assert.equal(await textOf(third.stream), 'Echo: three');
    assert.equal(statsOf(PRIMARY)?.rejected, 1);
  });

  it('queues up to maxQueue calls and serves them in turn', async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const first = await guards.stream([target(fake)], ask('one'), context);
    const second = guards.stream([target(fake)], ask('two'), context);
    assert.equal(statsOf(PRIMARY)?.queued, 1);
    await assert.rejects(guards.stream([target(fake)], ask('three'), context), fails('MODEL_BUSY'));
    assert.equal(await textOf(first.stream), 'Echo: one');
    assert.equal(await textOf((await second).stream), 'Echo: two');
    assert.equal(statsOf(PRIMARY)?.inFlight, 0);
  });
});

describe('model guards: a bulkhead fair across projects', () => {
  /** A slow provider: each request waits until the test lets it answer, in arrival order. */
  function slowProvider(n: number) {
    const waiting: (() => void)[] = [];
    fake.script(
      ...Array.from({ length: n }, () => async (req: FakeChatRequest): Promise<FakeReply> => {
        await new Promise<void>((resolve) => waiting.push(resolve));
        return { text: `answered ${String(req.messages.at(-1)?.content)}` };
      }),
    );
    return {
      /** Answers the oldest request once it has arrived. */
      async answerNext(): Promise<void> {
        while (waiting.length === 0) await sleep(1);
        waiting.shift()?.();
      },
    };
  }
  /** Who sent each request the provider received, in arrival order. */
  const arrivals = () => fake.requests.map((r) => String(r.messages.at(-1)?.content));

  it("serves another project's single call after one call of the project that queued 200 on a slow model", async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 1000 } });
    const provider = slowProvider(1000);
    const noisy = new AbortController();
    const flood = Array.from({ length: 200 }, (_, i) =>
      guards
        .stream([target(fake)], ask(`noisy ${i}`, { abortSignal: noisy.signal }), context)
        .then((r) => textOf(r.stream))
        .catch(() => 'cancelled'),
    );
    const quiet = guards
      .stream([target(fake)], ask('quiet'), { ...context, project: 'quiet' })
      .then((r) => textOf(r.stream));
    assert.deepEqual([statsOf(PRIMARY)?.inFlight, statsOf(PRIMARY)?.queued], [1, 200]);
    while (!arrivals().includes('quiet')) await provider.answerNext();
    assert.deepEqual(arrivals(), ['noisy 0', 'noisy 1', 'quiet'], 'one round: one call of the other project');
    await provider.answerNext();
    assert.equal(await quiet, 'answered quiet');
    noisy.abort(new Error('enough')); // the rest of the flood gives up, queued or in flight
    const outcomes = await Promise.all(flood);
    assert.deepEqual(outcomes.slice(0, 2), ['answered noisy 0', 'answered noisy 1']);
    assert.deepEqual(new Set(outcomes.slice(2)), new Set(['cancelled']));
    assert.deepEqual([statsOf(PRIMARY)?.inFlight, statsOf(PRIMARY)?.queued], [0, 0]);
  });

  it('refuses a project beyond maxQueuePerProject with MODEL_BUSY while another project still queues', async () => {
    const { guards, statsOf } = setup({
      bulkhead: { maxConcurrent: 1, maxQueue: 10, maxQueuePerProject: 2 },
    });
    const provider = slowProvider(10);
    const read = (call: ReturnType<typeof guards.stream>) => call.then((r) => textOf(r.stream));
    const calls = [0, 1, 2].map((i) => read(guards.stream([target(fake)], ask(`a ${i}`), context)));
    await assert.rejects(
      guards.stream([target(fake)], ask('a 3'), context),
      fails('MODEL_BUSY', { model: PRIMARY, project: 'acme', reason: 'key-full' }),
    );
    const other = read(guards.stream([target(fake)], ask('b'), { ...context, project: 'other' }));
    assert.equal(statsOf(PRIMARY)?.queued, 3);
    for (let i = 0; i < 4; i++) await provider.answerNext();
    const texts = await Promise.all([...calls, other]);
    assert.deepEqual(texts, ['answered a 0', 'answered a 1', 'answered a 2', 'answered b']);
    assert.deepEqual(arrivals(), ['a 0', 'a 1', 'b', 'a 2']);
  });
});

describe('model guards: provider rate limits', () => {
  it('refuses with RATE_LIMITED once requestsPerMinute is reached by any caller of the ref, until the window moves on', async () => {
    const clock = new ManualClock();
    const { guards, seen } = setup({ rateLimit: { requestsPerMinute: 2 } }, clock);
    // Two callers, two model objects, one ref: one shared limit.
    for (const text of ['a', 'b']) {
      assert.equal(
        await textOf((await guards.stream([target(fake)], ask(text), context)).stream),
        `Echo: ${text}`,
      );
    }
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('RATE_LIMITED', { model: PRIMARY, scope: 'provider', limit: 'requests', retryAfterSeconds: 60 }),
    );
    assert.equal(fake.requests.length, 2);
    assert.ok(seen.includes(`throttled ${PRIMARY} requests`));
    clock.advance(30_000);
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('RATE_LIMITED', { retryAfterSeconds: 30 }),
    );
    clock.advance(30_000);
    assert.equal(await textOf((await guards.stream([target(fake)], ask('c'), context)).stream), 'Echo: c');
  });

  it('counts the tokens of finished streams against tokensPerMinute', async () => {
    const clock = new ManualClock();
    const { guards, statsOf } = setup({ rateLimit: { tokensPerMinute: 100 } }, clock);
    fake.script({ text: 'big', usage: { prompt_tokens: 70, completion_tokens: 30 } });
    assert.equal(await textOf((await guards.stream([target(fake)], ask(), context)).stream), 'big');
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('RATE_LIMITED', { scope: 'provider', limit: 'tokens', retryAfterSeconds: 60 }),
    );
    assert.equal(statsOf(PRIMARY)?.throttled, 1);
    clock.advance(60_000);
    assert.equal(await textOf((await guards.stream([target(fake)], ask('x'), context)).stream), 'Echo: x');
  });
});

describe('model guards: fallbacks', () => {
  const route = () => [target(fake, PRIMARY), target(fake, BACKUP)];

  it('answers from the fallback when the primary fails, and says so', async () => {
    fake.script({ status: 500 });
    const { guards, events, seen, statsOf } = setup({ retry: { maxAttempts: 1 } });
    const { ref, stream } = await guards.stream(route(), ask('hi'), context);
    assert.equal(ref, BACKUP);
    assert.equal(await textOf(stream), 'Echo: hi');
    assert.deepEqual(
      fake.requests.map((r) => r.model),
      ['fake-model', 'backup-model'],
    );
    const fallback = events.find((e) => e.type === 'model.fallback');
    assert.deepEqual(fallback && { ...fallback, at: 0, reason: fallback.reason.code }, {
      type: 'model.fallback',
      at: 0,
      from: PRIMARY,
      to: BACKUP,
      reason: 'MODEL_CALL_FAILED',
      ...context,
    });
    assert.ok(seen.includes(`fallback ${PRIMARY} ${BACKUP}`));
    assert.equal(statsOf(PRIMARY)?.fallbacks, 1);
    assert.equal(statsOf(PRIMARY)?.failures, 1);
  });

  it('does not fall back on a 400: the request itself is wrong', async () => {
    fake.script({ status: 400 });
    const { guards, events } = setup();
    await assert.rejects(
      guards.stream(route(), ask(), context),
      fails('MODEL_CALL_FAILED', { providerStatus: 400, attempted: [PRIMARY] }),
    );
    assert.deepEqual(
      fake.requests.map((r) => r.model),
      ['fake-model'],
    );
    assert.equal(events.length, 0);
  });

  it('skips a primary whose breaker is open without calling it', async () => {
    fake.script({ status: 500 });
    const { guards, events } = setup({ retry: { maxAttempts: 1 }, breaker: { threshold: 1 } });
    for (let i = 0; i < 2; i++) {
      const { ref, stream } = await guards.stream(route(), ask(), context);
      assert.equal(ref, BACKUP);
      await textOf(stream);
    }
    assert.deepEqual(
      fake.requests.map((r) => r.model),
      ['fake-model', 'backup-model', 'backup-model'],
    );
    const reasons = events.flatMap((e) => (e.type === 'model.fallback' ? [e.reason.code] : []));
    assert.deepEqual(reasons, ['MODEL_CALL_FAILED', 'MODEL_UNAVAILABLE']);
  });

  it('moves on when the primary reached its provider limit', async () => {
    const { guards } = setup(
      { models: { [PRIMARY]: { rateLimit: { requestsPerMinute: 1 } } } },
      new ManualClock(),
    );
    const refs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { ref, stream } = await guards.stream(route(), ask(), context);
      refs.push(ref);
      await textOf(stream);
    }
    assert.deepEqual(refs, [PRIMARY, BACKUP, BACKUP]);
  });

  it('throws the last error, listing every ref tried, when all of them fail', async () => {
    fake.script({ status: 500 }, { status: 503 });
    const { guards } = setup({ retry: { maxAttempts: 1 } });
    await assert.rejects(
      guards.stream(route(), ask(), context),
      fails('MODEL_CALL_FAILED', { model: BACKUP, providerStatus: 503, attempted: [PRIMARY, BACKUP] }),
    );
  });

  it('answers every call when the primary fails half the time and one fallback is healthy', async () => {
    let n = 0;
    const flaky = await startFakeOpenAI({
      handler: (req) =>
        req.model === 'fake-model' && n++ % 2 === 0 ? { status: 500 } : { text: `ok from ${req.model}` },
    });
    try {
      const { guards } = setup({ retry: { maxAttempts: 1 } });
      const results = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const { ref, stream } = await guards.stream(
            [target(flaky, PRIMARY), target(flaky, BACKUP)],
            ask(),
            context,
          );
          return { ref, text: await textOf(stream) };
        }),
      );
      for (const r of results) assert.equal(r.text, `ok from ${r.ref.split('/')[1]}`);
      assert.ok(results.some((r) => r.ref === PRIMARY));
      assert.ok(results.some((r) => r.ref === BACKUP));
    } finally {
      await flaky.close();
    }
  });
});

describe('model guards: streams and cancellation', () => {
  it('stops at once on cancel: the abort reason, no retry, no fallback, not a failure', async () => {
    fake.script({ delayMs: 2000, then: { text: 'too late' } });
    const { guards, events, statsOf } = setup({ retry: fast });
    const controller = new AbortController();
    const reason = new Error('the user left');
    setTimeout(() => controller.abort(reason), 50);
    const started = performance.now();
    await assert.rejects(
      guards.stream(
        [target(fake, PRIMARY), target(fake, BACKUP)],
        ask('hi', { abortSignal: controller.signal }),
        context,
      ),
      (err) => err === reason,
    );
    assert.ok(performance.now() - started < 1000);
    await sleep(50);
    assert.equal(fake.requests.length, 1);
    assert.equal(events.length, 0);
    assert.deepEqual(
      { ...statsOf(PRIMARY), model: undefined },
      {
        model: undefined,
        breaker: 'closed',
        inFlight: 0,
        queued: 0,
        calls: 1,
        failures: 0,
        retries: 0,
        fallbacks: 0,
        throttled: 0,
        rejected: 0,
      },
    );
  });

  it('stops at once on cancel while waiting to retry, or queued behind the bulkhead', async () => {
    fake.script({ status: 503, headers: { 'retry-after-ms': '2000' } });
    const { guards, statsOf } = setup({ retry: fast, bulkhead: { maxConcurrent: 1, maxQueue: 1 } });
    const controller = new AbortController();
    const reason = new Error('the user left');
    const waiting = guards.stream([target(fake)], ask('hi', { abortSignal: controller.signal }), context);
    const queued = guards.stream([target(fake)], ask('hi', { abortSignal: controller.signal }), context);
    await sleep(50);
    const started = performance.now();
    controller.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    await assert.rejects(queued, (err) => err === reason);
    assert.ok(performance.now() - started < 100);
    assert.equal(fake.requests.length, 1);
    await sleep(0);
    assert.equal(statsOf(PRIMARY)?.inFlight, 0, 'the slot is released');
    assert.equal(statsOf(PRIMARY)?.queued, 0);
  });

  it('releases the slot of a call cancelled before its stream was read', async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const controller = new AbortController();
    await guards.stream([target(fake)], ask('unread', { abortSignal: controller.signal }), context);
    assert.equal(statsOf(PRIMARY)?.inFlight, 1);
    controller.abort();
    await sleep(0);
    assert.equal(statsOf(PRIMARY)?.inFlight, 0);
    const { stream } = await guards.stream([target(fake)], ask('next'), context);
    assert.equal(await textOf(stream), 'Echo: next');
  });

  it('passes an error after the first delta through, without retrying', async () => {
    fake.script({ dropMidStream: true, text: 'This answer will be cut short somewhere in the middle' });
    const { guards, statsOf } = setup({ retry: fast });
    const { stream } = await guards.stream([target(fake)], ask(), context);
    let text = '';
    let failure: unknown;
    try {
      for await (const part of partsOf(stream)) {
        if (part.type === 'text-delta') text += part.delta;
        if (part.type === 'error') failure = part.error;
      }
    } catch (err) {
      failure = err;
    }
    assert.ok(text.length > 0, 'some text arrived');
    assert.ok(failure !== undefined, 'the drop reached the caller');
    await sleep(20);
    assert.equal(fake.requests.length, 1);
    assert.equal(statsOf(PRIMARY)?.inFlight, 0, 'the slot is released');
  });

  it('retries an error part that comes before any content, and replays what the answering attempt sent first', async () => {
    let calls = 0;
    const demo = new DemoLanguageModel('stub');
    const flaky: LanguageModelV3 = {
      specificationVersion: 'v3',
      provider: 'stub',
      modelId: 'flaky',
      supportedUrls: {},
      doGenerate: (options) => demo.doGenerate(options),
      doStream: (options) => {
        if (++calls > 1) return demo.doStream(options);
        const parts: LanguageModelV3StreamPart[] = [
          { type: 'stream-start', warnings: [] },
          { type: 'error', error: { message: 'overloaded' } },
        ];
        return Promise.resolve({ stream: ReadableStream.from(parts) });
      },
    };
    const { guards } = setup({ retry: fast });
    const { stream } = await guards.stream([{ ref: 'stub/flaky', model: flaky }], ask('hi'), context);
    const types: string[] = [];
    for await (const part of partsOf(stream)) types.push(part.type);
    assert.equal(calls, 2);
    assert.deepEqual(types.slice(0, 3), ['stream-start', 'response-metadata', 'text-start']);
    assert.equal(types.at(-1), 'finish');
  });

  it('keeps the guards of at most 10,000 refs, dropping the least recently used', async () => {
    const { guards } = setup();
    const call = async (ref: string) => {
      const { stream } = await guards.stream([{ ref, model: new DemoLanguageModel() }], ask(), context);
      await stream.cancel();
    };
    for (let i = 0; i < 10_000; i++) await call(`demo/m${i}`);
    await call('demo/m0');
    await call('demo/m10000');
    const refs = new Set(guards.stats().map((s) => s.model));
    assert.equal(refs.size, 10_000);
    assert.ok(refs.has('demo/m0'), 'recently used');
    assert.ok(!refs.has('demo/m1'), 'least recently used');
  });
});

describe('model guards: the cheap path keeps every guarantee', () => {
  /** A model that answers like the demo model, or never (ignoring its abort signal) when told to hang. */
  function scripted(hang: () => boolean): LanguageModelV3 {
    const demo = new DemoLanguageModel('stub');
    return {
      specificationVersion: 'v3',
      provider: 'stub',
      modelId: 'scripted',
      supportedUrls: {},
      doGenerate: (options) => demo.doGenerate(options),
      doStream: (options) => (hang() ? new Promise(() => undefined) : demo.doStream(options)),
    };
  }

  it('counts a success against the consecutive breaker: failures must follow each other to open it', async () => {
    fake.script({ status: 500 }, { text: 'fine' }, { status: 500 }, { status: 500 });
    const { guards, statsOf } = setup({ retry: { maxAttempts: 1 }, breaker: { threshold: 2 } });
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      try {
        outcomes.push(await textOf((await guards.stream([target(fake)], ask(), context)).stream));
      } catch (err) {
        outcomes.push(isAgentPoolError(err) ? err.code : String(err));
      }
      outcomes.push(statsOf(PRIMARY)?.breaker ?? 'none');
    }
    assert.deepEqual(outcomes, [
      'MODEL_CALL_FAILED',
      'closed',
      'fine',
      'closed', // the success reset the count
      'MODEL_CALL_FAILED',
      'closed',
      'MODEL_CALL_FAILED',
      'open',
    ]);
  });

  it('cools an open breaker down on the injected clock, then lets one of many concurrent calls through as its trial', async () => {
    const clock = new ManualClock();
    fake.script({ status: 500 }, { delayMs: 100, then: { text: 'trial' } });
    const { guards, events, statsOf } = setup(
      { retry: { maxAttempts: 1 }, breaker: { threshold: 1, halfOpenAfterMs: 10_000 } },
      clock,
    );
    await assert.rejects(guards.stream([target(fake)], ask(), context), fails('MODEL_CALL_FAILED'));
    clock.advance(9_000);
    await assert.rejects(
      guards.stream([target(fake)], ask(), context),
      fails('MODEL_UNAVAILABLE', { retryAfterSeconds: 1 }),
    );
    clock.advance(1_000);
    const trial = guards.stream([target(fake)], ask('trial'), context);
    const others = await Promise.allSettled(
      Array.from({ length: 5 }, () => guards.stream([target(fake)], ask(), context)),
    );
    for (const other of others) {
      assert.equal(other.status, 'rejected');
      assert.ok(fails('MODEL_UNAVAILABLE')(other.reason));
    }
    assert.equal(await textOf((await trial).stream), 'trial');
    assert.equal(fake.requests.length, 2, 'the failure and the trial; nothing else reached the provider');
    assert.deepEqual(
      events.map((e) => e.type),
      ['breaker.opened', 'breaker.half_opened', 'breaker.closed'],
    );
    assert.equal(statsOf(PRIMARY)?.rejected, 6);
  });

  it('times an attempt out on the injected clock even when the model ignores its abort signal, and drops the timer of one that answered', async () => {
    const clock = new ManualClock();
    let hang = true;
    const model = scripted(() => hang);
    const { guards, statsOf } = setup({ timeoutMs: 1_000, retry: { maxAttempts: 1 } }, clock);
    const call = guards.stream([{ ref: 'stub/scripted', model }], ask(), context);
    await sleep(5);
    assert.equal(clock.pendingTimers, 1, 'one timer for the attempt');
    clock.advance(1_000);
    await assert.rejects(call, fails('MODEL_TIMEOUT', { timeoutMs: 1_000, attempts: 1 }));
    assert.equal(statsOf('stub/scripted')?.failures, 1);
    assert.equal(statsOf('stub/scripted')?.inFlight, 0);

    hang = false;
    const { stream } = await guards.stream([{ ref: 'stub/scripted', model }], ask('hi'), context);
    assert.equal(clock.pendingTimers, 0, 'the timer went with the first part');
    assert.ok((await textOf(stream)).length > 0);
  });

  it('frees the slot of a stream whose reader is released before its end, as a run failing on an error part does', async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const { stream } = await guards.stream([target(fake)], ask('one'), context);
    const reader = stream.getReader();
    assert.equal((await reader.read()).done, false);
    assert.equal(statsOf(PRIMARY)?.inFlight, 1);
    reader.releaseLock();
    assert.equal(statsOf(PRIMARY)?.inFlight, 0);
    assert.equal(
      await textOf((await guards.stream([target(fake)], ask('two'), context)).stream),
      'Echo: two',
    );
  });

  it('drains a stream in order, the parts read ahead first, and frees its slot at the end', async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const { stream } = await guards.stream([target(fake)], ask('one'), context);
    const types: string[] = [];
    let text = '';
    await stream.drain({
      part(part) {
        types.push(part.type);
        if (part.type === 'text-delta') text += part.delta;
      },
    });
    assert.equal(text, 'Echo: one');
    assert.equal(types[0], 'stream-start');
    assert.equal(types.at(-1), 'finish');
    assert.equal(statsOf(PRIMARY)?.inFlight, 0);
    assert.equal((await stream.getReader().read()).done, true, 'a drained stream has ended');
  });

  it('cancels a stream whose sink throws, frees its slot and rejects the drain with the throw', async () => {
    const { guards, statsOf } = setup({ bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    const { stream } = await guards.stream([target(fake)], ask('one'), context);
    const stop = new Error('an error part');
    let parts = 0;
    await assert.rejects(
      stream.drain({
        part() {
          if (++parts === 2) throw stop;
        },
      }),
      (err: unknown) => err === stop,
    );
    assert.equal(parts, 2, 'no part after the throw');
    assert.equal(statsOf(PRIMARY)?.inFlight, 0);
    assert.equal(
      await textOf((await guards.stream([target(fake)], ask('two'), context)).stream),
      'Echo: two',
    );
  });

  it('rejects a drain with an error that comes after the first content, passed through unretried', async () => {
    fake.script({ dropMidStream: true, text: 'This answer will be cut short somewhere in the middle' });
    const { guards, statsOf } = setup({ retry: fast });
    const { stream } = await guards.stream([target(fake)], ask(), context);
    let text = '';
    let failure: unknown;
    try {
      await stream.drain({
        part(part) {
          if (part.type === 'text-delta') text += part.delta;
          if (part.type === 'error') throw part.error;
        },
      });
    } catch (err) {
      failure = err;
    }
    assert.ok(text.length > 0, 'some text arrived');
    assert.ok(failure !== undefined, 'the drop reached the caller');
    await sleep(20);
    assert.equal(fake.requests.length, 1);
    assert.equal(statsOf(PRIMARY)?.inFlight, 0, 'the slot is released');
  });

  it('does not count a request the breaker refused against requestsPerMinute', async () => {
    const clock = new ManualClock();
    fake.script({ status: 500 });
    const { guards } = setup(
      {
        retry: { maxAttempts: 1 },
        breaker: { threshold: 1, halfOpenAfterMs: 1_000 },
        rateLimit: { requestsPerMinute: 2 },
      },
      clock,
    );
    await assert.rejects(guards.stream([target(fake)], ask(), context), fails('MODEL_CALL_FAILED'));
    for (let i = 0; i < 3; i++) {
      await assert.rejects(guards.stream([target(fake)], ask(), context), fails('MODEL_UNAVAILABLE'));
    }
    clock.advance(1_000);
    assert.equal(await textOf((await guards.stream([target(fake)], ask('x'), context)).stream), 'Echo: x');
  });

  it('leaves at once when the caller aborts while a shared limiter decides, and takes back the request it counted', async () => {
    const decisions: PromiseWithResolvers<undefined>[] = [];
    const refunds: number[] = [];
    const rateLimiter: RateLimiter = {
      forModel: () => ({
        take: () => {
          const decision = Promise.withResolvers<undefined>();
          decisions.push(decision);
          return decision.promise;
        },
        refund: (at) => void refunds.push(at),
        addTokens: () => undefined,
      }),
      flush: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const bus = new LocalEventBus<ModelEvent>();
    const guards = new ModelGuards(
      { rateLimit: { requestsPerMinute: 10 } },
      { clock: systemClock, bus, rateLimiter },
    );
    const controller = new AbortController();
    const reason = new Error('the user left');
    const call = guards.stream([target(fake)], ask('hi', { abortSignal: controller.signal }), context);
    await sleep(5);
    controller.abort(reason);
    await assert.rejects(call, (err) => err === reason);
    assert.deepEqual(refunds, []);
    decisions[0]?.resolve(undefined);
    await sleep(5);
    assert.equal(refunds.length, 1);
    assert.equal(fake.requests.length, 0);
    assert.equal(guards.stats()[0]?.inFlight, 0);
  });
});
