/**
 * Fault injection end to end: runs started through the pool (and over HTTP) against the fake
 * OpenAI-compatible server, whose handler decides per model id whether to answer, fail (500),
 * throttle (429 + Retry-After), or answer late. Timings are short (ms backoffs, 100–800 ms
 * timeouts and cooldowns) so the file runs in a few seconds; nothing asserts how fast anything is.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, type AgentPoolEvent, createAgentPool } from '../../src/agent-pool.ts';
import type { ModelResilienceOptions } from '../../src/models/resilience-options.ts';
import type { RunEvent } from '../../src/run/stream.ts';
import { buildServer } from '../../src/server/app.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import {
  type FakeChatRequest,
  type FakeOpenAI,
  type FakeReply,
  startFakeOpenAI,
} from '../support/fake-openai.ts';
import { mulberry32 } from '../support/seeded-random.ts';

const PRIMARY = 'openai-compatible/primary';
const BACKUP = 'openai-compatible/backup';
const STEADY = 'openai-compatible/steady';
const P = 'default'; // the project a server in development mode acts in
const OTHER = 'other';
const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);
/** Retries without waiting long; each test sets what it is about. */
const FAST_RETRY = { initialDelayMs: 1, maxDelayMs: 5 };

type Behaviour = (request: FakeChatRequest) => FakeReply;
type ModelPoolEvent = Extract<AgentPoolEvent, { type: `breaker.${string}` | 'model.fallback' }>;

const healthy: Behaviour = (req) => ({ text: `answer from ${req.model}` });
const down: Behaviour = () => ({ status: 500, body: { error: { message: 'the provider is down' } } });

/**
 * A fake provider whose behaviour is set per model id, and a memory pool talking to it (like
 * test/support/run-fixture.ts, with the handler deciding per request). `arrivals` notes when each
 * request for a model id reached the provider; `events` holds the pool's breaker and fallback events.
 */
async function resilienceFixture(resilience: ModelResilienceOptions) {
  const behaviour = new Map<string, Behaviour>();
  const arrivals = new Map<string, number[]>();
  const fake: FakeOpenAI = await startFakeOpenAI({
    maxRecorded: 0,
    handler: (req) => {
      const list = arrivals.get(req.model) ?? [];
      list.push(performance.now());
      arrivals.set(req.model, list);
      return (behaviour.get(req.model) ?? healthy)(req);
    },
  });
  const pool: AgentPool = await createAgentPool({
    store: 'memory',
    ttlSweepIntervalMs: 0,
    models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'test-key' } }, env: {} },
    resilience,
  });
  const events: ModelPoolEvent[] = [];
  pool.events.on('*', (e) => {
    if (e.type.startsWith('breaker.') || e.type === 'model.fallback') events.push(e as ModelPoolEvent);
  });
  const finished: RunRecord[] = [];
  /** Starts a run and waits for its terminal record. */
  const run = async (project: string, agent: string, input = 'hi'): Promise<RunRecord> => {
    const record = await (await pool.runs.start(project, agent, { input })).result;
    finished.push(record);
    return record;
  };
  return {
    fake,
    pool,
    events,
    finished,
    run,
    /** Makes the provider answer requests for `ref` this way from now on. */
    behave: (ref: string, how: Behaviour) => void behaviour.set(ref.split('/')[1] as string, how),
    /** Requests for `ref` that reached the provider so far. */
    received: (ref: string) => arrivals.get(ref.split('/')[1] as string)?.length ?? 0,
    arrivalsOf: (ref: string) => arrivals.get(ref.split('/')[1] as string) ?? [],
    statsOf: (ref: string) => pool.guards.stats().find((s) => s.model === ref),
    eventTypes: (ref: string) =>
      events.flatMap((e) => (e.type !== 'model.fallback' && e.model === ref ? [e.type] : [])),
    /** Every run ended in a terminal status, and the store has exactly that record. */
    async assertAllSettled() {
      for (const r of finished) {
        assert.ok(TERMINAL.has(r.status), `run ${r.id} ended ${r.status}`);
        assert.deepEqual(await pool.runs.get(r.project, r.id), r);
      }
    },
    async close() {
      try {
        await pool.close();
      } finally {
        await fake.close();
      }
    },
  };
}
type Fixture = Awaited<ReturnType<typeof resilienceFixture>>;

/** Agents of both fixtures: one with a fallback, one without. */
async function createAgents(f: Fixture) {
  await f.pool.agents.create(P, { name: 'resilient', model: PRIMARY, fallbacks: [BACKUP] });
  await f.pool.agents.create(P, { name: 'lonely', model: PRIMARY });
}

/** Unhandled rejections seen while this file runs; none is the point. */
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
before(() => process.on('unhandledRejection', onUnhandled));
after(async () => {
  await sleep(20); // a late rejection of the last test still lands here
  process.off('unhandledRejection', onUnhandled);
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
});

describe('model resilience end to end: failures injected at the provider, seen through runs', () => {
  let f: Fixture;
  afterEach(async () => {
    try {
      await f.assertAllSettled();
    } finally {
      await f.close();
    }
  });

  it('answers every run when the primary fails half its requests at random and one fallback is healthy', async () => {
    f = await resilienceFixture({ retry: { ...FAST_RETRY, maxAttempts: 2 } });
    await createAgents(f);
    const random = mulberry32(42);
    f.behave(PRIMARY, (req) => (random() < 0.5 ? down(req) : healthy(req)));
    const runs = await Promise.all(Array.from({ length: 60 }, (_, i) => f.run(P, 'resilient', `q${i}`)));

    for (const r of runs) {
      assert.equal(r.status, 'succeeded', `${r.id}: ${JSON.stringify(r.error)}`);
      assert.equal(r.output, `answer from ${r.model.split('/')[1]}`);
    }
    const viaBackup = runs.filter((r) => r.model === BACKUP);
    assert.ok(viaBackup.length > 0, 'some runs were answered by the fallback');
    assert.ok(
      runs.some((r) => r.model === PRIMARY),
      'some runs were answered by the primary',
    );
    const fallbacks = f.events.filter((e) => e.type === 'model.fallback');
    assert.deepEqual(
      fallbacks.map((e) => e.runId).sort(),
      viaBackup.map((r) => r.id).sort(),
      'one model.fallback event per run the fallback answered',
    );
    for (const e of fallbacks) {
      assert.deepEqual([e.from, e.to, e.project, e.agent], [PRIMARY, BACKUP, P, 'resilient']);
    }
    assert.ok((f.statsOf(PRIMARY)?.retries ?? 0) > 0, 'failed attempts were retried before falling back');
  });

  it('names the answering model on step.finished and in the run record when the fallback answers', async () => {
    f = await resilienceFixture({ retry: { ...FAST_RETRY, maxAttempts: 1 } });
    await createAgents(f);
    f.behave(PRIMARY, down);
    const handle = await f.pool.runs.start(P, 'resilient', { input: 'hi' });
    const events: RunEvent[] = [];
    for await (const e of handle.stream.events()) events.push(e);
    const run = await handle.result;
    f.finished.push(run);
    assert.equal(run.status, 'succeeded');
    assert.equal(run.model, BACKUP);
    const step = events.find((e) => e.type === 'step.finished');
    assert.ok(step?.type === 'step.finished' && step.model === BACKUP, JSON.stringify(step));
  });

  it('abandons an attempt that sends nothing within timeoutMs, retries it, and answers from the retry', async () => {
    f = await resilienceFixture({ timeoutMs: 150, retry: { ...FAST_RETRY, maxAttempts: 2 } });
    await createAgents(f);
    let n = 0;
    f.behave(PRIMARY, (req) => (n++ === 0 ? { delayMs: 1000, then: healthy(req) } : healthy(req)));
    const run = await f.run(P, 'lonely');
    assert.equal(run.status, 'succeeded');
    assert.equal(run.output, 'answer from primary');
    assert.equal(run.model, PRIMARY);
    assert.equal(f.received(PRIMARY), 2, 'the slow attempt, then the retry');
    assert.equal(f.statsOf(PRIMARY)?.retries, 1);
  });

  it('fails with MODEL_TIMEOUT once every attempt timed out, or answers from the fallback', async () => {
    f = await resilienceFixture({
      timeoutMs: 100,
      retry: { ...FAST_RETRY, maxAttempts: 2 },
      breaker: { threshold: 100 },
    });
    await createAgents(f);
    f.behave(PRIMARY, (req) => ({ delayMs: 1000, then: healthy(req) }));

    const lonely = await f.run(P, 'lonely');
    assert.equal(lonely.status, 'failed');
    assert.equal(lonely.error?.code, 'MODEL_TIMEOUT');
    assert.equal(f.received(PRIMARY), 2, 'both attempts reached the provider');

    const resilient = await f.run(P, 'resilient');
    assert.equal(resilient.status, 'succeeded');
    assert.equal(resilient.model, BACKUP);
    assert.equal(f.received(PRIMARY), 4, 'retried on the primary before falling back');
    const fallback = f.events.find((e) => e.type === 'model.fallback');
    assert.equal(fallback?.type === 'model.fallback' && fallback.reason.code, 'MODEL_TIMEOUT');
  });

  it("waits out a 429's Retry-After (retry-after-ms, or seconds) and then succeeds on the same model", async () => {
    // The backoff of its own would be 1 ms: a long wait can only come from the provider's header.
    f = await resilienceFixture({ retry: { ...FAST_RETRY, maxAttempts: 2 }, breaker: { threshold: 1 } });
    await createAgents(f);
    for (const [headers, waitMs] of [
      [{ 'retry-after-ms': '300' }, 300],
      [{ 'retry-after': '1' }, 1000],
    ] as const) {
      let n = 0;
      f.behave(PRIMARY, (req) => (n++ === 0 ? { status: 429, headers } : healthy(req)));
      const before = f.received(PRIMARY);
      const run = await f.run(P, 'resilient');
      assert.equal(run.status, 'succeeded');
      assert.equal(run.model, PRIMARY, 'retried on the same model rather than falling back');
      assert.equal(f.received(PRIMARY) - before, 2);
      const [first, second] = f.arrivalsOf(PRIMARY).slice(-2) as [number, number];
      // A little slack: timers may fire a millisecond early against performance.now().
      assert.ok(
        second - first >= waitMs - 20,
        `${JSON.stringify(headers)}: retried after ${second - first} ms`,
      );
    }
    assert.equal(f.statsOf(PRIMARY)?.breaker, 'closed', 'a 429 is not a sickness: the breaker never opened');
    assert.equal(f.statsOf(PRIMARY)?.retries, 2);
    assert.equal(f.events.length, 0, 'no fallback, no breaker event');
  });

  it('lets slow answers within the timeout through unchanged, without retries or fallbacks', async () => {
    f = await resilienceFixture({ timeoutMs: 300, retry: FAST_RETRY });
    await createAgents(f);
    f.behave(PRIMARY, (req) => ({ delayMs: 80, then: healthy(req) }));
    const runs = await Promise.all(Array.from({ length: 10 }, () => f.run(P, 'resilient')));
    for (const r of runs) {
      assert.equal(r.status, 'succeeded');
      assert.equal(r.model, PRIMARY);
      assert.equal(r.output, 'answer from primary');
    }
    assert.equal(f.received(PRIMARY), 10, 'one request per run');
    assert.equal(f.received(BACKUP), 0);
    assert.equal(f.statsOf(PRIMARY)?.retries, 0);
    assert.equal(f.events.length, 0);
  });

  it('gives back the bulkhead slot of a run that failed on its stream after the first delta, dropped or failed in band', async () => {
    f = await resilienceFixture({ retry: FAST_RETRY, bulkhead: { maxConcurrent: 1, maxQueue: 0 } });
    await createAgents(f);
    const text = 'an answer cut short somewhere in the middle';
    const replies: FakeReply[] = [
      { dropMidStream: true, text },
      { errorMidStream: 'the provider gave up', text },
      { errorMidStream: 'the provider gave up again', text },
    ];
    for (const reply of replies) {
      f.behave(PRIMARY, () => reply);
      const run = await f.run(P, 'lonely');
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, 'MODEL_CALL_FAILED', JSON.stringify(run.error));
    }
    assert.equal(
      f.received(PRIMARY),
      3,
      'no retry after the first delta, and no MODEL_BUSY: the slot came back',
    );
    assert.equal(f.statsOf(PRIMARY)?.inFlight, 0);
  });
});

describe('a full provider outage, then recovery', () => {
  const THRESHOLD = 3;
  const MAX_ATTEMPTS = 2;
  // Long enough that the outage checks below finish before the breaker lets a trial through.
  const HALF_OPEN_AFTER_MS = 800;
  let f: Fixture;
  let app: FastifyInstance;
  let otherApp: FastifyInstance;
  let otherBase: string;
  let openedAt = 0;
  const trialsSoFar = () => f.eventTypes(PRIMARY).filter((t) => t === 'breaker.half_opened').length;

  before(async () => {
    f = await resilienceFixture({
      retry: { ...FAST_RETRY, maxAttempts: MAX_ATTEMPTS },
      breaker: { threshold: THRESHOLD, halfOpenAfterMs: HALF_OPEN_AFTER_MS },
    });
    await createAgents(f);
    await f.pool.agents.create(OTHER, { name: 'steady', model: STEADY });
    f.pool.events.on('breaker.opened', () => void (openedAt = performance.now()));
    app = await buildServer(f.pool);
    // The other project over a real socket, on its own server over the same pool.
    otherApp = await buildServer(f.pool, { project: OTHER });
    await otherApp.listen({ port: 0, host: '127.0.0.1' });
    const address = otherApp.server.address();
    otherBase = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });
  after(async () => {
    try {
      await app.close();
      await otherApp.close();
    } finally {
      await f.close();
    }
  });

  const metrics = async () => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    return res.body;
  };
  const sample = (text: string, series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  const modelsStats = async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/pool/stats' });
    assert.equal(res.statusCode, 200);
    return (JSON.parse(res.body) as { models: { model: string; breaker: string }[] }).models;
  };

  it('answers from the primary while it is healthy', async () => {
    const run = await f.run(P, 'resilient');
    assert.equal(run.model, PRIMARY);
    const res = await app.inject({ method: 'POST', url: '/v1/agents/lonely/runs', payload: { input: 'hi' } });
    const body = JSON.parse(res.body) as RunRecord;
    f.finished.push(body);
    assert.deepEqual([res.statusCode, body.status, body.model], [200, 'succeeded', PRIMARY]);
    assert.equal(f.received(PRIMARY), 2);
  });

  it('opens the breaker once `threshold` attempts failed; no more than that reach the provider', async () => {
    f.behave(PRIMARY, down);
    const before = f.received(PRIMARY);
    // Sequential, so no call is in flight when it opens: exactly `threshold` attempts get through.
    // The first run spends its attempts (MODEL_CALL_FAILED); the second opens it with its first
    // attempt, and its retry is refused by the open breaker.
    const first = await f.run(P, 'lonely');
    assert.equal(first.status, 'failed');
    assert.equal(first.error?.code, 'MODEL_CALL_FAILED');
    const second = await f.run(P, 'lonely');
    assert.equal(second.status, 'failed');
    assert.equal(second.error?.code, 'MODEL_UNAVAILABLE');
    assert.equal(f.received(PRIMARY) - before, THRESHOLD);
    assert.ok(THRESHOLD <= MAX_ATTEMPTS * 2);
    assert.deepEqual(f.eventTypes(PRIMARY), ['breaker.opened']);
    const opened = f.events.find((e) => e.type === 'breaker.opened');
    assert.equal(opened?.type === 'breaker.opened' && opened.reason.code, 'MODEL_CALL_FAILED');
    assert.equal(f.statsOf(PRIMARY)?.breaker, 'open');
  });

  it('fails runs of an agent without a fallback fast with MODEL_UNAVAILABLE, without reaching the provider', async () => {
    const before = f.received(PRIMARY);
    const trials = trialsSoFar();
    const runs = await Promise.all(Array.from({ length: 20 }, () => f.run(P, 'lonely')));
    for (const r of runs) {
      assert.equal(r.status, 'failed');
      assert.equal(r.error?.code, 'MODEL_UNAVAILABLE');
    }
    assert.equal(trialsSoFar(), trials, 'still within halfOpenAfterMs');
    assert.equal(f.received(PRIMARY), before, 'an open breaker fails fast');
  });

  it('over HTTP, the client of such a run sees the failed run with code MODEL_UNAVAILABLE', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/agents/lonely/runs', payload: { input: 'hi' } });
    assert.equal(res.statusCode, 200);
    const body = JSON.parse(res.body) as RunRecord;
    assert.equal(body.status, 'failed');
    assert.equal(body.error?.code, 'MODEL_UNAVAILABLE');
    f.finished.push(body);
  });

  it('keeps answering runs of an agent with a fallback, from the fallback, without reaching the primary', async () => {
    const before = f.received(PRIMARY);
    const fallbacksBefore = f.events.filter((e) => e.type === 'model.fallback').length;
    const runs = await Promise.all(Array.from({ length: 20 }, (_, i) => f.run(P, 'resilient', `q${i}`)));
    for (const r of runs) {
      assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
      assert.equal(r.model, BACKUP);
      assert.equal(r.output, 'answer from backup');
    }
    const res = await app.inject({
      method: 'POST',
      url: '/v1/agents/resilient/runs',
      payload: { input: 'hi' },
    });
    const body = JSON.parse(res.body) as RunRecord;
    f.finished.push(body);
    assert.deepEqual([res.statusCode, body.status, body.model], [200, 'succeeded', BACKUP]);
    const reasons = f.events
      .slice(fallbacksBefore)
      .flatMap((e) => (e.type === 'model.fallback' ? [e.reason.code] : []));
    assert.deepEqual(reasons, Array(21).fill('MODEL_UNAVAILABLE'));
    assert.equal(f.received(PRIMARY), before);
  });

  it("leaves another project's runs on a healthy model unaffected", async () => {
    const runs = await Promise.all([
      ...Array.from({ length: 20 }, () => f.run(OTHER, 'steady')),
      // interleaved with more runs against the broken primary
      ...Array.from({ length: 10 }, (_, i) => f.run(P, i % 2 === 0 ? 'lonely' : 'resilient')),
    ]);
    for (const r of runs.filter((r) => r.project === OTHER)) {
      assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
      assert.equal(r.model, STEADY);
      assert.equal(r.output, 'answer from steady');
    }
    const res = await fetch(`${otherBase}/v1/agents/steady/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: 'hi' }),
    });
    const body = (await res.json()) as RunRecord;
    f.finished.push(body);
    assert.deepEqual([res.status, body.project, body.status, body.model], [200, OTHER, 'succeeded', STEADY]);
    assert.equal(f.statsOf(STEADY)?.breaker, 'closed');
    assert.equal(f.statsOf(STEADY)?.failures, 0);
    assert.equal(f.statsOf(STEADY)?.rejected, 0);
  });

  it('shows the open breaker in GET /v1/pool/stats and /metrics during the outage', async () => {
    const models = await modelsStats();
    assert.equal(models.find((m) => m.model === PRIMARY)?.breaker, 'open');
    assert.equal(models.find((m) => m.model === BACKUP)?.breaker, 'closed');
    assert.equal(models.find((m) => m.model === STEADY)?.breaker, 'closed');
    const text = await metrics();
    assert.equal(sample(text, `agentpool_model_breaker_state{model="${PRIMARY}"}`), 2);
    assert.equal(sample(text, `agentpool_model_breaker_state{model="${STEADY}"}`), 0);
    assert.equal(trialsSoFar(), 0, 'every outage check ran before halfOpenAfterMs passed');
  });

  it('after the provider heals and halfOpenAfterMs passes, a trial call closes the breaker and runs use the primary again', async () => {
    f.behave(PRIMARY, healthy);
    await sleep(Math.max(0, openedAt + HALF_OPEN_AFTER_MS + 50 - performance.now()));
    const before = f.received(PRIMARY);
    const trial = await f.run(P, 'resilient');
    assert.equal(trial.status, 'succeeded');
    assert.equal(trial.model, PRIMARY);
    assert.equal(f.received(PRIMARY), before + 1, 'one trial call');
    assert.deepEqual(f.eventTypes(PRIMARY), ['breaker.opened', 'breaker.half_opened', 'breaker.closed']);
    assert.equal(f.statsOf(PRIMARY)?.breaker, 'closed');

    const runs = await Promise.all([
      ...Array.from({ length: 10 }, () => f.run(P, 'resilient')),
      ...Array.from({ length: 10 }, () => f.run(P, 'lonely')),
    ]);
    for (const r of runs) {
      assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
      assert.equal(r.model, PRIMARY);
    }
  });

  it('reports the breaker state, retries and fallbacks in /metrics and /v1/pool/stats after the outage', async () => {
    const text = await metrics();
    const stats = f.statsOf(PRIMARY);
    assert.equal(sample(text, `agentpool_model_breaker_state{model="${PRIMARY}"}`), 0);
    assert.equal(sample(text, `agentpool_model_retries_total{model="${PRIMARY}"}`), stats?.retries);
    assert.ok((stats?.retries ?? 0) >= 1);
    const fallbacks = f.events.filter((e) => e.type === 'model.fallback').length;
    assert.equal(
      sample(text, `agentpool_model_fallbacks_total{from="${PRIMARY}",to="${BACKUP}"}`),
      fallbacks,
    );
    assert.ok(fallbacks >= 21);
    assert.ok(
      (sample(text, `agentpool_model_rejected_total{model="${PRIMARY}",code="MODEL_UNAVAILABLE"}`) ?? 0) > 0,
    );
    const models = await modelsStats();
    assert.deepEqual(models.map((m) => [m.model, m.breaker]).sort(), [
      [BACKUP, 'closed'],
      [PRIMARY, 'closed'],
      [STEADY, 'closed'],
    ]);
  });

  it('left every run in a terminal status the store has', async () => {
    assert.ok(f.finished.length >= 80);
    await f.assertAllSettled();
  });
});
